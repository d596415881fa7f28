// Scalar numerics shared by the fast kernels, the reference implementation
// and the tests: 16-bit float conversions and the exact-product rounding that
// lets a float32 multiply produce a once-rounded float16/bfloat16 result.
//
// The SIMD kernels in src/cpu/vector_math-inl.h implement the same functions
// lane-wise; the two must agree bit for bit (tests/numerics_test.cc).
#ifndef SPARSENORM_COMMON_NUMERICS_H_
#define SPARSENORM_COMMON_NUMERICS_H_

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>

namespace sparsenorm::numerics {

// ---------------------------------------------------------------------------
// Widening (exact).

inline float BFloat16ToFloat(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

inline float HalfToFloat(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t magnitude = h & 0x7fffu;
  std::uint32_t bits;
  if (magnitude >= 0x7c00u) {  // infinity or NaN: keep the payload
    bits = 0x7f800000u | ((magnitude & 0x3ffu) << 13);
  } else if (magnitude >= 0x0400u) {  // normal: rebias the exponent by 127 - 15
    bits = (magnitude << 13) + (112u << 23);
  } else {  // subnormal or zero: magnitude * 2^-24 is exact in float32
    const float v = static_cast<float>(magnitude) * 0x1p-24f;
    return sign != 0 ? -v : v;
  }
  return std::bit_cast<float>(sign | bits);
}

// ---------------------------------------------------------------------------
// Narrowing from float32, round to nearest, ties to even. NaN stays a quiet
// NaN; overflow becomes infinity.

inline std::uint16_t FloatToBFloat16(float f) {
  std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(x >> 16);
}

inline std::uint16_t FloatToHalf(float f) {
  std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = x & 0x80000000u;
  x ^= sign;
  std::uint32_t h;
  if (x >= 0x47800000u) {  // >= 2^16, infinity or NaN
    h = x > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (x < 0x38800000u) {  // below 2^-14: the float16 subnormal grid
    // Adding 0.5 (whose ulp is 2^-24, the float16 subnormal step) rounds the
    // value to that grid with the FPU's nearest-even rule.
    h = std::bit_cast<std::uint32_t>(std::bit_cast<float>(x) + 0.5f) - 0x3f000000u;
  } else {
    // Rebias the exponent (15 - 127) and add half an ulp minus one, plus the
    // lowest kept bit, so that ties go to even.
    x += 0xc8000fffu + ((x >> 13) & 1u);
    h = x >> 13;
  }
  return static_cast<std::uint16_t>(h | (sign >> 16));
}

// ---------------------------------------------------------------------------
// Correctly rounded narrowing from float64 (nearest, ties to even). Used by
// the reference implementation and by the rare float64-scale paths.

inline std::uint16_t DoubleToHalf(double v) {
  const std::uint16_t sign = std::signbit(v) ? 0x8000u : 0u;
  if (std::isnan(v)) return static_cast<std::uint16_t>(sign | 0x7e00u);
  const double a = std::fabs(v);
  if (a >= 65520.0) return static_cast<std::uint16_t>(sign | 0x7c00u);  // 65504 + half ulp
  if (a < 0x1p-14) {
    // Subnormal grid: multiples of 2^-24. Scaling by 2^24 is exact.
    return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(a * 0x1p24)));
  }
  int e2;
  std::frexp(a, &e2);  // a = m * 2^e2, m in [0.5, 1)
  int exponent = e2 - 1;
  double q = std::nearbyint(std::ldexp(a, 10 - exponent));  // in [1024, 2048]
  if (q == 2048.0) {
    q = 1024.0;
    ++exponent;
  }
  const auto biased = static_cast<std::uint16_t>(exponent + 15);
  return static_cast<std::uint16_t>(sign | (biased << 10) | (static_cast<std::uint16_t>(q) - 1024u));
}

inline std::uint16_t DoubleToBFloat16(double v) {
  const std::uint16_t sign = std::signbit(v) ? 0x8000u : 0u;
  if (std::isnan(v)) return static_cast<std::uint16_t>(sign | 0x7fc0u);
  const double a = std::fabs(v);
  // Largest bfloat16 is (2 - 2^-7) * 2^127; half an ulp above it rounds up.
  if (a >= (2.0 - 0x1p-8) * 0x1p127) return static_cast<std::uint16_t>(sign | 0x7f80u);
  if (a < 0x1p-126) {
    return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(a * 0x1p133)));
  }
  int e2;
  std::frexp(a, &e2);
  int exponent = e2 - 1;
  double q = std::nearbyint(std::ldexp(a, 7 - exponent));  // in [128, 256]
  if (q == 256.0) {
    q = 128.0;
    ++exponent;
  }
  const auto biased = static_cast<std::uint16_t>(exponent + 127);
  return static_cast<std::uint16_t>(sign | (biased << 7) | (static_cast<std::uint16_t>(q) - 128u));
}

// ---------------------------------------------------------------------------
// The exact product x * s, for x with at most 12 significant bits (every
// float16 and bfloat16 value), rounded to float32 *to odd*.
//
// Rounding to odd at float32 precision and then to nearest-even at float16 or
// bfloat16 precision gives the correctly rounded result of the exact product
// (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums: proved
// algorithms using rounding to odd", 2008), because float32 carries at least
// two more bits than either target. This is what makes "one rounding per
// element" hold for the 16-bit storage types.
//
// s is split into a high part of 12 significant bits and the rest, so both
// partial products are exact in float32 without an FMA; the error of their
// sum is exact by Fast2Sum since |x * hi| >= |x * lo|. The identity fails
// only when a partial product underflows float32 (|x * s| < 2^-114), where
// the result may be one bfloat16 subnormal ulp off.

struct SplitScale {
  float hi;
  float lo;
};

inline SplitScale Split(float s) {
  const float hi = std::bit_cast<float>(std::bit_cast<std::uint32_t>(s) & 0xfffff000u);
  return {hi, s - hi};
}

inline float ProductRoundToOdd(float x, SplitScale s) {
  const float a = x * s.hi;
  const float b = x * s.lo;
  const float p = a + b;
  const float e = b - (p - a);  // exact: p + e == a + b
  // When p overflows, e is an infinity or NaN: a NaN e leaves p as it is, an
  // infinite one steps p back to FLT_MAX | 1, which narrows to infinity just
  // as p would.
  if (!(std::fabs(e) > 0.0f)) return p;
  std::uint32_t bits = std::bit_cast<std::uint32_t>(p);
  // Truncate toward zero: p overshoots |x*s| exactly when e and p have
  // opposite signs; then step one ulp back toward zero.
  bits -= (std::bit_cast<std::uint32_t>(e) ^ bits) >> 31;
  return std::bit_cast<float>(bits | 1u);
}

// ---------------------------------------------------------------------------
// The scale actually applied to a row: float64 tables use `scale` as it is;
// narrower tables use it rounded to float32 when that is a normal float32 (or
// zero), and keep the float64 value otherwise.

inline bool ScaleFitsFloat(double scale) {
  return scale == 0.0 || (scale >= static_cast<double>(FLT_MIN) && scale <= static_cast<double>(FLT_MAX));
}

}  // namespace sparsenorm::numerics

#endif  // SPARSENORM_COMMON_NUMERICS_H_
