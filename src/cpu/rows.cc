// The CPU backend of the row operator: deduplicates and validates the
// indices, checks the rows under NonFinitePolicy::kError, then hands slices
// of rows to the per-target kernels (rows_kernels.cc), as the plan says.
//
// Order of work, so that a rejected call writes nothing:
//   1. every index value, checked while the row bitmap is marked (or while
//      the rows are claimed in the hash set);
//   2. under NonFinitePolicy::kError, every indexed row's finiteness;
//   3. only then the rows are written.

#include <algorithm>
#include <memory>
#include <new>
#include <vector>

#include "core/rows_backend.h"
#include "cpu/parallel.h"
#include "cpu/row_set.h"
#include "cpu/rows_cpu.h"

namespace sparsenorm::cpu {
namespace {

std::int64_t IndexAt(const RowJob& job, std::int64_t position) {
  std::int64_t value = 0;
  VisitIndexType(job.index_type, [&](auto i) {
    value = static_cast<const TypeOf<decltype(i)>*>(job.indices)[position];
  });
  return value;
}

// Under NonFinitePolicy::kError, the first index whose row is not finite.
Finding CheckFinite(const RowJob& job, int threads) {
  if (!job.nonfinite_error || job.cols == 0) return {};
  std::vector<std::int64_t> first(static_cast<std::size_t>(std::max(threads, 1)), -1);
  ParallelFor(threads, job.num_indices, [&](std::int64_t b, std::int64_t e, int t) {
    first[t] = FirstNonFinitePosition(job, b, e);
  });
  // Slices are in position order: the first slice that found one wins.
  for (std::int64_t f : first) {
    if (f >= 0) return NonFiniteRowFinding(f, IndexAt(job, f));
  }
  return {};
}

}  // namespace

Finding NormalizeRows(const RowsProblem& problem, const RowsPlan& plan, RowStats* stats) {
  RowJob job;
  static_cast<RowsProblem&>(job) = problem;
  job.prefetch_rows = plan.prefetch_rows;
  const std::int64_t n = problem.num_indices;
  *stats = RowStats{};
  if (n == 0 && problem.in_place) return {};

  RowBitmap bitmap;
  RowClaimSet claims;
  std::unique_ptr<std::uint8_t[]> owner;
  if (plan.use_bitmap) {
    if (!bitmap.Init(problem.rows)) return OutOfMemoryFinding("the row bitmap");
    const std::int64_t bad = bitmap.MarkAll(problem.indices, problem.index_type, n, plan.index_threads);
    if (bad >= 0) return RowIndexFinding(bad, IndexAt(job, bad), problem.rows);
    job.marks = bitmap.words();
  } else {
    owner.reset(new (std::nothrow) std::uint8_t[static_cast<std::size_t>(n)]);
    if (!claims.Init(n) || !owner) return OutOfMemoryFinding("the row claim set");
    const std::int64_t bad =
        claims.ClaimAll(problem.indices, problem.index_type, n, problem.rows, owner.get(), plan.index_threads);
    if (bad >= 0) return RowIndexFinding(bad, IndexAt(job, bad), problem.rows);
    job.owner = owner.get();
  }

  const int threads = plan.row_threads;
  if (Finding f = CheckFinite(job, threads)) return f;

  std::vector<RowCounts> counts(static_cast<std::size_t>(std::max(threads, 1)));
  if (!problem.in_place) {
    // Whole words per chunk, so no two threads' chunks share a bitmap word
    // (they only read it, but the chunking stays simple to reason about).
    ParallelForDynamic(threads, problem.rows, 4096, [&](std::int64_t b, std::int64_t e, int t) {
      AllRowsOutOfPlace(job, b, e, &counts[t]);
    });
  } else if (plan.use_bitmap) {
    // About eight chunks per thread: enough to even out skewed index lists,
    // few enough that restarting the prefetch at each chunk costs nothing.
    const std::int64_t grain = std::max<std::int64_t>(16, bitmap.word_count() / (8 * threads));
    ParallelForDynamic(threads, bitmap.word_count(), grain, [&](std::int64_t b, std::int64_t e, int t) {
      MarkedRowsInPlace(job, b, e, &counts[t]);
    });
  } else {
    ParallelFor(threads, n, [&](std::int64_t b, std::int64_t e, int t) {
      OwnedRowsInPlace(job, b, e, &counts[t]);
    });
  }
  for (const RowCounts& c : counts) {
    stats->distinct_rows += c.distinct;
    stats->rows_scaled += c.scaled;
    stats->nonfinite_rows += c.nonfinite;
  }
  return {};
}

}  // namespace sparsenorm::cpu
