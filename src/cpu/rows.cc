// The CPU backend of the row operator: deduplicates and validates the
// indices, checks the rows under NonFinitePolicy::kError, then hands slices
// of rows to the per-target kernels (rows_kernels.cc), as the plan says.
//
// Order of work, so that a rejected call writes nothing:
//   1. every index value, checked while the row bitmap is marked (or while
//      the rows are claimed in the hash set);
//   2. under NonFinitePolicy::kError, every indexed row's finiteness;
//   3. only then the rows are written.
// A call on many tables runs steps 1 and 2 for every table before step 3 for
// any, and step 3 for all of them in one dispatch to the thread pool.

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

// One table made ready to write: its indices checked and deduplicated, its
// rows checked under kError.
struct PreparedRows {
  RowJob job;
  bool use_bitmap = true;
  RowBitmap bitmap;
  RowClaimSet claims;
  std::unique_ptr<std::uint8_t[]> owner;

  // Steps 1 and 2 above, on `index_threads` and `row_threads` threads.
  Finding Prepare(const RowsProblem& problem, const RowsPlan& plan) {
    static_cast<RowsProblem&>(job) = problem;
    job.prefetch_rows = plan.prefetch_rows;
    use_bitmap = plan.use_bitmap;
    const std::int64_t n = problem.num_indices;
    if (use_bitmap) {
      if (!bitmap.Init(problem.rows)) return OutOfMemoryFinding("the row bitmap");
      const std::int64_t bad =
          bitmap.MarkAll(problem.indices, problem.index_type, n, plan.index_threads);
      if (bad >= 0) return RowIndexFinding(bad, IndexAt(job, bad), problem.rows);
      job.marks = bitmap.mutable_words();
      job.summary = bitmap.summary();
    } else {
      owner.reset(new (std::nothrow) std::uint8_t[static_cast<std::size_t>(n)]);
      if (!claims.Init(n) || !owner) return OutOfMemoryFinding("the row claim set");
      const std::int64_t bad = claims.ClaimAll(problem.indices, problem.index_type, n,
                                               problem.rows, owner.get(), plan.index_threads);
      if (bad >= 0) return RowIndexFinding(bad, IndexAt(job, bad), problem.rows);
      job.owner = owner.get();
    }
    return CheckFinite(plan.row_threads);
  }

  // Under NonFinitePolicy::kError, the first index whose row is not finite.
  Finding CheckFinite(int threads) const {
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

  // The units of step 3 that threads take one at a time: bitmap summary
  // words (4,096 table rows each), table rows (out of place) or positions
  // of the list (hash set).
  std::int64_t Units() const {
    if (!job.in_place) return job.rows;
    return use_bitmap ? bitmap.summary_count() : job.num_indices;
  }

  void Run(std::int64_t begin, std::int64_t end, RowCounts* counts) const {
    if (!job.in_place) {
      AllRowsOutOfPlace(job, begin, end, counts);
    } else if (use_bitmap) {
      MarkedRowsInPlace(job, begin, end, counts);
    } else {
      OwnedRowsInPlace(job, begin, end, counts);
    }
  }

  // After step 3 has run over every unit: the in-place scan has cleared
  // the bitmap as it went.
  void Ran() {
    if (job.in_place && use_bitmap) bitmap.SetCleared();
  }

  // Units per chunk handed to a thread: about eight chunks per thread,
  // enough to even out skewed index lists, few enough that restarting the
  // prefetch at each chunk costs nothing; whole 4096-row runs out of place.
  std::int64_t Grain(int threads) const {
    if (!job.in_place) return 4096;
    const std::int64_t even = Units() / (8 * std::max(threads, 1));
    return std::max<std::int64_t>(use_bitmap ? 1 : 16, even);
  }
};

void AddCounts(const std::vector<RowCounts>& counts, RowStats* stats) {
  for (const RowCounts& c : counts) {
    stats->distinct_rows += c.distinct;
    stats->rows_scaled += c.scaled;
    stats->nonfinite_rows += c.nonfinite;
  }
}

}  // namespace

Finding NormalizeRows(const RowsProblem& problem, const RowsPlan& plan, RowStats* stats) {
  *stats = RowStats{};
  if (problem.num_indices == 0 && problem.in_place) return {};
  PreparedRows prepared;
  if (Finding f = prepared.Prepare(problem, plan)) return f;
  const int threads = plan.row_threads;
  std::vector<RowCounts> counts(static_cast<std::size_t>(std::max(threads, 1)));
  ParallelForDynamic(threads, prepared.Units(), prepared.Grain(threads),
                     [&](std::int64_t b, std::int64_t e, int t) { prepared.Run(b, e, &counts[t]); });
  prepared.Ran();
  AddCounts(counts, stats);
  return {};
}

BatchFinding NormalizeRowsMany(const RowsProblem* problems, const RowsPlan* plans,
                               std::int64_t count, int threads, RowStats* stats) {
  std::vector<PreparedRows> prepared(static_cast<std::size_t>(count));
  std::vector<Finding> findings(static_cast<std::size_t>(count));
  // Steps 1 and 2 for every table, a table per thread at a time: the
  // tables of one call are typically many and small.
  ParallelForDynamic(threads, count, 1, [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t k = b; k < e; ++k) {
      RowsPlan single = plans[k];
      single.index_threads = 1;
      single.row_threads = 1;
      findings[k] = prepared[k].Prepare(problems[k], single);
    }
  });
  for (std::int64_t k = 0; k < count; ++k) {  // the first table in the list that failed
    if (findings[k]) return BatchFinding{k, findings[k]};
  }

  // Step 3 for all of them: chunks of every table in one list, handed out
  // as threads finish, so that the work is balanced across tables.
  struct Chunk {
    std::int64_t table, begin, end;
  };
  // A chunk holds about an eighth of a thread's share of the whole call's
  // indices, or more when its table's own Grain says so: cut by each
  // table's own units alone, the many small tables of a call made chunks
  // of a summary word or two, and every chunk restarts the prefetch.
  std::vector<Chunk> chunks;
  std::int64_t total_indices = 0;
  for (const PreparedRows& p : prepared) total_indices += p.job.num_indices;
  const double chunk_indices = static_cast<double>(total_indices) / (8.0 * std::max(threads, 1));
  for (std::int64_t k = 0; k < count; ++k) {
    const PreparedRows& p = prepared[k];
    if (p.job.num_indices == 0 && p.job.in_place) continue;
    const std::int64_t units = p.Units();
    const auto share = static_cast<std::int64_t>(
        chunk_indices * static_cast<double>(units) / static_cast<double>(std::max<std::int64_t>(p.job.num_indices, 1)));
    const std::int64_t grain = std::max(p.Grain(threads), share);
    for (std::int64_t b = 0; b < units; b += grain) chunks.push_back({k, b, std::min(units, b + grain)});
  }
  std::vector<std::vector<RowCounts>> counts(static_cast<std::size_t>(std::max(threads, 1)),
                                             std::vector<RowCounts>(static_cast<std::size_t>(count)));
  ParallelForDynamic(threads, static_cast<std::int64_t>(chunks.size()), 1,
                     [&](std::int64_t b, std::int64_t e, int t) {
                       for (std::int64_t c = b; c < e; ++c) {
                         const Chunk& chunk = chunks[static_cast<std::size_t>(c)];
                         prepared[chunk.table].Run(chunk.begin, chunk.end, &counts[t][chunk.table]);
                       }
                     });
  for (PreparedRows& p : prepared) p.Ran();
  for (std::int64_t k = 0; k < count; ++k) {
    stats[k] = RowStats{};
    for (const auto& per_thread : counts) {
      stats[k].distinct_rows += per_thread[k].distinct;
      stats[k].rows_scaled += per_thread[k].scaled;
      stats[k].nonfinite_rows += per_thread[k].nonfinite;
    }
  }
  return {};
}

}  // namespace sparsenorm::cpu
