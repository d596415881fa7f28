#include "reference/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/numerics.h"

namespace sparsenorm::reference {

double Load(const void* data, DType dtype, std::int64_t offset) {
  switch (dtype) {
    case DType::kFloat32:
      return static_cast<const float*>(data)[offset];
    case DType::kFloat64:
      return static_cast<const double*>(data)[offset];
    case DType::kFloat16:
      return numerics::HalfToFloat(static_cast<const std::uint16_t*>(data)[offset]);
    case DType::kBFloat16:
      return numerics::BFloat16ToFloat(static_cast<const std::uint16_t*>(data)[offset]);
  }
  return 0.0;
}

void StoreRounded(void* data, DType dtype, std::int64_t offset, double value) {
  switch (dtype) {
    case DType::kFloat32:
      static_cast<float*>(data)[offset] = static_cast<float>(value);
      break;
    case DType::kFloat64:
      static_cast<double*>(data)[offset] = value;
      break;
    case DType::kFloat16:
      static_cast<std::uint16_t*>(data)[offset] = numerics::DoubleToHalf(value);
      break;
    case DType::kBFloat16:
      static_cast<std::uint16_t*>(data)[offset] = numerics::DoubleToBFloat16(value);
      break;
  }
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

RowStats NormalizeRows(const Table& table, const Indices& indices,
                       const NormalizeOptions& options) {
  std::vector<std::int64_t> rows(static_cast<std::size_t>(indices.size));
  for (std::int64_t i = 0; i < indices.size; ++i) {
    rows[i] = indices.type == IndexType::kInt32 ? static_cast<const std::int32_t*>(indices.data)[i]
                                                : static_cast<const std::int64_t*>(indices.data)[i];
  }
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());

  RowStats stats;
  stats.indices_seen = indices.size;
  stats.distinct_rows = static_cast<std::int64_t>(rows.size());
  const std::int64_t stride = table.row_stride == 0 ? table.cols : table.row_stride;
  std::vector<double> x(static_cast<std::size_t>(table.cols));
  for (std::int64_t r : rows) {
    for (std::int64_t k = 0; k < table.cols; ++k) x[k] = Load(table.data, table.dtype, r * stride + k);
    const double norm = Norm(x, options.p);
    if (std::isnan(norm)) {
      ++stats.nonfinite_rows;
      continue;
    }
    if (!IsScaled(norm, options)) continue;
    const AppliedScale s = EffectiveScale(norm, table.dtype, options);
    for (std::int64_t k = 0; k < table.cols; ++k) {
      StoreRounded(table.data, table.dtype, r * stride + k, std::ldexp(x[k], s.shift) * s.factor);
    }
    ++stats.rows_scaled;
  }
  return stats;
}

std::int64_t FirstNonFiniteRow(const ConstTable& table, const Indices& indices) {
  const std::int64_t stride = table.row_stride == 0 ? table.cols : table.row_stride;
  for (std::int64_t i = 0; i < indices.size; ++i) {
    const std::int64_t r = indices.type == IndexType::kInt32
                               ? static_cast<const std::int32_t*>(indices.data)[i]
                               : static_cast<const std::int64_t*>(indices.data)[i];
    for (std::int64_t k = 0; k < table.cols; ++k) {
      if (!std::isfinite(Load(table.data, table.dtype, r * stride + k))) return i;
    }
  }
  return -1;
}

void CopyTable(const ConstTable& in, const Table& out) {
  const std::int64_t in_stride = in.row_stride == 0 ? in.cols : in.row_stride;
  const std::int64_t out_stride = out.row_stride == 0 ? out.cols : out.row_stride;
  const std::size_t size = DTypeSize(in.dtype);
  for (std::int64_t r = 0; r < in.rows; ++r) {
    std::memcpy(static_cast<char*>(out.data) + r * out_stride * size,
                static_cast<const char*>(in.data) + r * in_stride * size,
                static_cast<std::size_t>(in.cols) * size);
  }
}

}  // namespace sparsenorm::reference
