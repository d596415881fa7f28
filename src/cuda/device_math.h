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

}  // namespace num
}  // namespace cuda
}  // namespace sparsenorm

#endif  // SPARSENORM_CUDA_DEVICE_MATH_H_
