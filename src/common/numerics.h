// Scalar numerics of every backend, host and device: the 16-bit float
// conversions and the exact-product rounding that gives float16 and bfloat16
// elements one rounding each. The CPU's scalar code, the reference, the CUDA
// kernels and the host replay of those kernels in the tests all call these
// functions; the CPU's SIMD kernels (src/cpu/vector_math-inl.h) are their
// lane-wise twins and are tested against them (tests/numerics/).
//
// C++17, no CUDA header, no reliance on contraction: every target compiles
// with contraction off (-ffp-contract=off, nvcc --fmad=false) and fmaf is
// written where a fused operation is meant. Only the bit casts and three
// conversions have separate device bodies (see HalfToFloat).
#ifndef SPARSENORM_COMMON_NUMERICS_H_
#define SPARSENORM_COMMON_NUMERICS_H_

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/host_device.h"

namespace sparsenorm::numerics {

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
// Widening (exact).
//
// HalfToFloat, FloatToHalf and FloatToBFloat16 have two bodies: integer code
// on the host, the hardware's conversion instruction on the device (cvt,
// IEEE: exact when widening, nearest-even when narrowing, subnormals kept).
// They agree on every input the kernels convert (the host bodies are tested
// to be correctly rounded; NaN payloads aside, which no kernel stores), and
// the GPU tests check the kernels against the host replay bit for bit. The
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

// ---------------------------------------------------------------------------
// Narrowing from float32, round to nearest, ties to even. NaN stays a quiet
// NaN; overflow becomes infinity.

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
    // the value to that grid with the FPU's nearest-even rule.
    h = FloatBits(BitsToFloat(x) + 0.5f) - 0x3f000000u;
  } else {
    // Rebias the exponent (15 - 127) and add half an ulp minus one, plus the
    // lowest kept bit, so that ties go to even.
    x += 0xc8000fffu + ((x >> 13) & 1u);
    h = x >> 13;
  }
  return static_cast<uint16_t>(h | (sign >> 16));
#endif
}

// ---------------------------------------------------------------------------
// Narrowing from float64, correctly rounded (nearest, ties to even).
//
// float64 -> float32 rounded to odd: truncate toward zero, then set the last
// bit when anything was cut off. Rounding to odd at float32 and then to
// nearest-even at 16 bits is the correctly rounded float64 -> 16-bit
// conversion (Boldo & Melquiond, "Emulation of FMA and correctly rounded
// sums: proved algorithms using rounding to odd", 2008), because float32
// carries at least two more bits than float16 and bfloat16 at every
// exponent, subnormals included.
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

// ---------------------------------------------------------------------------
// The exact product x * s rounded to float32 *to odd*, for x with at most 12
// significant bits (every float16 and bfloat16 value). Narrowing it to 16
// bits with nearest-even gives the correctly rounded exact product, by the
// argument above: this is what makes "one rounding per element" hold for
// the 16-bit storage types.
//
// The error term comes from one fused multiply-add, exact whenever x * s
// does not underflow float32 (|x * s| >= 2^-110 is ample); below, the
// result may be one bfloat16 subnormal ulp off (float16 rounds such values
// to zero either way).
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

// Targets without a fused multiply-add (the CPU's SSE4 kernels) form the
// same exact product from a scale split into a high part of 12 significant
// bits and the rest: both partial products are then exact in float32, and
// their sum's error is exact by Fast2Sum since |x * hi| >= |x * lo|.
struct SplitScale {
  float hi;
  float lo;
};

SN_HD SplitScale Split(float s) {
  const float hi = BitsToFloat(FloatBits(s) & 0xfffff000u);
  return SplitScale{hi, s - hi};
}

// ---------------------------------------------------------------------------
// Whether a scale can be applied as a float32 multiply: a normal float32 or
// zero. Otherwise narrow tables apply it in float64 (decision.h).

SN_HD bool ScaleFitsFloat(double scale) {
  return scale == 0.0 || (scale >= static_cast<double>(FLT_MIN) && scale <= static_cast<double>(FLT_MAX));
}

}  // namespace sparsenorm::numerics

#endif  // SPARSENORM_COMMON_NUMERICS_H_
