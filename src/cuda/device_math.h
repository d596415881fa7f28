// The CUDA kernels' own arithmetic, on top of the shared numerics
// (src/common/): the per-lane norm accumulators and their combination, the
// exact fixed-point sums of scattered vectors, the storage traits the
// kernels are instantiated with, and the work layout of a contiguous
// vector. __host__ __device__, C++17, no CUDA header: the host replay of
// the kernels (tests/cuda/emulate.h) runs this very code on every machine.
// The kernels only decide which lane owns which element and in which order
// partial results are combined; emulate.h replays that order.
#ifndef SPARSENORM_CUDA_DEVICE_MATH_H_
#define SPARSENORM_CUDA_DEVICE_MATH_H_

#include <float.h>
#include <math.h>
#include <stdint.h>

#include <type_traits>

#include "common/decision.h"
#include "common/element_types.h"
#include "common/host_device.h"
#include "common/norms.h"
#include "common/numerics.h"
#include "common/optim_rules.h"
#include "common/stochastic_rounding.h"

namespace sparsenorm {
namespace cuda {
namespace num {

// ---------------------------------------------------------------------------
// Per-lane accumulators.

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
  const uint32_t m = numerics::FloatBits(x) & 0x7fffffffu;
  a.max_bits = m > a.max_bits ? m : a.max_bits;
  if (kind == NormKind::kL2) {
    a.sum = fmaf(x, x, a.sum);
  } else if (kind == NormKind::kL1) {
    a.sum = a.sum + fabsf(x);
  }
}

SN_HD void Accumulate(DoubleAcc& a, double x, NormKind kind) {
  const uint64_t m = numerics::DoubleBits(x) & 0x7fffffffffffffffull;
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
SN_HD double AccMax(const FloatAcc& a) { return static_cast<double>(numerics::BitsToFloat(a.max_bits)); }
SN_HD double AccMax(const DoubleAcc& a) { return numerics::BitsToDouble(a.max_bits); }

struct FastNorm {
  double value;   // valid when finite && !fallback
  bool finite;    // false: the vector holds NaN or infinity
  bool fallback;  // true: recompute with the scaled float64 sums
};

// The norm from the combined accumulator, or the verdict that the scaled
// float64 pass is needed (common/norms.h), exactly as the CPU decides.
template <class Acc>
SN_HD FastNorm FinishFast(const Acc& a, NormKind kind) {
  if (!AccFinite(a)) return FastNorm{0.0, false, false};
  switch (kind) {
    case NormKind::kL2:
    case NormKind::kL1:
      if (SumIsTrusted(a.sum, kind)) return FastNorm{NormFromSum(a.sum, kind), true, false};
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

// ---------------------------------------------------------------------------
// The traits the kernels are instantiated with, one per storage type
// (common/element_types.h).

template <class T>
struct DeviceTraits {
  using Storage = T;
  using Compute = typename Element<T>::Compute;
  using Acc = std::conditional_t<std::is_same_v<Compute, double>, DoubleAcc, FloatAcc>;
  static constexpr DType kDType = Element<T>::kDType;
  SN_HD static Compute Widen(T x) { return Element<T>::Widen(x); }
  SN_HD static T Scaled(T x, const Scale& s) { return ScaleElement(x, s); }
  // Only where Fast(s): the common case, without the float64 branch.
  SN_HD static T ScaledFast(T x, const Scale& s) { return ScaleElementFast(x, s); }
  SN_HD static bool Fast(const Scale& s) { return IsFastScale<T>(s); }
};

using F32 = DeviceTraits<float>;
using F64 = DeviceTraits<double>;
using F16 = DeviceTraits<float16>;
using BF16 = DeviceTraits<bfloat16>;

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
SN_HD uint64_t MagnitudeKey(double x) { return numerics::DoubleBits(x) & 0x7fffffffffffffffull; }
SN_HD bool KeyFinite(uint64_t key) { return key < 0x7ff0000000000000ull; }

// ---------------------------------------------------------------------------
// Work layout of a contiguous vector (vector_ops.cuh): accesses of
// AccessElems elements, G lanes per vector.

// Elements per access: 16 bytes when the rows are 16-byte aligned and a
// multiple of 16 bytes long, else one element.
SN_HD int AccessElems(size_t element_size, bool vectorized) {
  return vectorized ? static_cast<int>(16 / element_size) : 1;
}

// Lanes per vector: about two accesses per lane (each lane then reads 32
// contiguous bytes, a full DRAM sector, and a warp keeps several short rows
// in flight), a power of two from 1 to 32.
SN_HD int GroupSizeFor(int64_t accesses) {
  int g = 1;
  while (g < 32 && 2 * static_cast<int64_t>(g) < accesses) g *= 2;
  return g;
}

// ---------------------------------------------------------------------------
// The optimizer step (optim_kernels.cu): what one lane computes for one
// element of an updated row, on top of the rules of common/optim_rules.h.
// The kernel decides only which lane owns which column (lane l of a group of
// G: columns l, l + G, l + 2G, ... in that order) and how the lanes' row
// sums are combined (an XOR butterfly); tests/cuda/emulate_step.h replays
// that.

// Lanes per table row of the step: about two columns per lane (the row
// operator's rule, one element per access). A function of the row length
// alone, so that the row sums, and with them the bits, do not depend on the
// device.
SN_HD int StepGroupSize(int64_t cols) { return GroupSizeFor(cols); }

// Columns per lane whose summed gradient stays in registers between the
// passes over a row (rows of up to 32 * kStepCache columns); the columns
// beyond are summed again in each pass. As the row operator's kCache: with 8
// the update kernels took 128 to 192 registers and spilled (ptxas, sm_90).
// A tuning knob, unmeasured.
constexpr int kStepCache = 4;

// Finite (x - x is 0 for every finite x, NaN otherwise).
template <class C>
SN_HD bool IsFinite(C x) {
  return x - x == C(0);
}

// One element's update by every rule but row-wise Adagrad's (whose factors
// come from the whole row: RowWiseRow, then RowWiseElement): w' and the new
// state values (unused ones pass through), and whether g, w' and the state
// are all finite.
template <class C>
struct UpdatedElement {
  C w;
  C s0;
  C s1;
  bool finite;
};

template <class C>
SN_HD UpdatedElement<C> UpdateElement(const StepRule& rule, C w, C g, C s0, C s1) {
  const StepCoefficients<C>& k = CoefficientsOf<C>(rule);
  UpdatedElement<C> e{w, s0, s1, true};
  switch (rule.kind) {
    case StepKind::kSGD:
      e.w = SgdElement<C>(w, g, rule.decay, k);
      break;
    case StepKind::kAdagrad:
      e.w = AdagradElement<C>(w, g, &e.s0, rule.decay, k);
      break;
    case StepKind::kAdam:
      e.w = AdamElement<C>(w, g, &e.s0, &e.s1, rule.decay, k);
      break;
    case StepKind::kRowWiseAdagrad:
      break;
  }
  e.finite = IsFinite(g) && IsFinite(e.w) && IsFinite(e.s0) && IsFinite(e.s1);
  return e;
}

// The exact value of x * scale as a float64 (x a float32: two 24-bit
// significands fit in 53 bits), the input of stochastic rounding.
SN_HD double ExactScaledValue(float x, const Scale& s) {
  if (s.fits_float) return static_cast<double>(x) * static_cast<double>(s.f);
  return ldexp(static_cast<double>(x), s.shift) * s.d;
}

// x (the arithmetic type of T) times the scale, rounded once to T: the
// row operator's ScaleElement (common/decision.h) for an input that is
// not itself a stored value.
template <class T>
SN_HD T ScaleArithmetic(typename Element<T>::Compute x, const Scale& s) {
  using E = Element<T>;
  if constexpr (!kNarrow<T>) {
    return ScaleElement<T>(x, s);
  } else {
    if (s.fits_float) return E::Round(numerics::ProductRoundToOdd(x, s.f));
    return E::RoundDouble(ldexp(static_cast<double>(x), s.shift) * s.d);
  }
}

// The stored value of an updated element w' (optim.h): round(w' * s) when
// the constraint scales the row, round(w') otherwise; to nearest, or, for
// the 16-bit types under stochastic rounding, with the element's random
// bits (row_key: stochastic::RowKey(seed, step, row)).
template <class T>
SN_HD T StoreElement(typename Element<T>::Compute w, const Scale& s, bool stochastic_rounding,
                     uint32_t row_key, int64_t col) {
  const bool scaled = s.action == Action::kScale;
  if constexpr (kNarrow<T>) {
    if (stochastic_rounding) {
      const double v = scaled ? ExactScaledValue(w, s) : static_cast<double>(w);
      const uint32_t u = stochastic::ElementBits(row_key, col);
      if constexpr (std::is_same_v<T, float16>) {
        return float16{stochastic::Round<stochastic::Half>(v, u)};
      } else {
        return bfloat16{stochastic::Round<stochastic::BFloat16>(v, u)};
      }
    }
  }
  (void)stochastic_rounding;  // float32 and float64 tables: validated to be kNearestEven
  (void)row_key;
  (void)col;
  return scaled ? ScaleArithmetic<T>(w, s) : Element<T>::Round(w);
}

}  // namespace num
}  // namespace cuda
}  // namespace sparsenorm

#endif  // SPARSENORM_CUDA_DEVICE_MATH_H_
