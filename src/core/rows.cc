// Front end of the row operator on host memory: validate (core/validate.h),
// plan (core/plan.h), run on the CPU or the reference backend, and turn what
// the backend found into a Status (core/messages.h).
//
// A backend writes nothing before it has checked every index and, under
// NonFinitePolicy::kError, every indexed row: a rejected call leaves the
// table as it was.

#include <new>

#include "core/rows_backend.h"
#include "core/entry.h"
#include "core/messages.h"
#include "core/plan.h"
#include "core/status.h"
#include "core/validate.h"
#include "sparsenorm/rows.h"

namespace sparsenorm {
namespace detail {

Status NormalizeRows(const ConstTable& in, const Table& out, const Indices& indices,
                     const NormalizeOptions& options, bool out_of_place, const Tuning& tuning,
                     RowStats* stats_out) {
  RowsProblem problem;
  if (Status s = PrepareRows(in, out, indices, options, out_of_place, &problem, nullptr); !s.ok()) {
    return s;
  }
  RowStats stats;
  const Finding finding =
      UseReference(options.backend)
          ? reference::NormalizeRows(problem, &stats)
          : cpu::NormalizeRows(problem, PlanRows(problem, options.num_threads, tuning), &stats);
  if (finding) return StatusOf(finding);
  stats.indices_seen = indices.size;
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

}  // namespace detail

Status NormalizeRows(Table table, Indices indices, const NormalizeOptions& options,
                     RowStats* stats) noexcept {
  try {
    return detail::NormalizeRows(ConstTable(table), table, indices, options,
                                 /*out_of_place=*/false, Tuning{}, stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the row operator");
  }
}

Status NormalizeRows(ConstTable input, Table output, Indices indices,
                     const NormalizeOptions& options, RowStats* stats) noexcept {
  try {
    return detail::NormalizeRows(input, output, indices, options, /*out_of_place=*/true,
                                 Tuning{}, stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the row operator");
  }
}

int DefaultThreadCount() noexcept { return cpu::AvailableThreads(); }

const char* ActiveSimdTarget() noexcept { return cpu::SimdTarget(); }

}  // namespace sparsenorm
