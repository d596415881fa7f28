// Per-target SIMD primitives on one contiguous vector: its p-norm, its
// scaling with one rounding per element, and the prefetch of a table row. Included once per Highway target by
// files that use hwy/foreach_target.h; the row and matrix kernels are built
// from these.
//
// Storage types are those of src/common/element_types.h (float, double,
// float16, bfloat16). The 16-bit types are widened to float32; results are
// narrowed with the same round-to-nearest-even code on every target
// (src/common/numerics.h has the scalar twins, used for tails), so the
// scaled values do not depend on the target. A storage type without SIMD
// conversions here would take LoadWideScalar / StoreNarrowScalar, which
// convert lane by lane through its Element<T>.

// Per-target include guard (Highway's convention).
#if defined(SPARSENORM_CPU_VECTOR_MATH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SPARSENORM_CPU_VECTOR_MATH_INL_H_
#undef SPARSENORM_CPU_VECTOR_MATH_INL_H_
#else
#define SPARSENORM_CPU_VECTOR_MATH_INL_H_
#endif

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include <hwy/highway.h>

#include "common/decision.h"
#include "common/element_types.h"
#include "common/norms.h"
#include "common/numerics.h"
#include "common/prefetch.h"

HWY_BEFORE_NAMESPACE();
namespace sparsenorm::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ---------------------------------------------------------------------------
// Scalar element access.

template <class T>
using Compute = typename Element<T>::Compute;

// Whether T computes in float64 (the float64 paths of the kernels) rather
// than float32.
template <class T>
inline constexpr bool kFloat64Math = std::is_same_v<Compute<T>, double>;

template <class T>
HWY_INLINE Compute<T> Widen(T v) {
  return Element<T>::Widen(v);
}

// ---------------------------------------------------------------------------
// Loads widened to the compute type.

template <class D>
HWY_INLINE hn::Vec<D> LoadWide(D d, const float* HWY_RESTRICT p) {
  return hn::LoadU(d, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadWide(D d, const double* HWY_RESTRICT p) {
  return hn::LoadU(d, p);
}
// x86 targets from AVX2 up have F16C: exact float16 <-> float32 conversions
// in hardware (nearest-even when narrowing). Elsewhere the conversions are
// integer code of our own rather than Highway's emulation: Highway 1.0.3's
// scalar target turns float16 infinities and NaNs into finite numbers, which
// would hide non-finite rows, and its emulated narrowing truncates.
constexpr bool kHardwareFloat16 = HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2;

template <class D>
HWY_INLINE hn::Vec<D> LoadWide(D d, const float16* HWY_RESTRICT p) {
  if constexpr (kHardwareFloat16) {
    return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::float16_t, D>(), reinterpret_cast<const hwy::float16_t*>(p)));
  }
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint16_t, D> du16;
  const auto h = hn::PromoteTo(du, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  auto o = hn::ShiftLeft<13>(hn::And(h, hn::Set(du, 0x7fffu)));
  const auto exponent = hn::And(o, hn::Set(du, 0x0f800000u));
  o = hn::Add(o, hn::Set(du, 0x38000000u));  // rebias by 127 - 15
  // Infinity and NaN: rebias once more, to the float32 all-ones exponent.
  o = hn::IfThenElse(hn::Eq(exponent, hn::Set(du, 0x0f800000u)), hn::Add(o, hn::Set(du, 0x38000000u)), o);
  // Subnormal and zero: 2^-14 * (1 + m / 1024) - 2^-14 is exactly m * 2^-24.
  const auto subnormal = hn::BitCast(
      du, hn::Sub(hn::BitCast(d, hn::Add(o, hn::Set(du, 0x00800000u))), hn::Set(d, 0x1p-14f)));
  o = hn::IfThenElse(hn::Eq(exponent, hn::Zero(du)), subnormal, o);
  return hn::BitCast(d, hn::Or(o, sign));
}
template <class D>
HWY_INLINE hn::Vec<D> LoadWide(D d, const bfloat16* HWY_RESTRICT p) {
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint16_t, D> du16;
  return hn::BitCast(
      d, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)))));
}

// Any storage type, lane by lane through Element<T>::Widen: what a type
// without SIMD conversions of its own gets (tests check it against the
// SIMD ones).
template <class D, class T>
HWY_INLINE hn::Vec<D> LoadWideScalar(D d, const T* HWY_RESTRICT p) {
  HWY_ALIGN hn::TFromD<D> lanes[HWY_MAX_BYTES / sizeof(hn::TFromD<D>)];
  for (size_t i = 0; i < hn::Lanes(d); ++i) lanes[i] = Widen(p[i]);
  return hn::Load(d, lanes);
}
template <class D, class T>
HWY_INLINE hn::Vec<D> LoadWide(D d, const T* HWY_RESTRICT p) {
  return LoadWideScalar(d, p);
}

// ---------------------------------------------------------------------------
// float32 -> 16-bit, nearest-even, lane-wise twins of numerics::FloatToHalf
// and numerics::FloatToBFloat16. The 16-bit pattern is in the low half of
// each 32-bit lane.

template <class DF>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> HalfBits(DF df, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  auto x = hn::BitCast(du, v);
  const auto sign = hn::And(x, hn::Set(du, 0x80000000u));
  x = hn::Xor(x, sign);
  const auto xi = hn::BitCast(di, x);  // sign cleared: signed compares are safe

  const auto is_nan = hn::RebindMask(du, hn::Gt(xi, hn::Set(di, 0x7f800000)));
  const auto huge = hn::IfThenElse(is_nan, hn::Set(du, 0x7e00u), hn::Set(du, 0x7c00u));
  const auto is_huge = hn::RebindMask(du, hn::Gt(xi, hn::Set(di, 0x477fffff)));

  const auto tiny = hn::Sub(hn::BitCast(du, hn::Add(hn::BitCast(df, x), hn::Set(df, 0.5f))),
                            hn::Set(du, 0x3f000000u));
  const auto is_tiny = hn::RebindMask(du, hn::Lt(xi, hn::Set(di, 0x38800000)));

  const auto odd = hn::And(hn::ShiftRight<13>(x), hn::Set(du, 1u));
  const auto normal = hn::ShiftRight<13>(hn::Add(hn::Add(x, hn::Set(du, 0xc8000fffu)), odd));

  auto h = hn::IfThenElse(is_tiny, tiny, normal);
  h = hn::IfThenElse(is_huge, huge, h);
  return hn::Or(h, hn::ShiftRight<16>(sign));
}

// For finite or infinite v (scaled values are never NaN: rows holding NaN
// are not scaled); agrees with numerics::FloatToBFloat16 on all such v.
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> BFloat16Bits(DF /*df*/, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const auto x = hn::BitCast(du, v);
  const auto lsb = hn::And(hn::ShiftRight<16>(x), hn::Set(du, 1u));
  return hn::ShiftRight<16>(hn::Add(hn::Add(x, hn::Set(du, 0x7fffu)), lsb));
}

// The exact product x * s rounded to odd at float32 precision: the lane-wise
// twin of numerics::ProductRoundToOdd. With a fused multiply-add the error
// term comes from one FMA; without, from the split scale. Both give the same
// p (the exact x*s rounded once) and the same exact e.
template <class DF>
HWY_INLINE hn::Vec<DF> ProductRoundToOdd(DF df, hn::Vec<DF> x, hn::Vec<DF> s, hn::Vec<DF> hi,
                                         hn::Vec<DF> lo) {
  const hn::RebindToUnsigned<DF> du;
  hn::Vec<DF> p, e;
  if constexpr (HWY_NATIVE_FMA) {
    (void)hi;
    (void)lo;
    p = hn::Mul(x, s);
    e = hn::MulSub(x, s, p);
  } else {
    (void)s;
    const auto a = hn::Mul(x, hi);
    const auto b = hn::Mul(x, lo);
    p = hn::Add(a, b);
    e = hn::Sub(b, hn::Sub(p, a));
  }
  // When p overflows, e is an infinity or NaN: |e| > 0 is false for NaN, and
  // an infinite e steps p back to FLT_MAX | 1, which narrows to infinity just
  // as p would.
  const auto inexact = hn::RebindMask(du, hn::Gt(hn::Abs(e), hn::Zero(df)));
  // 1 where e and p have opposite signs: p overshoots, step back toward zero.
  const auto opposite = hn::ShiftRight<31>(hn::Xor(hn::BitCast(du, e), hn::BitCast(du, p)));
  auto bits = hn::BitCast(du, p);
  bits = hn::Sub(bits, hn::IfThenElseZero(inexact, opposite));
  bits = hn::Or(bits, hn::IfThenElseZero(inexact, hn::Set(du, 1u)));
  return hn::BitCast(df, bits);
}

template <class DF>
HWY_INLINE void StoreNarrow(DF df, hn::Vec<DF> v, float16* HWY_RESTRICT out) {
  if constexpr (kHardwareFloat16) {
    const hn::Rebind<hwy::float16_t, DF> df16;
    hn::StoreU(hn::DemoteTo(df16, v), df16, reinterpret_cast<hwy::float16_t*>(out));
    return;
  }
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint16_t, DF> du16;
  hn::StoreU(hn::DemoteTo(du16, hn::BitCast(di, HalfBits(df, v))), du16,
             reinterpret_cast<uint16_t*>(out));
}
template <class DF>
HWY_INLINE void StoreNarrow(DF df, hn::Vec<DF> v, bfloat16* HWY_RESTRICT out) {
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint16_t, DF> du16;
  hn::StoreU(hn::DemoteTo(du16, hn::BitCast(di, BFloat16Bits(df, v))), du16,
             reinterpret_cast<uint16_t*>(out));
}

// Any narrow storage type, lane by lane through Element<T>::Round.
template <class DF, class T>
HWY_INLINE void StoreNarrowScalar(DF df, hn::Vec<DF> v, T* HWY_RESTRICT out) {
  HWY_ALIGN float lanes[HWY_MAX_BYTES / sizeof(float)];
  hn::Store(v, df, lanes);
  for (size_t i = 0; i < hn::Lanes(df); ++i) out[i] = Element<T>::Round(lanes[i]);
}
template <class DF, class T>
HWY_INLINE void StoreNarrow(DF df, hn::Vec<DF> v, T* HWY_RESTRICT out) {
  StoreNarrowScalar(df, v, out);
}

// ---------------------------------------------------------------------------
// Reductions in the compute type. Four accumulators hide the add latency.

template <class D, class T>
HWY_INLINE hn::TFromD<D> SumSquares(D d, const T* HWY_RESTRICT x, size_t n) {
  using C = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const auto v0 = LoadWide(d, x + i);
    const auto v1 = LoadWide(d, x + i + N);
    const auto v2 = LoadWide(d, x + i + 2 * N);
    const auto v3 = LoadWide(d, x + i + 3 * N);
    a0 = hn::MulAdd(v0, v0, a0);
    a1 = hn::MulAdd(v1, v1, a1);
    a2 = hn::MulAdd(v2, v2, a2);
    a3 = hn::MulAdd(v3, v3, a3);
  }
  for (; i + N <= n; i += N) {
    const auto v = LoadWide(d, x + i);
    a0 = hn::MulAdd(v, v, a0);
  }
  C s = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) {
    const C v = Widen(x[i]);
    s += v * v;
  }
  return s;
}

template <class D, class T>
HWY_INLINE hn::TFromD<D> SumAbs(D d, const T* HWY_RESTRICT x, size_t n) {
  using C = hn::TFromD<D>;
  const size_t N = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::Add(a0, hn::Abs(LoadWide(d, x + i)));
    a1 = hn::Add(a1, hn::Abs(LoadWide(d, x + i + N)));
    a2 = hn::Add(a2, hn::Abs(LoadWide(d, x + i + 2 * N)));
    a3 = hn::Add(a3, hn::Abs(LoadWide(d, x + i + 3 * N)));
  }
  for (; i + N <= n; i += N) a0 = hn::Add(a0, hn::Abs(LoadWide(d, x + i)));
  C s = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) s += std::fabs(static_cast<C>(Widen(x[i])));
  return s;
}

// max |x| as the bit pattern of a non-negative float32: integer order equals
// float order there, and NaN/infinity patterns are >= 0x7f800000, so one
// integer max both finds the largest magnitude and detects non-finite values.
template <class T>
HWY_INLINE uint32_t MaxAbsBits(const T* HWY_RESTRICT x, size_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const size_t N = hn::Lanes(df);
  const auto magnitude = hn::Set(di, 0x7fffffff);
  auto m0 = hn::Zero(di), m1 = hn::Zero(di);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    m0 = hn::Max(m0, hn::And(hn::BitCast(di, LoadWide(df, x + i)), magnitude));
    m1 = hn::Max(m1, hn::And(hn::BitCast(di, LoadWide(df, x + i + N)), magnitude));
  }
  for (; i + N <= n; i += N) {
    m0 = hn::Max(m0, hn::And(hn::BitCast(di, LoadWide(df, x + i)), magnitude));
  }
  auto m = static_cast<uint32_t>(hn::GetLane(hn::MaxOfLanes(di, hn::Max(m0, m1))));
  for (; i < n; ++i) {
    uint32_t bits;
    const float v = Widen(x[i]);
    std::memcpy(&bits, &v, sizeof bits);
    bits &= 0x7fffffffu;
    if (bits > m) m = bits;
  }
  return m;
}

// ---------------------------------------------------------------------------
// Norms (src/common/norms.h says when each path is taken).

// The scaled path, in float64: max |x|, then the terms divided by it.
template <class T>
HWY_NOINLINE VectorNorm ScaledNorm(const T* HWY_RESTRICT x, size_t n, NormKind kind, double p) {
  double m = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double a = std::fabs(static_cast<double>(Widen(x[i])));
    if (!(a <= DBL_MAX)) return {std::numeric_limits<double>::quiet_NaN(), false};
    if (a > m) m = a;
  }
  if (m == 0.0 || kind == NormKind::kLInf) return {m, true};
  double s = 0.0;
  for (size_t i = 0; i < n; ++i) s += ScaledTerm(static_cast<double>(Widen(x[i])), m, kind, p);
  return {FinishScaled(m, s, kind, p), true};
}

template <class T>
HWY_INLINE VectorNorm NormOf(const T* HWY_RESTRICT x, size_t n, NormKind kind, double p) {
  using C = Compute<T>;
  const hn::ScalableTag<C> d;
  switch (kind) {
    case NormKind::kL2:
    case NormKind::kL1: {
      const C s = kind == NormKind::kL2 ? SumSquares(d, x, n) : SumAbs(d, x, n);
      if (SumIsTrusted(s, kind)) return {NormFromSum(s, kind), true};
      return ScaledNorm(x, n, kind, p);
    }
    case NormKind::kLInf:
      if constexpr (sizeof(C) == 4) {
        uint32_t bits = MaxAbsBits(x, n);
        if (bits >= 0x7f800000u) return {std::numeric_limits<double>::quiet_NaN(), false};
        float m;
        std::memcpy(&m, &bits, sizeof m);
        return {static_cast<double>(m), true};
      } else {
        return ScaledNorm(x, n, kind, p);
      }
    case NormKind::kLp:
      break;
  }
  return ScaledNorm(x, n, kind, p);
}

template <class T>
HWY_INLINE bool AllFinite(const T* HWY_RESTRICT x, size_t n) {
  if constexpr (sizeof(Compute<T>) == 4) {
    return MaxAbsBits(x, n) < 0x7f800000u;
  } else {
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(Widen(x[i]))) return false;
    }
    return true;
  }
}

// ---------------------------------------------------------------------------
// Scaling: out[k] = x[k] * s rounded once to the storage type (the lane-wise
// form of ScaleElement, src/common/decision.h). `in` and `out` may be the
// same vector. Scales outside the fast form go element by element.

template <class T>
HWY_INLINE void ScaleVectorSlow(const T* in, T* out, size_t n, const Scale& s) {
  for (size_t i = 0; i < n; ++i) out[i] = ScaleElement(in[i], s);
}

HWY_INLINE void ScaleVector(const float* in, float* out, size_t n, const Scale& s) {
  if (!IsFastScale<float>(s)) return ScaleVectorSlow(in, out, n, s);
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const auto vs = hn::Set(d, s.f);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto v0 = hn::LoadU(d, in + i);
    const auto v1 = hn::LoadU(d, in + i + N);
    hn::StoreU(hn::Mul(v0, vs), d, out + i);
    hn::StoreU(hn::Mul(v1, vs), d, out + i + N);
  }
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, in + i), vs), d, out + i);
  for (; i < n; ++i) out[i] = ScaleElementFast(in[i], s);
}

HWY_INLINE void ScaleVector(const double* in, double* out, size_t n, const Scale& s) {
  if (!IsFastScale<double>(s)) return ScaleVectorSlow(in, out, n, s);
  const hn::ScalableTag<double> d;
  const size_t N = hn::Lanes(d);
  const auto vs = hn::Set(d, s.d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, in + i), vs), d, out + i);
  for (; i < n; ++i) out[i] = ScaleElementFast(in[i], s);
}

// Narrow types: the exact product rounded to odd, then narrowed.
template <class T>
HWY_INLINE void ScaleVector(const T* in, T* out, size_t n, const Scale& s) {
  static_assert(kNarrow<T>, "float and double have their own overloads");
  if (!IsFastScale<T>(s)) return ScaleVectorSlow(in, out, n, s);
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const numerics::SplitScale split = numerics::Split(s.f);
  const auto vs = hn::Set(df, s.f);
  const auto hi = hn::Set(df, split.hi);
  const auto lo = hn::Set(df, split.lo);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    StoreNarrow(df, ProductRoundToOdd(df, LoadWide(df, in + i), vs, hi, lo), out + i);
  }
  for (; i < n; ++i) out[i] = ScaleElementFast(in[i], s);
}

}  // namespace HWY_NAMESPACE
}  // namespace sparsenorm::cpu
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
