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

}  // namespace

Finding OptimizerStep(const StepProblem& problem, const StepPlan& plan, RowStats* stats) {
  StepJob job;
  static_cast<StepProblem&>(job) = problem;
  *stats = RowStats{};
  const int threads = std::max(plan.threads, 1);
  const std::size_t compute_size = problem.dtype == DType::kFloat64 ? 8 : 4;

  RowGroups groups;
  if (problem.dense()) {
    job.groups = problem.rows;
  } else {
    const std::int64_t bad = GroupRows(problem.indices, problem.index_type, problem.num_indices,
                                       problem.rows, threads, &groups);
    if (bad >= 0) return RowIndexFinding(bad, RowOfPosition(problem, bad), problem.rows);
    job.rows = groups.rows.data();
    job.positions = groups.positions.data();
    job.begin = groups.begin.data();
    job.groups = static_cast<std::int64_t>(groups.rows.size());
  }
  if (Finding f = CheckGradient(job, threads)) return f;
  if (job.groups == 0 || job.cols == 0) {
    stats->distinct_rows = job.groups;
    return {};
  }

  // The repeat groups of the rows named more than kRepeatGroup times.
  std::vector<std::int64_t> partial;
  std::vector<RepeatSum> sums;
  AlignedBuffer partials;
  if (!problem.dense()) {
    partial.assign(static_cast<std::size_t>(job.groups), -1);
    for (std::int64_t s = 0; s < job.groups; ++s) {
      const std::int64_t count = job.begin[s + 1] - job.begin[s];
      if (count <= kRepeatGroup) continue;
      partial[static_cast<std::size_t>(s)] = static_cast<std::int64_t>(sums.size());
      for (std::int64_t k = 0; k * kRepeatGroup < count; ++k) {
        sums.push_back(RepeatSum{s, k, static_cast<std::int64_t>(sums.size())});
      }
    }
    if (!sums.empty()) {
      job.partial = partial.data();
      job.partial_stride_bytes = RowBytesRounded(job.cols, compute_size);
      partials = AllocateAligned(sums.size() * static_cast<std::size_t>(job.partial_stride_bytes));
      job.partials = partials.get();
      ParallelForDynamic(threads, static_cast<std::int64_t>(sums.size()), 4,
                         [&](std::int64_t b, std::int64_t e, int) {
                           SumRepeatGroups(job, sums.data(), b, e);
                         });
    }
  }

  // Each thread's scratch rows: the summed gradient, the new row, the new
  // state (two rows for Adam).
  const std::int64_t scratch_row = RowBytesRounded(job.cols, compute_size);
  AlignedBuffer scratch_memory = AllocateAligned(static_cast<std::size_t>(4 * scratch_row * threads));
  std::vector<StepScratch> scratch(static_cast<std::size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    unsigned char* base = scratch_memory.get() + 4 * scratch_row * t;
    scratch[t] = StepScratch{base, base + scratch_row, base + 2 * scratch_row, base + 3 * scratch_row};
  }
  // Table rows in flight: about 4 KiB of table, state and gradient.
  job.prefetch_groups = std::clamp<std::int64_t>(4096 / std::max<std::int64_t>(scratch_row, 1), 2, 16);

  std::vector<StepCounts> counts(static_cast<std::size_t>(threads));
  // About sixteen chunks per thread: popular rows make groups uneven.
  const std::int64_t grain = std::max<std::int64_t>(8, job.groups / (16 * threads));
  ParallelForDynamic(threads, job.groups, grain, [&](std::int64_t b, std::int64_t e, int t) {
    UpdateGroups(job, b, e, scratch[t], &counts[t]);
  });
  stats->distinct_rows = job.groups;
  for (const StepCounts& c : counts) {
    stats->rows_scaled += c.scaled;
    stats->nonfinite_rows += c.nonfinite;
  }
  return {};
}

}  // namespace sparsenorm::cpu
