// The scalar oracle: every operator written for clarity, serial, in float64
// or better (long double sums), with the rounding rules of the public
// contract, and no SIMD. Every fast path is tested against it;
// Backend::kReference and SPARSENORM_BACKEND=reference route public calls
// here (the backend functions are declared in core/backend.h). Its decision
// rule and norms are written here again on purpose, independently of
// src/common/decision.h and norms.h, so that it judges them.
//
// These helpers are also what the tests use to build expected values.
#ifndef SPARSENORM_REFERENCE_REFERENCE_H_
#define SPARSENORM_REFERENCE_REFERENCE_H_

#include <cstdint>
#include <vector>

#include "common/decision.h"
#include "sparsenorm/types.h"

namespace sparsenorm::reference {

// Element `offset` of an array of `dtype`, widened exactly to double.
double Load(const void* data, DType dtype, std::int64_t offset);

// Stores `value` rounded once to `dtype` (nearest, ties to even).
void StoreRounded(void* data, DType dtype, std::int64_t offset, double value);

// Index `i` of an int32 or int64 list.
std::int64_t IndexValue(const void* data, IndexType type, std::int64_t i);

// ||x||_p computed with long double sums after dividing by max |x|.
// NaN when x holds NaN or infinity.
double Norm(const std::vector<double>& x, double p);

// The options a validated rule came from (the reference decides with the
// public options, not with src/common/decision.h).
NormalizeOptions OptionsOf(const NormRule& rule);

// Whether a finite vector with this norm is rescaled under `options`.
bool IsScaled(double norm, const NormalizeOptions& options);

// How a rescaled vector of `dtype` is multiplied: x -> 2^shift * x * factor
// with factor = target / (norm + eps), rounded to float32 for narrow dtypes
// when it is a normal float32 (rows.h). shift is nonzero only when that
// quotient overflows float64; then the power of two is taken out of it.
struct AppliedScale {
  double factor;
  int shift;
};
AppliedScale EffectiveScale(double norm, DType dtype, const NormalizeOptions& options);

}  // namespace sparsenorm::reference

#endif  // SPARSENORM_REFERENCE_REFERENCE_H_
