// Stochastic rounding to float16 and bfloat16, and the counter-based
// generator that feeds it: the random bits of an element are a function of
// (seed, step, row, column) alone, so they do not depend on the thread that
// rounds it, and the CPU and the GPU store the same bits.
//
// Rounding: a value v strictly between two neighbouring 16-bit values lo
// (toward zero) and hi (away from zero) becomes hi when
//   u < (|v| - |lo|) / (|hi| - |lo|) * 2^24,   u = the element's 24 random bits,
// that is with probability equal to v's distance from lo in units of the
// spacing, rounded up to a multiple of 2^-24. v is a float64 that holds the
// exact value to be stored (a float32, or the product of two float32 values,
// 48 bits), and every step below is exact in float64, so the threshold is
// the exact one. A representable v, NaN, and a magnitude above the largest
// finite 16-bit value round to nearest (ties to even), as without stochastic
// rounding.
//
// Generator: a row key from SplitMix64's finalizer over (seed, step, row),
// then per column Chris Wellons' "lowbias32" integer hash of the key mixed
// with the column, whose top 24 bits are u. Both are plain integer
// arithmetic, cheap on the device.
#ifndef SPARSENORM_COMMON_STOCHASTIC_ROUNDING_H_
#define SPARSENORM_COMMON_STOCHASTIC_ROUNDING_H_

#include <math.h>
#include <stdint.h>

#include "common/host_device.h"
#include "common/numerics.h"

namespace sparsenorm::stochastic {

SN_HD uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The key of one row's random stream at one step.
SN_HD uint32_t RowKey(uint64_t seed, int64_t step, int64_t row) {
  const uint64_t a = Mix64(seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(step));
  return static_cast<uint32_t>(Mix64(a ^ static_cast<uint64_t>(row)) >> 32);
}

SN_HD uint32_t Hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// The 24 random bits of column `col` of the row with key `row_key`.
SN_HD uint32_t ElementBits(uint32_t row_key, int64_t col) {
  return Hash32(row_key ^ (static_cast<uint32_t>(col) * 0x9e3779b9u)) >> 8;
}

// The 16-bit formats as the rounding needs them.
struct Half {
  static constexpr double kMaxFinite = 65504.0;
  SN_HD static uint16_t Nearest(double v) { return numerics::DoubleToHalf(v); }
  SN_HD static float ToFloat(uint16_t h) { return numerics::HalfToFloat(h); }
};
struct BFloat16 {
  static constexpr double kMaxFinite = 3.3895313892515355e38;  // 0x7f7f
  SN_HD static uint16_t Nearest(double v) { return numerics::DoubleToBFloat16(v); }
  SN_HD static float ToFloat(uint16_t b) { return numerics::BFloat16ToFloat(b); }
};

// v rounded stochastically with the 24 random bits `u` (see the top).
template <class F>
SN_HD uint16_t Round(double v, uint32_t u) {
  const double a = fabs(v);
  uint16_t lo = F::Nearest(v);
  if (!(a <= F::kMaxFinite)) return lo;  // NaN, infinite or beyond the format
  double lo_value = F::ToFloat(lo);
  if (lo_value == v) return lo;  // representable (also +-0)
  // The bit patterns of the 16-bit formats are monotonic in the magnitude:
  // one step of the pattern is one step of the magnitude, across binades
  // and from the subnormals to the normals; the sign bit stays.
  if (fabs(lo_value) > a) lo = static_cast<uint16_t>(lo - 1u);
  lo_value = fabs(static_cast<double>(F::ToFloat(lo)));
  const uint16_t hi = static_cast<uint16_t>(lo + 1u);
  // Exact: |lo| <= |v| < |hi| <= 2 |lo| (or lo = 0), so the difference is
  // exact (Sterbenz), and the spacing is a power of two.
  const double spacing = fabs(static_cast<double>(F::ToFloat(hi))) - lo_value;
  const double fraction = (a - lo_value) / spacing;
  return static_cast<double>(u) < fraction * 16777216.0 ? hi : lo;
}

}  // namespace sparsenorm::stochastic

#endif  // SPARSENORM_COMMON_STOCHASTIC_ROUNDING_H_
