// The CPU backend of the optimizer step: groups the index list by row
// (group_rows.h), checks the gradient under NonFinitePolicy::kError, sums
// the repeat groups of very popular rows on every thread, then hands groups
// to the per-target kernels (optim_kernels.cc).
//
// Order of work, so that a rejected call writes nothing:
//   1. every index value, checked while the list is grouped;
//   2. under NonFinitePolicy::kError, every gradient element;
//   3. only then the table and the state are written.
//
// Work balance: a row's gradient rows are summed by one thread, except that
// a row with more than kRepeatGroup occurrences has its repeat groups
// summed first, spread over all threads; the thread that updates the row
// then adds those sums. No thread is left summing a very popular row's
// thousands of gradient rows while the others wait, and the sums do not
// depend on which thread made them.

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "common/element_types.h"
#include "core/optim_backend.h"
#include "cpu/group_rows.h"
#include "cpu/optim_cpu.h"
#include "cpu/parallel.h"
#include "sparsenorm/optim.h"

namespace sparsenorm::cpu {
namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<unsigned char, FreeDeleter>;

// 64-byte aligned memory, or throws std::bad_alloc.
AlignedBuffer AllocateAligned(std::size_t bytes) {
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) throw std::bad_alloc();
  return AlignedBuffer(static_cast<unsigned char*>(p));
}

std::int64_t RowBytesRounded(std::int64_t cols, std::size_t element) {
  return (cols * static_cast<std::int64_t>(element) + 63) / 64 * 64;
}

std::int64_t RowOfPosition(const StepProblem& p, std::int64_t position) {
  if (p.dense()) return position;
  std::int64_t value = 0;
  VisitIndexType(p.index_type, [&](auto i) {
    value = static_cast<const TypeOf<decltype(i)>*>(p.indices)[position];
  });
  return value;
}

// Under NonFinitePolicy::kError, the first gradient row holding NaN or
// infinity.
Finding CheckGradient(const StepJob& job, int threads) {
  if (!job.nonfinite_error || job.cols == 0) return {};
  std::vector<std::int64_t> first(static_cast<std::size_t>(std::max(threads, 1)), -1);
  ParallelFor(threads, job.num_indices, [&](std::int64_t b, std::int64_t e, int t) {
    first[t] = FirstNonFiniteGradientRow(job, b, e);
  });
  for (std::int64_t f : first) {  // slices are in position order
    if (f >= 0) return NonFiniteGradientFinding(f, RowOfPosition(job, f));
  }
  return {};
}

// One problem made ready to write: its index list grouped and checked, its
// gradient checked under kError, the repeat groups of its popular rows
// listed.
struct PreparedStep {
  StepJob job;
  RowGroups groups;
  std::vector<std::int64_t> partial;
  std::vector<RepeatSum> sums;
  AlignedBuffer partials;
  std::int64_t scratch_row = 0;  // bytes of one scratch row, 64-byte multiple

  // Steps 1 and 2 above, on `threads` threads.
  Finding Prepare(const StepProblem& problem, int threads, GroupOrder order) {
    static_cast<StepProblem&>(job) = problem;
    if (problem.dense()) {
      job.groups = problem.rows;
    } else {
      const std::int64_t bad = GroupRows(problem.indices, problem.index_type, problem.num_indices,
                                         problem.rows, threads, order, &groups);
      if (bad >= 0) return RowIndexFinding(bad, RowOfPosition(problem, bad), problem.rows);
      job.rows = groups.rows.data();
      job.positions = groups.positions.data();
      job.begin = groups.begin.data();
      job.groups = static_cast<std::int64_t>(groups.rows.size());
    }
    if (Finding f = CheckGradient(job, threads)) return f;
    const std::size_t compute_size = problem.dtype == DType::kFloat64 ? 8 : 4;
    scratch_row = RowBytesRounded(job.cols, compute_size);
    // Table rows in flight: about 4 KiB of table, state and gradient.
    job.prefetch_groups = std::clamp<std::int64_t>(4096 / std::max<std::int64_t>(scratch_row, 1), 2, 16);
    if (!Empty()) ListRepeatSums();
    return {};
  }

  bool Empty() const { return job.groups == 0 || job.cols == 0; }

  // The repeat groups of the rows named more than kRepeatGroup times, and
  // the memory for their sums.
  void ListRepeatSums() {
    if (job.dense()) return;
    partial.assign(static_cast<std::size_t>(job.groups), -1);
    for (std::int64_t s = 0; s < job.groups; ++s) {
      const std::int64_t count = job.begin[s + 1] - job.begin[s];
      if (count <= kRepeatGroup) continue;
      partial[static_cast<std::size_t>(s)] = static_cast<std::int64_t>(sums.size());
      for (std::int64_t k = 0; k * kRepeatGroup < count; ++k) {
        sums.push_back(RepeatSum{s, k, static_cast<std::int64_t>(sums.size())});
      }
    }
    if (sums.empty()) return;
    job.partial = partial.data();
    job.partial_stride_bytes = scratch_row;
    partials = AllocateAligned(sums.size() * static_cast<std::size_t>(scratch_row));
    job.partials = partials.get();
  }
};

// Each thread's scratch rows: the summed gradient, the new row, the new
// state (two rows for Adam), `row_bytes` each.
struct ThreadScratch {
  AlignedBuffer memory;
  std::vector<StepScratch> rows;
  ThreadScratch(int threads, std::int64_t row_bytes)
      : memory(AllocateAligned(static_cast<std::size_t>(4 * row_bytes * threads))),
        rows(static_cast<std::size_t>(threads)) {
    for (int t = 0; t < threads; ++t) {
      unsigned char* base = memory.get() + 4 * row_bytes * t;
      rows[t] = StepScratch{base, base + row_bytes, base + 2 * row_bytes, base + 3 * row_bytes};
    }
  }
};

GroupOrder OrderOf(const StepPlan& plan) {
  return plan.groups_first_seen ? GroupOrder::kFirstSeen : GroupOrder::kAscending;
}

// About sixteen chunks of groups per thread: popular rows make groups uneven.
std::int64_t GroupGrain(std::int64_t groups, int threads) {
  return std::max<std::int64_t>(8, groups / (16 * threads));
}

void AddCounts(std::int64_t groups, const StepCounts& c, RowStats* stats) {
  stats->distinct_rows = groups;
  stats->rows_scaled += c.scaled;
  stats->nonfinite_rows += c.nonfinite;
}

// The repeat-group sums, then every group's update, on `threads` threads.
void RunGroups(const PreparedStep& p, int threads, RowStats* stats) {
  const StepJob& job = p.job;
  ParallelForDynamic(threads, static_cast<std::int64_t>(p.sums.size()), 4,
                     [&](std::int64_t b, std::int64_t e, int) { SumRepeatGroups(job, p.sums.data(), b, e); });
  ThreadScratch scratch(threads, p.scratch_row);
  std::vector<StepCounts> counts(static_cast<std::size_t>(threads));
  ParallelForDynamic(threads, job.groups, GroupGrain(job.groups, threads),
                     [&](std::int64_t b, std::int64_t e, int t) {
                       UpdateGroups(job, b, e, scratch.rows[t], &counts[t]);
                     });
  for (const StepCounts& c : counts) AddCounts(job.groups, c, stats);
}

}  // namespace

Finding OptimizerStep(const StepProblem& problem, const StepPlan& plan, RowStats* stats) {
  *stats = RowStats{};
  const int threads = std::max(plan.threads, 1);
  PreparedStep p;
  if (Finding f = p.Prepare(problem, threads, OrderOf(plan))) return f;
  stats->distinct_rows = p.job.groups;
  if (p.Empty()) return {};
  RunGroups(p, threads, stats);
  return {};
}

Finding OptimizerStepPhase(const StepProblem& problem, const StepPlan& plan, StepShard shard,
                           StepPhaseOutput* out, RowStats* stats) {
  *stats = RowStats{};
  const int threads = std::max(plan.threads, 1);
  PreparedStep p;
  // The phases' outputs are per row, ascending (include/sparsenorm/sharded_step.h).
  if (Finding f = p.Prepare(problem, threads, GroupOrder::kAscending)) return f;
  const std::int64_t groups = p.job.groups;
  stats->distinct_rows = groups;
  out->rows = p.groups.rows;
  if (shard.phase == StepPhase::kSquares) {
    out->squares.assign(static_cast<std::size_t>(groups), 0.0);
    shard.squares = out->squares.data();
  } else if (shard.inputs >= 0 && shard.inputs != groups) {
    return {};
  }
  if (shard.phase == StepPhase::kParts) {
    out->norms.assign(static_cast<std::size_t>(groups), VectorNorm{0.0, true});
    shard.norms = out->norms.data();
  }
  p.job.shard = &shard;
  // A slice of no columns still runs the rows when others have columns:
  // row-wise Adagrad's sum is every slice's, and every slice counts.
  if (groups == 0 || shard.global_cols == 0) return {};
  // Prepare lists the repeat groups of a slice with columns only; the
  // kernels sum a popular row's groups from the list whatever the width.
  if (p.Empty()) p.ListRepeatSums();
  RunGroups(p, threads, stats);
  return {};
}

BatchFinding OptimizerStepMany(const StepProblem* problems, const StepPlan* plans,
                               std::int64_t count, int threads, RowStats* stats) {
  threads = std::max(threads, 1);
  std::vector<PreparedStep> prepared(static_cast<std::size_t>(count));
  std::vector<Finding> findings(static_cast<std::size_t>(count));
  // Steps 1 and 2 for every problem, a problem per thread at a time: the
  // tables of one call are typically many and small.
  if (count == 1) {
    findings[0] = prepared[0].Prepare(problems[0], threads, OrderOf(plans[0]));
  } else {
    ParallelForDynamic(threads, count, 1, [&](std::int64_t b, std::int64_t e, int) {
      for (std::int64_t k = b; k < e; ++k) findings[k] = prepared[k].Prepare(problems[k], 1, OrderOf(plans[k]));
    });
  }
  for (std::int64_t k = 0; k < count; ++k) {  // the first problem in the list that failed
    if (findings[k]) return BatchFinding{k, findings[k]};
  }

  // Step 3 for all of them, in one dispatch per phase: first the repeat
  // groups' sums of every table, then chunks of every table's groups,
  // handed out as threads finish, so that the work is balanced across
  // tables.
  struct Piece {
    std::int64_t problem, begin, end;
  };
  std::vector<Piece> sums, chunks;
  std::int64_t total_groups = 0, row_bytes = 64;
  for (std::int64_t k = 0; k < count; ++k) {
    const PreparedStep& p = prepared[static_cast<std::size_t>(k)];
    stats[k] = RowStats{};
    stats[k].distinct_rows = p.job.groups;
    if (p.Empty()) continue;
    total_groups += p.job.groups;
    row_bytes = std::max(row_bytes, p.scratch_row);
    const auto n = static_cast<std::int64_t>(p.sums.size());
    for (std::int64_t b = 0; b < n; b += 4) sums.push_back({k, b, std::min(n, b + 4)});
  }
  for (std::int64_t k = 0; k < count; ++k) {
    const PreparedStep& p = prepared[static_cast<std::size_t>(k)];
    if (p.Empty()) continue;
    const std::int64_t grain = GroupGrain(total_groups, threads);
    for (std::int64_t b = 0; b < p.job.groups; b += grain) chunks.push_back({k, b, std::min(p.job.groups, b + grain)});
  }
  ParallelForDynamic(threads, static_cast<std::int64_t>(sums.size()), 1,
                     [&](std::int64_t b, std::int64_t e, int) {
                       for (std::int64_t c = b; c < e; ++c) {
                         const Piece& s = sums[static_cast<std::size_t>(c)];
                         const PreparedStep& p = prepared[static_cast<std::size_t>(s.problem)];
                         SumRepeatGroups(p.job, p.sums.data(), s.begin, s.end);
                       }
                     });
  ThreadScratch scratch(threads, row_bytes);
  std::vector<std::vector<StepCounts>> counts(static_cast<std::size_t>(threads),
                                              std::vector<StepCounts>(static_cast<std::size_t>(count)));
  ParallelForDynamic(threads, static_cast<std::int64_t>(chunks.size()), 1,
                     [&](std::int64_t b, std::int64_t e, int t) {
                       for (std::int64_t c = b; c < e; ++c) {
                         const Piece& chunk = chunks[static_cast<std::size_t>(c)];
                         UpdateGroups(prepared[static_cast<std::size_t>(chunk.problem)].job, chunk.begin,
                                      chunk.end, scratch.rows[t], &counts[t][chunk.problem]);
                       }
                     });
  for (std::int64_t k = 0; k < count; ++k) {
    for (const auto& per_thread : counts) AddCounts(prepared[static_cast<std::size_t>(k)].job.groups, per_thread[k], &stats[k]);
  }
  return {};
}

}  // namespace sparsenorm::cpu
