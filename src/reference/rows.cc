// The row operator, scalar and serial: each distinct indexed row once, in
// ascending row order, its norm from reference::Norm and its scale from
// reference::EffectiveScale.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/rows_backend.h"
#include "reference/reference.h"

namespace sparsenorm::reference {
namespace {

std::vector<double> RowValues(const unsigned char* row, const RowsProblem& p) {
  std::vector<double> x(static_cast<std::size_t>(p.cols));
  for (std::int64_t k = 0; k < p.cols; ++k) x[k] = Load(row, p.dtype, k);
  return x;
}

// Every check of the call, writing nothing.
Finding Check(const RowsProblem& p) {
  for (std::int64_t i = 0; i < p.num_indices; ++i) {
    const std::int64_t r = IndexValue(p.indices, p.index_type, i);
    if (r < 0 || r >= p.rows) return RowIndexFinding(i, r, p.rows);
  }
  if (p.nonfinite_error) {
    for (std::int64_t i = 0; i < p.num_indices; ++i) {
      const std::int64_t r = IndexValue(p.indices, p.index_type, i);
      const std::vector<double> x = RowValues(p.in + r * p.in_stride_bytes, p);
      if (std::any_of(x.begin(), x.end(), [](double v) { return !std::isfinite(v); })) {
        return NonFiniteRowFinding(i, r);
      }
    }
  }
  return {};
}

// The checked call's writes.
void Write(const RowsProblem& p, RowStats* stats) {
  if (!p.in_place) {
    for (std::int64_t r = 0; r < p.rows; ++r) {
      std::memcpy(p.out + r * p.out_stride_bytes, p.in + r * p.in_stride_bytes,
                  static_cast<std::size_t>(p.row_bytes));
    }
  }
  std::vector<std::int64_t> rows(static_cast<std::size_t>(p.num_indices));
  for (std::int64_t i = 0; i < p.num_indices; ++i) rows[i] = IndexValue(p.indices, p.index_type, i);
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());

  const NormalizeOptions options = OptionsOf(p.rule);
  *stats = RowStats{};
  stats->distinct_rows = static_cast<std::int64_t>(rows.size());
  for (std::int64_t r : rows) {
    unsigned char* row = p.out + r * p.out_stride_bytes;
    const std::vector<double> x = RowValues(row, p);
    const double norm = Norm(x, p.rule.p);
    if (std::isnan(norm)) {
      ++stats->nonfinite_rows;
      continue;
    }
    if (!IsScaled(norm, options)) continue;
    const AppliedScale s = EffectiveScale(norm, p.dtype, options);
    for (std::int64_t k = 0; k < p.cols; ++k) StoreRounded(row, p.dtype, k, std::ldexp(x[k], s.shift) * s.factor);
    ++stats->rows_scaled;
  }
}

}  // namespace

Finding NormalizeRows(const RowsProblem& p, RowStats* stats) {
  if (Finding f = Check(p)) return f;
  Write(p, stats);
  return {};
}

BatchFinding NormalizeRowsMany(const RowsProblem* problems, std::int64_t count, RowStats* stats) {
  for (std::int64_t k = 0; k < count; ++k) {
    if (Finding f = Check(problems[k])) return BatchFinding{k, f};
  }
  for (std::int64_t k = 0; k < count; ++k) Write(problems[k], &stats[k]);
  return {};
}

}  // namespace sparsenorm::reference
