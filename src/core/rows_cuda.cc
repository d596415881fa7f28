// Front end of the row operator on device memory (include/sparsenorm/cuda.h):
// the checks every front end makes (core/validate.h, the same messages as
// the CPU's), then the device's own restrictions and where the memory lives,
// then the CUDA backend. What only the device can check it checks itself
// and reports through the scratch header (cuda/launch.h), read back by
// RowsResult and formatted like any backend's finding.

#include <algorithm>
#include <new>

#include "core/rows_backend.h"
#include "core/cuda_front.h"
#include "core/messages.h"
#include "core/status.h"
#include "core/validate.h"
#include "sparsenorm/cuda.h"

namespace sparsenorm::cuda {
namespace {

using sparsenorm::detail::InvalidArgument;

Status Prepare(const ConstTable& in, const Table& out, const Indices& indices,
               const NormalizeOptions& options, bool out_of_place, RowsProblem* problem,
               sparsenorm::detail::RowsExtents* extents) {
  if (Status s = sparsenorm::detail::PrepareRows(in, out, indices, options, out_of_place, problem, extents);
      !s.ok()) {
    return s;
  }
  if (Status s = sparsenorm::detail::CheckDeviceOptions(options); !s.ok()) return s;
  if (extents->out_bytes > 0) {
    const char* name = out_of_place ? "output.data" : "table.data";
    if (Status s = sparsenorm::detail::CheckDevicePointer(out.data, name); !s.ok()) return s;
  }
  if (!problem->in_place && extents->in_bytes > 0) {
    if (Status s = sparsenorm::detail::CheckDevicePointer(in.data, "input.data"); !s.ok()) return s;
  }
  if (indices.size > 0) {
    if (Status s = sparsenorm::detail::CheckDevicePointer(indices.data, "indices.data"); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Enqueue(const RowsProblem& problem, const sparsenorm::detail::RowsExtents& extents, void* scratch,
               std::size_t scratch_bytes, StreamHandle stream) {
  const std::size_t needed = dev::RowsScratchBytes(problem);
  if (Status s = sparsenorm::detail::CheckScratch(scratch, scratch_bytes, needed); !s.ok()) return s;
  const auto scratch_len = static_cast<std::int64_t>(needed);
  using sparsenorm::detail::Overlaps;
  if (Overlaps(scratch, scratch_len, problem.out, extents.out_bytes) ||
      Overlaps(scratch, scratch_len, problem.in, extents.in_bytes) ||
      Overlaps(scratch, scratch_len, problem.indices, extents.index_bytes)) {
    return InvalidArgument("scratch overlaps the table or the index list; it must be memory "
                           "of its own.");
  }
  return sparsenorm::detail::StatusOf(dev::EnqueueRows(problem, scratch, stream));
}

Status RunAsync(const ConstTable& in, const Table& out, const Indices& indices,
                const NormalizeOptions& options, bool out_of_place, void* scratch,
                std::size_t scratch_bytes, StreamHandle stream) {
  RowsProblem problem;
  sparsenorm::detail::RowsExtents extents;
  if (Status s = Prepare(in, out, indices, options, out_of_place, &problem, &extents); !s.ok()) return s;
  return Enqueue(problem, extents, scratch, scratch_bytes, stream);
}

Status RunSync(const ConstTable& in, const Table& out, const Indices& indices,
               const NormalizeOptions& options, bool out_of_place, RowStats* stats,
               StreamHandle stream) {
  RowsProblem problem;
  sparsenorm::detail::RowsExtents extents;
  if (Status s = Prepare(in, out, indices, options, out_of_place, &problem, &extents); !s.ok()) return s;
  const std::size_t bytes = dev::RowsScratchBytes(problem);
  void* scratch = nullptr;
  if (Finding f = dev::AllocateScratch(bytes, stream, "allocating scratch memory for the row operator", &scratch)) {
    return sparsenorm::detail::StatusOf(f);
  }
  Status s = Enqueue(problem, extents, scratch, bytes, stream);
  if (s.ok()) s = RowsResult(scratch, stream, stats);
  dev::FreeScratch(scratch, stream);
  return s;
}

Status HostOutOfMemory() { return sparsenorm::detail::OutOfMemory("host memory for an error message"); }

}  // namespace

int DeviceCount() noexcept { return dev::DeviceCount(); }

std::size_t RowsScratchBytes(std::int64_t table_rows, std::int64_t num_indices) noexcept {
  RowsProblem problem;
  problem.rows = std::max<std::int64_t>(table_rows, 0);
  problem.num_indices = std::max<std::int64_t>(num_indices, 0);
  return dev::RowsScratchBytes(problem);
}

Status NormalizeRowsAsync(Table table, Indices indices, const NormalizeOptions& options,
                          void* scratch, std::size_t scratch_bytes, StreamHandle stream) noexcept {
  try {
    return RunAsync(ConstTable(table), table, indices, options, false, scratch, scratch_bytes, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status NormalizeRowsAsync(ConstTable input, Table output, Indices indices,
                          const NormalizeOptions& options, void* scratch,
                          std::size_t scratch_bytes, StreamHandle stream) noexcept {
  try {
    return RunAsync(input, output, indices, options, true, scratch, scratch_bytes, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status RowsResult(const void* scratch, StreamHandle stream, RowStats* stats) noexcept {
  try {
    if (scratch == nullptr) return InvalidArgument("scratch is null.");
    bool valid = false;
    RowStats result;
    if (Finding f = dev::RowsOutcome(scratch, stream, &valid, &result)) return sparsenorm::detail::StatusOf(f);
    if (!valid) {
      return InvalidArgument("scratch does not hold the outcome of a row-operator call; pass the "
                             "scratch memory of a NormalizeRowsAsync call that returned Ok.");
    }
    if (stats != nullptr) *stats = result;
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status NormalizeRows(Table table, Indices indices, const NormalizeOptions& options,
                     RowStats* stats, StreamHandle stream) noexcept {
  try {
    return RunSync(ConstTable(table), table, indices, options, false, stats, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status NormalizeRows(ConstTable input, Table output, Indices indices,
                     const NormalizeOptions& options, RowStats* stats,
                     StreamHandle stream) noexcept {
  try {
    return RunSync(input, output, indices, options, true, stats, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

}  // namespace sparsenorm::cuda
