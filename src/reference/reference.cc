#include "reference/reference.h"

#include <algorithm>
#include <cmath>

#include "common/element_types.h"
#include "common/numerics.h"

namespace sparsenorm::reference {

double Load(const void* data, DType dtype, std::int64_t offset) {
  double v = 0.0;
  VisitDType(dtype, [&](auto t) {
    using T = TypeOf<decltype(t)>;
    v = static_cast<double>(Element<T>::Widen(static_cast<const T*>(data)[offset]));
  });
  return v;
}

void StoreRounded(void* data, DType dtype, std::int64_t offset, double value) {
  VisitDType(dtype, [&](auto t) {
    using T = TypeOf<decltype(t)>;
    static_cast<T*>(data)[offset] = Element<T>::RoundDouble(value);
  });
}

std::int64_t IndexValue(const void* data, IndexType type, std::int64_t i) {
  std::int64_t v = 0;
  VisitIndexType(type, [&](auto t) { v = static_cast<const TypeOf<decltype(t)>*>(data)[i]; });
  return v;
}

double Norm(const std::vector<double>& x, double p) {
  long double m = 0;
  for (double v : x) {
    if (!std::isfinite(v)) return std::nan("");
    m = std::max(m, static_cast<long double>(std::fabs(v)));
  }
  if (m == 0 || std::isinf(p)) return static_cast<double>(m);
  long double sum = 0;
  for (double v : x) sum += std::pow(std::fabs(v) / m, static_cast<long double>(p));
  return static_cast<double>(m * std::pow(sum, 1.0L / p));
}

NormalizeOptions OptionsOf(const NormRule& rule) {
  NormalizeOptions o;
  o.mode = rule.max_norm ? NormMode::kMaxNorm : NormMode::kConstantNorm;
  o.target = rule.target;
  o.eps = rule.eps;
  o.p = rule.p;
  return o;
}

bool IsScaled(double norm, const NormalizeOptions& options) {
  if (norm == 0.0) return false;
  return options.mode == NormMode::kConstantNorm || norm > options.target;
}

AppliedScale EffectiveScale(double norm, DType dtype, const NormalizeOptions& options) {
  const double denominator = norm + options.eps;
  AppliedScale s{options.target / denominator, 0};
  if (std::isinf(s.factor)) {
    s.shift = -std::ilogb(denominator);
    s.factor = options.target / std::ldexp(denominator, s.shift);
  } else if (dtype != DType::kFloat64 && numerics::ScaleFitsFloat(s.factor)) {
    s.factor = static_cast<float>(s.factor);
  }
  return s;
}

}  // namespace sparsenorm::reference
