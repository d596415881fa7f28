// How a norm is formed from sums, on every backend, host and device.
//
// The fast path sums in the arithmetic type of the storage type (float32 for
// float32, float16 and bfloat16; float64 for float64): |x| for p = 1, x^2
// for p = 2, and max |x| for p = infinity. A sum that overflowed, or that
// came out so small that squares may have been lost to underflow, is not
// trusted; then, and for every other p, the norm is recomputed in float64
// after dividing by m = max |x| (the "scaled" path), which neither
// overflows nor underflows for any finite vector.
#ifndef SPARSENORM_COMMON_NORMS_H_
#define SPARSENORM_COMMON_NORMS_H_

#include <float.h>
#include <math.h>

#include "common/decision.h"
#include "common/host_device.h"

namespace sparsenorm {

// Below these a sum of squares may have lost terms to underflow: each lost
// square is under the type's smallest normal, so relative to the sum the loss
// is at most n * 2^-26 for float32 and n * 2^-122 for float64.
SN_HD float SmallestTrustedSum(float) { return 0x1p-100f; }
SN_HD double SmallestTrustedSum(double) { return 0x1p-900; }
SN_HD float LargestSum(float) { return FLT_MAX; }
SN_HD double LargestSum(double) { return DBL_MAX; }

// Whether a fast-path sum of kind kL1 or kL2 gives the norm as it is.
template <class C>
SN_HD bool SumIsTrusted(C sum, NormKind kind) {
  if (kind == NormKind::kL2) return sum <= LargestSum(C()) && sum >= SmallestTrustedSum(C());
  return sum <= LargestSum(C());
}

// The norm from a trusted fast-path sum.
template <class C>
SN_HD double NormFromSum(C sum, NormKind kind) {
  return kind == NormKind::kL2 ? sqrt(static_cast<double>(sum)) : static_cast<double>(sum);
}

// The scaled path: each element contributes ScaledTerm(x, m), and the
// norm is FinishScaled(m, sum of the terms). m = max |x| > 0, finite.
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

}  // namespace sparsenorm

#endif  // SPARSENORM_COMMON_NORMS_H_
