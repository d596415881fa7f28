// Front end of the row operator on host memory: validate (core/validate.h),
// plan (core/plan.h), run on the CPU or the reference backend, and turn what
// the backend found into a Status (core/messages.h).
//
// A backend writes nothing before it has checked every index and, under
// NonFinitePolicy::kError, every indexed row: a rejected call leaves the
// table as it was.

#include <algorithm>
#include <cstdint>
#include <new>
#include <vector>

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

Status NormalizeRowsMany(std::span<const RowsBatchEntry> entries, std::span<RowStats> stats_out,
                         const Tuning& tuning) {
  const auto count = static_cast<std::int64_t>(entries.size());
  if (!stats_out.empty() && stats_out.size() != entries.size()) {
    return InvalidArgument("stats has ", stats_out.size(), " elements but there are ", count,
                           " entries: pass one RowStats per entry, or none.");
  }
  std::vector<RowsProblem> problems(entries.size());
  std::vector<RowsPlan> plans(entries.size());
  struct Extent {
    std::uintptr_t begin, end;
    std::int64_t entry;
  };
  std::vector<Extent> extents;
  extents.reserve(entries.size());
  for (std::int64_t k = 0; k < count; ++k) {
    const RowsBatchEntry& e = entries[static_cast<std::size_t>(k)];
    RowsExtents x;
    if (Status s = PrepareRows(ConstTable(e.table), e.table, e.indices, e.options,
                               /*out_of_place=*/false, &problems[k], &x);
        !s.ok()) {
      return Status(s.code(), StrCat("entries[", k, "]: ", s.message()));
    }
    const NormalizeOptions& first = entries[0].options;
    if (e.options.num_threads != first.num_threads || e.options.backend != first.backend) {
      return InvalidArgument("entries[", k, "].options has num_threads = ", e.options.num_threads,
                             " and backend = ", static_cast<int>(e.options.backend),
                             " but entries[0].options has ", first.num_threads, " and ",
                             static_cast<int>(first.backend),
                             ": one call runs on one thread count and one backend.");
    }
    plans[k] = PlanRows(problems[k], first.num_threads, tuning);
    const auto begin = reinterpret_cast<std::uintptr_t>(e.table.data);
    if (x.out_bytes > 0) extents.push_back({begin, begin + static_cast<std::uintptr_t>(x.out_bytes), k});
  }
  // No two tables may share a byte: sorted by address, only neighbours can.
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
  for (std::size_t i = 1; i < extents.size(); ++i) {
    if (extents[i].begin < extents[i - 1].end) {
      const std::int64_t a = std::min(extents[i - 1].entry, extents[i].entry);
      const std::int64_t b = std::max(extents[i - 1].entry, extents[i].entry);
      return InvalidArgument("entries[", a, "].table and entries[", b,
                             "].table share memory: each table may appear once.");
    }
  }

  std::vector<RowStats> stats(entries.size());
  const bool reference = count > 0 && UseReference(entries[0].options.backend);
  // The thread count from the work of all the tables together.
  std::int64_t work = 0;
  for (const RowsProblem& p : problems) work += p.num_indices * std::max<std::int64_t>(p.row_bytes, 1);
  const int threads =
      ThreadsFor(count > 0 ? entries[0].options.num_threads : 0, work, tuning.bytes_per_thread);
  const BatchFinding found =
      reference ? reference::NormalizeRowsMany(problems.data(), count, stats.data())
                : cpu::NormalizeRowsMany(problems.data(), plans.data(), count, threads, stats.data());
  if (found) {
    const Status s = StatusOf(found.finding);
    return Status(s.code(), StrCat("entries[", found.table, "]: ", s.message()));
  }
  for (std::int64_t k = 0; k < count; ++k) {
    stats[k].indices_seen = entries[static_cast<std::size_t>(k)].indices.size;
    if (!stats_out.empty()) stats_out[static_cast<std::size_t>(k)] = stats[k];
  }
  return Status::Ok();
}

}  // namespace detail

Status NormalizeRowsMany(std::span<const RowsBatchEntry> entries,
                         std::span<RowStats> stats) noexcept {
  try {
    return detail::NormalizeRowsMany(entries, stats, Tuning{});
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the row operator");
  }
}

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
