// The arithmetic of the CUDA kernels, written once as __host__ __device__
// functions so that the host-side tests run the very code the device runs
// (tests/cuda_numerics_test.cc compares it with the CPU path and the
// reference on this machine, GPU or not).
//
// Per element: widening of the storage types, the once-rounded scaling
// (round to odd of the exact product, then nearest-even), the correctly
// rounded narrowing from float64. Per vector: the norm accumulators, their
// combination, the overflow/underflow fallback test, and the decision rule
// with the scale factor. The kernels only decide which lane owns which
// element and in which order partial results are combined; emulate.h
// replays that order on the host.
//
// This header must compile as C++17 under nvcc and as plain C++ under the
// host compiler without CUDA headers: no std::bit_cast, no <bit>, and no
// reliance on implicit contraction (the CUDA sources are built with
// --fmad=false and use fmaf explicitly where a fused operation is meant,
// exactly as this code does on the host). The only device-specific bodies
// are the bit casts and the three 16-bit conversions (see HalfToFloat).
#ifndef SPARSENORM_CUDA_DEVICE_NUMERICS_H_
#define SPARSENORM_CUDA_DEVICE_NUMERICS_H_

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define SN_HD __host__ __device__ __forceinline__
#else
#define SN_HD inline
#endif

namespace sparsenorm {
namespace cuda {
namespace num {

// ---------------------------------------------------------------------------
// Bit access.

SN_HD uint32_t FloatBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
#endif
}

SN_HD float BitsToFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
#endif
}

SN_HD uint64_t DoubleBits(double d) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(d));
#else
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
#endif
}

SN_HD double BitsToDouble(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
#endif
}

// ---------------------------------------------------------------------------
// Storage types. 16-bit values travel as their raw bits (uint16_t); the
// device code never uses __half or __nv_bfloat16, whose conversions this
// header cannot reproduce on the host.

enum class Kind : int { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };

// The three conversions below have two bodies: integer code on the host,
// the hardware's conversion instruction on the device (cvt, IEEE: exact when
// widening, nearest-even when narrowing, subnormals kept). They agree on
// every input that the kernels convert (the host bodies are tested to be
// correctly rounded; NaN payloads aside, which no kernel stores), and the
// GPU tests check the kernels against the host replay bit for bit. The
// instruction is several times cheaper than the integer code, which would
// otherwise make the 16-bit kernels compute-bound on an H100.
SN_HD float HalfToFloat(uint16_t h) {
#if defined(__CUDA_ARCH__)
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#else
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t magnitude = h & 0x7fffu;
  uint32_t bits;
  if (magnitude >= 0x7c00u) {  // infinity or NaN: keep the payload
    bits = 0x7f800000u | ((magnitude & 0x3ffu) << 13);
  } else if (magnitude >= 0x0400u) {  // normal: rebias the exponent by 127 - 15
    bits = (magnitude << 13) + (112u << 23);
  } else {  // subnormal or zero: magnitude * 2^-24 is exact in float32
    const float v = static_cast<float>(magnitude) * 0x1p-24f;
    return sign != 0 ? -v : v;
  }
  return BitsToFloat(sign | bits);
#endif
}

SN_HD float BFloat16ToFloat(uint16_t b) { return BitsToFloat(static_cast<uint32_t>(b) << 16); }

// float32 -> 16 bits, nearest-even; NaN stays NaN, overflow is infinity.
SN_HD uint16_t FloatToBFloat16(float f) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint16_t h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else
  uint32_t x = FloatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
#endif
}

SN_HD uint16_t FloatToHalf(float f) {
#if defined(__CUDA_ARCH__)
  uint16_t h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else
  uint32_t x = FloatBits(f);
  const uint32_t sign = x & 0x80000000u;
  x ^= sign;
  uint32_t h;
  if (x >= 0x47800000u) {  // >= 2^16, infinity or NaN
    h = x > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (x < 0x38800000u) {  // below 2^-14: the float16 subnormal grid
    // 0.5 has an ulp of 2^-24, the float16 subnormal step: the add rounds
    // to that grid with the FPU's nearest-even rule.
    h = FloatBits(BitsToFloat(x) + 0.5f) - 0x3f000000u;
  } else {
    x += 0xc8000fffu + ((x >> 13) & 1u);
    h = x >> 13;
  }
  return static_cast<uint16_t>(h | (sign >> 16));
#endif
}

// float64 -> float32 rounded to odd: truncate toward zero, then set the
// last bit when anything was cut off. Rounding to odd at float32 and then to
// nearest-even at 16 bits is the correctly rounded float64 -> 16-bit
// conversion (float32 carries at least two more bits than float16 and
// bfloat16 at every exponent, subnormals included).
SN_HD float DoubleToFloatRoundToOdd(double d) {
  const float f = static_cast<float>(d);  // nearest-even
  if (static_cast<double>(f) == d || d != d) return f;
  uint32_t bits = FloatBits(f);
  // f lies beyond d (further from zero): step one ulp back toward zero. An
  // infinite f (d above FLT_MAX) steps back to FLT_MAX, which is odd and
  // narrows to infinity in both 16-bit formats, as d does.
  if (fabs(static_cast<double>(f)) > fabs(d)) bits -= 1u;
  return BitsToFloat(bits | 1u);
}

SN_HD uint16_t DoubleToHalf(double d) { return FloatToHalf(DoubleToFloatRoundToOdd(d)); }
SN_HD uint16_t DoubleToBFloat16(double d) { return FloatToBFloat16(DoubleToFloatRoundToOdd(d)); }

// The exact product x * s rounded to float32 *to odd* (see
// src/common/numerics.h for why this gives one rounding per 16-bit element).
// The error term comes from one fused multiply-add, exact whenever x * s
// does not underflow float32 (|x * s| >= 2^-100 or so); below, the result
// may be one bfloat16 subnormal ulp off, as on the CPU.
SN_HD float ProductRoundToOdd(float x, float s) {
#if defined(__CUDA_ARCH__)
  const float p = __fmul_rn(x, s);
#else
  const float p = x * s;
#endif
  const float e = fmaf(x, s, -p);  // exact: p + e == x * s
  // When p overflows, e is an infinity or NaN: a NaN e leaves p as it is; an
  // infinite e steps p back to FLT_MAX | 1, which narrows to infinity as p
  // would.
  if (!(fabsf(e) > 0.0f)) return p;
  uint32_t bits = FloatBits(p);
  bits -= (FloatBits(e) ^ bits) >> 31;  // p beyond x*s: one ulp toward zero
  return BitsToFloat(bits | 1u);
}

// ---------------------------------------------------------------------------
// Norms.

enum class NormKind : int { kL1 = 0, kL2 = 1, kLInf = 2, kLp = 3 };

SN_HD NormKind KindOf(double p) {
  if (p == 1.0) return NormKind::kL1;
  if (p == 2.0) return NormKind::kL2;
  if (p > DBL_MAX) return NormKind::kLInf;
  return NormKind::kLp;
}

// A lane's partial result for float32 arithmetic (float32, float16 and
// bfloat16 storage): the sum for p = 1 or 2, and max |x| as the bit pattern
// of a non-negative float (integer order is float order there, and NaN and
// infinity patterns are >= 0x7f800000, so the same max detects them).
struct FloatAcc {
  float sum;
  uint32_t max_bits;
};

// The same for float64 storage.
struct DoubleAcc {
  double sum;
  uint64_t max_bits;
};

SN_HD FloatAcc ZeroAcc(float) { return FloatAcc{0.0f, 0u}; }
SN_HD DoubleAcc ZeroAcc(double) { return DoubleAcc{0.0, 0u}; }

// One element into a lane's accumulator. p = 2 uses a fused multiply-add,
// as the CPU kernels do.
SN_HD void Accumulate(FloatAcc& a, float x, NormKind kind) {
  const uint32_t m = FloatBits(x) & 0x7fffffffu;
  a.max_bits = m > a.max_bits ? m : a.max_bits;
  if (kind == NormKind::kL2) {
    a.sum = fmaf(x, x, a.sum);
  } else if (kind == NormKind::kL1) {
    a.sum = a.sum + fabsf(x);
  }
}

SN_HD void Accumulate(DoubleAcc& a, double x, NormKind kind) {
  const uint64_t m = DoubleBits(x) & 0x7fffffffffffffffull;
  a.max_bits = m > a.max_bits ? m : a.max_bits;
  if (kind == NormKind::kL2) {
    a.sum = fma(x, x, a.sum);
  } else if (kind == NormKind::kL1) {
    a.sum = a.sum + fabs(x);
  }
}

// Two lanes' partials. Addition is commutative in IEEE arithmetic, so the
// two lanes of a butterfly step compute the same value.
SN_HD FloatAcc Combine(FloatAcc a, FloatAcc b) {
  return FloatAcc{a.sum + b.sum, a.max_bits > b.max_bits ? a.max_bits : b.max_bits};
}
SN_HD DoubleAcc Combine(DoubleAcc a, DoubleAcc b) {
  return DoubleAcc{a.sum + b.sum, a.max_bits > b.max_bits ? a.max_bits : b.max_bits};
}

SN_HD bool AccFinite(const FloatAcc& a) { return a.max_bits < 0x7f800000u; }
SN_HD bool AccFinite(const DoubleAcc& a) { return a.max_bits < 0x7ff0000000000000ull; }
SN_HD double AccMax(const FloatAcc& a) { return static_cast<double>(BitsToFloat(a.max_bits)); }
SN_HD double AccMax(const DoubleAcc& a) { return BitsToDouble(a.max_bits); }

// Below these a sum of squares may have lost terms to underflow (the CPU's
// thresholds, vector_math-inl.h).
SN_HD float SmallestTrustedSum(float) { return 0x1p-100f; }
SN_HD double SmallestTrustedSum(double) { return 0x1p-900; }
SN_HD float LargestSum(float) { return FLT_MAX; }
SN_HD double LargestSum(double) { return DBL_MAX; }

struct FastNorm {
  double value;   // valid when finite && !fallback
  bool finite;    // false: the vector holds NaN or infinity
  bool fallback;  // true: recompute with the scaled float64 sums
};

// The norm from the combined accumulator, or the verdict that the scaled
// float64 pass is needed (p other than 1, 2, infinity, or a float sum that
// overflowed or came out too small to trust), exactly as the CPU decides.
template <class Acc>
SN_HD FastNorm FinishFast(const Acc& a, NormKind kind) {
  if (!AccFinite(a)) return FastNorm{0.0, false, false};
  using C = decltype(a.sum);
  switch (kind) {
    case NormKind::kL2:
      if (a.sum <= LargestSum(C()) && a.sum >= SmallestTrustedSum(C())) {
        return FastNorm{sqrt(static_cast<double>(a.sum)), true, false};
      }
      break;
    case NormKind::kL1:
      if (a.sum <= LargestSum(C())) return FastNorm{static_cast<double>(a.sum), true, false};
      break;
    case NormKind::kLInf:
      return FastNorm{AccMax(a), true, false};
    case NormKind::kLp:
      break;
  }
  // A zero vector needs no second pass either: its norm is 0 for every p.
  if (a.max_bits == 0) return FastNorm{0.0, true, false};
  return FastNorm{0.0, true, true};
}

// The fallback: sum of (|x| / m)^p in float64, m = max |x| > 0 (the CPU's
// ScaledNorm). Only the order of the additions differs from the CPU.
SN_HD double ScaledTerm(double x, double m, NormKind kind, double p) {
  const double a = fabs(x) / m;
  if (kind == NormKind::kL1) return a;
  if (kind == NormKind::kL2) return a * a;
  return pow(a, p);
}

SN_HD double FinishScaled(double m, double sum, NormKind kind, double p) {
  if (kind == NormKind::kL1) return m * sum;
  if (kind == NormKind::kL2) return m * sqrt(sum);
  return m * pow(sum, 1.0 / p);
}

// ---------------------------------------------------------------------------
// The decision rule and the scale (src/core/plan.h's PlanFor and MakeScale).

enum class Action : int { kLeave = 0, kScale = 1, kNonFinite = 2 };

struct NormParams {
  int mode;  // 0: max-norm, 1: constant-norm
  double target;
  double eps;
  double p;
  NormKind kind;
};

struct Scale {
  Action action;
  double d;         // the float64 factor
  int shift;        // power of two applied to x first (only when target / (n + eps) overflows)
  float f;          // d rounded to float32
  bool fits_float;  // false: narrow storage uses d (and shift)
};

SN_HD bool ScaleFitsFloat(double s) {
  return s == 0.0 || (s >= static_cast<double>(FLT_MIN) && s <= static_cast<double>(FLT_MAX));
}

SN_HD Scale PlanFor(double norm, bool finite, const NormParams& o) {
  Scale s{Action::kLeave, 0.0, 0, 0.0f, true};
  if (!finite) {
    s.action = Action::kNonFinite;
    return s;
  }
  if (norm == 0.0) return s;
  if (o.mode == 0 && norm <= o.target) return s;
  const double denominator = norm + o.eps;
  double scale = o.target / denominator;
  int shift = 0;
  if (scale > DBL_MAX) {
    shift = -ilogb(denominator);
    scale = o.target / ldexp(denominator, shift);
  }
  s.action = Action::kScale;
  s.d = scale;
  s.shift = shift;
  s.f = static_cast<float>(scale);
  s.fits_float = shift == 0 && ScaleFitsFloat(scale);
  return s;
}

// One stored element times the scale, rounded once to its storage type.
SN_HD float ScaleElement(float x, const Scale& s) {
  if (s.fits_float) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(x, s.f);
#else
    return x * s.f;
#endif
  }
  return static_cast<float>(ldexp(static_cast<double>(x), s.shift) * s.d);
}

SN_HD double ScaleElement(double x, const Scale& s) {
  if (s.shift != 0) return ldexp(x, s.shift) * s.d;
#if defined(__CUDA_ARCH__)
  return __dmul_rn(x, s.d);
#else
  return x * s.d;
#endif
}

SN_HD uint16_t ScaleHalf(uint16_t bits, const Scale& s) {
  const float x = HalfToFloat(bits);
  if (s.fits_float) return FloatToHalf(ProductRoundToOdd(x, s.f));
  return DoubleToHalf(ldexp(static_cast<double>(x), s.shift) * s.d);
}

SN_HD uint16_t ScaleBFloat16(uint16_t bits, const Scale& s) {
  const float x = BFloat16ToFloat(bits);
  if (s.fits_float) return FloatToBFloat16(ProductRoundToOdd(x, s.f));
  return DoubleToBFloat16(ldexp(static_cast<double>(x), s.shift) * s.d);
}

// ---------------------------------------------------------------------------
// Storage traits: one per dtype, used by the kernels and by emulate.h.

struct F32 {
  using Storage = float;
  using Compute = float;
  using Acc = FloatAcc;
  static constexpr Kind kKind = Kind::kFloat32;
  SN_HD static float Widen(float x) { return x; }
  SN_HD static float Scaled(float x, const Scale& s) { return ScaleElement(x, s); }
  // The scale is a normal float32 (Scale::fits_float): the common case.
  SN_HD static float ScaledFast(float x, const Scale& s) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(x, s.f);
#else
    return x * s.f;
#endif
  }
  SN_HD static bool Fast(const Scale& s) { return s.fits_float; }
};

struct F64 {
  using Storage = double;
  using Compute = double;
  using Acc = DoubleAcc;
  static constexpr Kind kKind = Kind::kFloat64;
  SN_HD static double Widen(double x) { return x; }
  SN_HD static double Scaled(double x, const Scale& s) { return ScaleElement(x, s); }
  SN_HD static double ScaledFast(double x, const Scale& s) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(x, s.d);
#else
    return x * s.d;
#endif
  }
  SN_HD static bool Fast(const Scale& s) { return s.shift == 0; }
};

struct F16 {
  using Storage = uint16_t;
  using Compute = float;
  using Acc = FloatAcc;
  static constexpr Kind kKind = Kind::kFloat16;
  SN_HD static float Widen(uint16_t x) { return HalfToFloat(x); }
  SN_HD static uint16_t Scaled(uint16_t x, const Scale& s) { return ScaleHalf(x, s); }
  SN_HD static uint16_t ScaledFast(uint16_t x, const Scale& s) {
    return FloatToHalf(ProductRoundToOdd(HalfToFloat(x), s.f));
  }
  SN_HD static bool Fast(const Scale& s) { return s.fits_float; }
};

struct BF16 {
  using Storage = uint16_t;
  using Compute = float;
  using Acc = FloatAcc;
  static constexpr Kind kKind = Kind::kBFloat16;
  SN_HD static float Widen(uint16_t x) { return BFloat16ToFloat(x); }
  SN_HD static uint16_t Scaled(uint16_t x, const Scale& s) { return ScaleBFloat16(x, s); }
  SN_HD static uint16_t ScaledFast(uint16_t x, const Scale& s) {
    return FloatToBFloat16(ProductRoundToOdd(BFloat16ToFloat(x), s.f));
  }
  SN_HD static bool Fast(const Scale& s) { return s.fits_float; }
};

// Pruning: |w| < tau, with NaN never pruned.
template <class Tr>
SN_HD bool BelowThreshold(typename Tr::Storage x, double tau) {
  return fabs(static_cast<double>(Tr::Widen(x))) < tau;
}

// ---------------------------------------------------------------------------
// Deterministic accumulation for vectors whose elements are scattered over
// the matrix (CSR columns, CSC rows, COO): each element adds its term
// (|x| / m)^p, a number in [0, 1] with m the vector's max |x|, as an
// unsigned fixed-point integer with 63 fractional bits into a 128-bit
// per-vector sum. Integer addition is associative, so the result does not
// depend on the order in which threads arrive, and the rounding of each
// term costs at most 2^-64 relative to the sum (which is >= 1: the largest
// element contributes exactly 1).

SN_HD uint64_t FixedTerm(double t) {
  // t in [0, 1]; 2^63 * t <= 2^63 fits; round to nearest.
  return static_cast<uint64_t>(t * 0x1p63 + 0.5);
}

SN_HD double FixedToDouble(uint64_t hi, uint64_t lo) {
  // hi * 2^64 + lo, in units of 2^-63.
  return static_cast<double>(hi) * 2.0 + static_cast<double>(lo) * 0x1p-63;
}

// The key of the max |x| of a float64 value for a 64-bit atomicMax: the
// magnitude bits (non-finite values compare above every finite one).
SN_HD uint64_t MagnitudeKey(double x) { return DoubleBits(x) & 0x7fffffffffffffffull; }
SN_HD bool KeyFinite(uint64_t key) { return key < 0x7ff0000000000000ull; }

// ---------------------------------------------------------------------------
// Work layout of a contiguous vector (vector_ops.cuh): accesses of
// AccessElems elements, G lanes per vector.

// Elements per access: 16 bytes when the rows are 16-byte aligned and a
// multiple of 16 bytes long, else one element.
SN_HD int AccessElems(Kind kind, bool vectorized) {
  if (!vectorized) return 1;
  return kind == Kind::kFloat64 ? 2 : kind == Kind::kFloat32 ? 4 : 8;
}

// Lanes per vector: about two accesses per lane (each lane then reads 32
// contiguous bytes, a full DRAM sector, and a warp keeps several short rows
// in flight), a power of two from 1 to 32.
SN_HD int GroupSizeFor(int64_t accesses) {
  int g = 1;
  while (g < 32 && 2 * static_cast<int64_t>(g) < accesses) g *= 2;
  return g;
}

}  // namespace num
}  // namespace cuda
}  // namespace sparsenorm

#endif  // SPARSENORM_CUDA_DEVICE_NUMERICS_H_
