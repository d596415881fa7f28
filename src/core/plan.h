// What to do with one vector once its norm is known: the decision rule of
// every operator, on every backend, in one place.
#ifndef SPARSENORM_CORE_PLAN_H_
#define SPARSENORM_CORE_PLAN_H_

#include <cmath>

#include "common/numerics.h"
#include "sparsenorm/types.h"

namespace sparsenorm::detail {

enum class NormKind { kL1, kL2, kLInf, kLp };

inline NormKind KindOf(double p) {
  if (p == 1.0) return NormKind::kL1;
  if (p == 2.0) return NormKind::kL2;
  if (std::isinf(p)) return NormKind::kLInf;
  return NormKind::kLp;
}

struct VectorNorm {
  double value;  // ||x||_p; meaningless when !finite
  bool finite;   // false when x holds NaN or +-infinity
};

enum class Action { kLeave, kScale, kNonFinite };

// For kScale: each element x becomes round(2^shift * x * scale). shift is 0
// except when target / (norm + eps) overflows float64, which takes eps = 0
// and a float64 vector of subnormal norm; then the power of two brings the
// vector near 1 first (exactly) and the factor stays finite.
struct Plan {
  Action action;
  double scale;
  int shift;
};

inline Plan PlanFor(VectorNorm n, const NormalizeOptions& o) {
  if (!n.finite) return {Action::kNonFinite, 0.0, 0};
  if (n.value == 0.0) return {Action::kLeave, 0.0, 0};  // a zero vector has no direction
  if (o.mode == NormMode::kMaxNorm && n.value <= o.target) return {Action::kLeave, 0.0, 0};
  const double denominator = n.value + o.eps;
  const double scale = o.target / denominator;
  if (!std::isinf(scale)) return {Action::kScale, scale, 0};
  const int shift = -std::ilogb(denominator);
  return {Action::kScale, o.target / std::ldexp(denominator, shift), shift};
}

// The scale in the forms the kernels use (see numerics::ScaleFitsFloat).
struct ScaleFactor {
  double d;                    // the float64 scale
  int shift;                   // power of two applied to x first (Plan)
  float f;                     // rounded to float32, when fits_float
  bool fits_float;             // false: narrow tables use d (and shift)
  numerics::SplitScale split;  // f split for the exact 16-bit products
};

inline ScaleFactor MakeScale(double scale, int shift = 0) {
  ScaleFactor s;
  s.d = scale;
  s.shift = shift;
  s.fits_float = shift == 0 && numerics::ScaleFitsFloat(scale);
  s.f = static_cast<float>(scale);
  s.split = numerics::Split(s.f);
  return s;
}

}  // namespace sparsenorm::detail

#endif  // SPARSENORM_CORE_PLAN_H_
