// What to do with one vector once its norm is known, and how each of its
// elements is then scaled: the decision rule of every operator on every
// backend (CPU, reference, CUDA), host and device, in one place.
//
//   non-finite vector                  leave it (count it, or fail the call)
//   norm 0                             leave it (a zero vector has no direction)
//   max-norm and norm <= target        leave it
//   otherwise                          x -> round(x * target / (norm + eps))
//
// The factor is computed in float64. Narrow tables (float32 arithmetic)
// multiply by it rounded to float32 when that is a normal float32 (or zero),
// and in float64 otherwise; when target / (norm + eps) overflows float64 (eps
// = 0 and a float64 vector of subnormal norm), a power of two is taken out of
// the denominator and applied to x first, exactly.
#ifndef SPARSENORM_COMMON_DECISION_H_
#define SPARSENORM_COMMON_DECISION_H_

#include <float.h>
#include <math.h>

#include <type_traits>

#include "common/element_types.h"
#include "common/host_device.h"
#include "common/numerics.h"

namespace sparsenorm {

enum class NormKind : int { kL1 = 0, kL2 = 1, kLInf = 2, kLp = 3 };

SN_HD NormKind KindOf(double p) {
  if (p == 1.0) return NormKind::kL1;
  if (p == 2.0) return NormKind::kL2;
  if (p > DBL_MAX) return NormKind::kLInf;
  return NormKind::kLp;
}

// The options that decide, validated by the front end (core/validate.h).
struct NormRule {
  bool max_norm;  // true: kMaxNorm, false: kConstantNorm
  double target;  // finite, >= 0
  double eps;     // finite, >= 0
  double p;       // > 0
  NormKind kind;  // KindOf(p)
};

// A vector's norm as a kernel computed it.
struct VectorNorm {
  double value;  // ||x||_p; meaningless when !finite
  bool finite;   // false when x holds NaN or +-infinity
};

enum class Action : int { kLeave = 0, kScale = 1, kNonFinite = 2 };

// The decision for one vector and, for kScale, its factor in the forms the
// kernels use: each element x becomes round(2^shift * x * d).
struct Scale {
  Action action;
  double d;         // the float64 factor
  int shift;        // nonzero only when target / (norm + eps) overflows float64
  float f;          // d rounded to float32
  bool fits_float;  // shift == 0 and f is a normal float32 or zero
};

SN_HD Scale LeaveScale(Action action = Action::kLeave) { return Scale{action, 0.0, 0, 0.0f, true}; }

// The scale that multiplies by 2^shift * d.
SN_HD Scale ScaleBy(double d, int shift = 0) {
  return Scale{Action::kScale, d, shift, static_cast<float>(d), shift == 0 && numerics::ScaleFitsFloat(d)};
}

SN_HD Scale Decide(double norm, bool finite, const NormRule& rule) {
  if (!finite) return LeaveScale(Action::kNonFinite);
  if (norm == 0.0) return LeaveScale();
  if (rule.max_norm && norm <= rule.target) return LeaveScale();
  const double denominator = norm + rule.eps;
  const double d = rule.target / denominator;
  if (!(d > DBL_MAX)) return ScaleBy(d);
  const int shift = -ilogb(denominator);
  return ScaleBy(rule.target / ldexp(denominator, shift), shift);
}

SN_HD Scale Decide(VectorNorm n, const NormRule& rule) { return Decide(n.value, n.finite, rule); }

// What happened to a vector, for the statistics.
enum class Outcome : int { kLeft = 0, kScaled = 1, kNonFinite = 2, kZero = 3 };

SN_HD Outcome OutcomeOf(const Scale& s, double norm) {
  if (s.action == Action::kScale) return Outcome::kScaled;
  if (s.action == Action::kNonFinite) return Outcome::kNonFinite;
  return norm == 0.0 ? Outcome::kZero : Outcome::kLeft;
}

// ---------------------------------------------------------------------------
// One stored element times the scale, rounded once to its storage type.

// Whether the common-case form applies: a float32 multiply for float32
// arithmetic, a float64 multiply without shift for float64.
template <class T>
SN_HD bool IsFastScale(const Scale& s) {
  if constexpr (std::is_same_v<typename Element<T>::Compute, double>) {
    return s.shift == 0;
  } else {
    return s.fits_float;
  }
}

SN_HD float Multiply(float x, float s) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(x, s);
#else
  return x * s;
#endif
}

SN_HD double Multiply(double x, double s) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(x, s);
#else
  return x * s;
#endif
}

// Requires IsFastScale<T>(s).
template <class T>
SN_HD T ScaleElementFast(T x, const Scale& s) {
  using E = Element<T>;
  if constexpr (std::is_same_v<typename E::Compute, double>) {
    return E::Round(Multiply(E::Widen(x), s.d));
  } else if constexpr (kNarrow<T>) {
    return E::Round(numerics::ProductRoundToOdd(E::Widen(x), s.f));
  } else {
    return E::Round(Multiply(E::Widen(x), s.f));
  }
}

template <class T>
SN_HD T ScaleElement(T x, const Scale& s) {
  if (IsFastScale<T>(s)) return ScaleElementFast(x, s);
  using E = Element<T>;
  return E::RoundDouble(ldexp(static_cast<double>(E::Widen(x)), s.shift) * s.d);
}

}  // namespace sparsenorm

#endif  // SPARSENORM_COMMON_DECISION_H_
