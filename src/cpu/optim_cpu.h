// Inside the CPU backend of the optimizer step: the per-target kernels of
// optim_kernels.cc, reached through Highway's run-time dispatch, and what
// optim.cc (which runs a call) hands them.
#ifndef SPARSENORM_CPU_OPTIM_CPU_H_
#define SPARSENORM_CPU_OPTIM_CPU_H_

#include <cstddef>
#include <cstdint>

#include "core/optim_backend.h"

namespace sparsenorm::cpu {

// A validated call (core/optim_backend.h) with its rows grouped
// (group_rows.h). Group s updates table row rows[s] from the gradient rows
// at positions[begin[s] .. begin[s + 1]); for a dense gradient rows,
// positions and begin are null and group s is row s, gradient row s.
struct StepJob : StepProblem {
  const std::int64_t* rows = nullptr;
  const std::int64_t* positions = nullptr;
  const std::int64_t* begin = nullptr;
  std::int64_t groups = 0;
  // The repeat-group sums of the groups with more than kRepeatGroup
  // occurrences: partial[s] >= 0 is the first of their ceil(count /
  // kRepeatGroup) consecutive sums in `partials` (cols elements of the
  // arithmetic type each, partial_stride_bytes apart); -1 for the others.
  const std::int64_t* partial = nullptr;
  unsigned char* partials = nullptr;
  std::int64_t partial_stride_bytes = 0;
  std::int64_t prefetch_groups = 4;
  // A phase of the column-sharded step, or null for the whole step.
  const StepShard* shard = nullptr;
};

struct StepCounts {
  std::int64_t scaled = 0;
  std::int64_t nonfinite = 0;
};

// Per-thread rows of the arithmetic type: the summed gradient, the updated
// row and its updated state, before they are checked and stored. Each
// `cols` elements, 64-byte aligned.
struct StepScratch {
  void* g = nullptr;
  void* w = nullptr;
  void* s0 = nullptr;
  void* s1 = nullptr;
};

// The sums of repeat groups [first, last) of the long groups listed in
// `sums`: item k is group sums[k].group's repeat group sums[k].index.
struct RepeatSum {
  std::int64_t group;
  std::int64_t index;
  std::int64_t slot;  // where in job.partials
};
void SumRepeatGroups(const StepJob& job, const RepeatSum* sums, std::int64_t first,
                     std::int64_t last);

// Updates the rows of groups [first, last).
void UpdateGroups(const StepJob& job, std::int64_t first, std::int64_t last,
                  const StepScratch& scratch, StepCounts* counts);

// The first gradient row in [first, last) holding NaN or infinity, or -1.
std::int64_t FirstNonFiniteGradientRow(const StepJob& job, std::int64_t first,
                                       std::int64_t last);

}  // namespace sparsenorm::cpu

#endif  // SPARSENORM_CPU_OPTIM_CPU_H_
