#include "core/plan.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "common/element_types.h"
#include "core/matrix_backend.h"
#include "core/optim_backend.h"
#include "core/rows_backend.h"

namespace sparsenorm::detail {

bool UseReference(Backend requested) {
  static const bool forced = [] {
    const char* v = std::getenv("SPARSENORM_BACKEND");
    return v != nullptr && std::strcmp(v, "reference") == 0;
  }();
  return requested == Backend::kReference || forced;
}

int ThreadsFor(int requested, std::int64_t work_bytes, std::int64_t bytes_per_thread) {
  const int wanted = requested > 0 ? requested : cpu::AvailableThreads();
  const std::int64_t by_work = std::max<std::int64_t>(1, work_bytes / std::max<std::int64_t>(bytes_per_thread, 1));
  return static_cast<int>(std::min<std::int64_t>(wanted, by_work));
}

RowsPlan PlanRows(const RowsProblem& p, int requested_threads, const Tuning& t) {
  RowsPlan plan;
  const std::int64_t n = p.num_indices;
  plan.index_threads = ThreadsFor(requested_threads, n * t.bytes_per_index, t.bytes_per_thread);
  // The bitmap costs a call the scan of its summary (one bit per 64 rows)
  // while the pool keeps it, and its whole size to allocate and clear
  // beyond; the hash set a few slots per index, and rows visited in list
  // order rather than ascending. Out of place every row is visited anyway.
  const std::int64_t bitmap_bytes = (p.rows + 63) / 64 * 8;
  const std::int64_t per_index = bitmap_bytes <= cpu::kPooledBitmapBytes
                                     ? t.bitmap_bytes_per_index
                                     : t.large_bitmap_bytes_per_index;
  plan.use_bitmap = !p.in_place || bitmap_bytes <= per_index * n + t.bitmap_slack_bytes;
  const std::int64_t row_bytes = std::max<std::int64_t>(p.row_bytes, 1);
  plan.row_threads =
      ThreadsFor(requested_threads, (p.in_place ? n : p.rows) * row_bytes, t.bytes_per_thread);
  // Enough rows in flight to cover memory latency at one core's bandwidth,
  // at least two.
  plan.prefetch_rows = std::clamp<std::int64_t>(t.prefetch_bytes / row_bytes, 2, 16);
  return plan;
}

namespace {

ColumnSumMode ColumnSumsFor(std::int64_t minor_dim, int threads, const Tuning& t) {
  if (t.column_sums != ColumnSumMode::kAuto) return t.column_sums;
  if (threads <= 1 || minor_dim <= t.private_array_bytes / 8) return ColumnSumMode::kPrivateArrays;
  return ColumnSumMode::kStripedBuckets;
}

}  // namespace

MatrixPlan PlanDenseMatrix(const DenseMatrixProblem& p, int requested_threads, const Tuning& t) {
  MatrixPlan plan;
  plan.tuning = t;
  plan.threads = ThreadsFor(requested_threads, p.extent_bytes, t.bytes_per_thread);
  return plan;
}

MatrixPlan PlanSparseMatrix(const SparseMatrixProblem& p, int requested_threads, const Tuning& t) {
  MatrixPlan plan;
  plan.tuning = t;
  const SparseMatrix& m = p.matrix;
  const auto entry_bytes =
      static_cast<std::int64_t>(ElementSize(m.dtype) + 2 * IndexSize(m.index_type));
  std::int64_t bytes = 0;  // only sizes the thread count: saturate
  if (__builtin_mul_overflow(m.nnz, entry_bytes, &bytes)) bytes = std::numeric_limits<std::int64_t>::max();
  plan.threads = ThreadsFor(requested_threads, bytes, t.bytes_per_thread);
  plan.column_sums = ColumnSumsFor(p.minor_dim, std::max(plan.threads, 1), t);
  // With private arrays, the first pass of the column sums validates each
  // chunk of indices just before it accumulates it, while they are in cache.
  plan.fold_validation = p.common.path == MatrixPath::kScattered &&
                         plan.column_sums == ColumnSumMode::kPrivateArrays;
  return plan;
}

std::int64_t StepWorkBytes(const StepProblem& p, const Tuning& t) {
  // Every gradient row is read, and about as many table and state rows are
  // read and written.
  return p.num_indices * std::max<std::int64_t>(3 * std::max<std::int64_t>(p.cols, 1) * 4, t.min_step_row_bytes);
}

StepPlan PlanStep(const StepProblem& p, int requested_threads, const Tuning& t) {
  StepPlan plan;
  plan.threads = ThreadsFor(requested_threads, StepWorkBytes(p, t), t.bytes_per_thread);
  plan.groups_first_seen = p.num_indices < t.hash_groups_below;
  return plan;
}

}  // namespace sparsenorm::detail
