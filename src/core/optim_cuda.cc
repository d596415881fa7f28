// Front end of the optimizer step on device memory (include/sparsenorm/
// cuda.h): the checks every front end makes (core/validate_step.cc, the same
// messages as the CPU's), then the device's own restrictions and where the
// memory lives, then the CUDA backend. What only the device can check (index
// values, NaN/infinity in the gradient under the error policy) it checks
// itself, before it writes anything, and reports through the scratch header
// (cuda/launch.h), read back by OptimizerResult and formatted like any
// backend's finding.

#include <cstdint>
#include <new>
#include <string>

#include "core/cuda_front.h"
#include "core/messages.h"
#include "core/optim_backend.h"
#include "core/status.h"
#include "core/validate.h"
#include "sparsenorm/cuda.h"

namespace sparsenorm::cuda {
namespace {

using sparsenorm::detail::InvalidArgument;
using sparsenorm::detail::StepExtents;

// How the messages name state table i of a kind (optim.h, OptimizerState).
const char* StateName(OptimizerKind kind, int i) {
  if (kind == OptimizerKind::kAdam) return i == 0 ? "state.exp_avg" : "state.exp_avg_sq";
  return "state.sum";
}

// An index list's pointer where ScratchBytesOf knows only its size: not
// null, which marks a dense gradient (StepProblem::dense()); never read.
constexpr std::int64_t kNoIndex = 0;

Status Prepare(const Table& table, const OptimizerState& state, const Indices* indices,
               const ConstTable& gradient, const OptimizerOptions& options, StepProblem* problem,
               StepExtents* extents) {
  if (Status s = sparsenorm::detail::PrepareStep(table, state, indices, gradient, options, problem, extents);
      !s.ok()) {
    return s;
  }
  // Backend::kReference is refused in the row operator's words.
  NormalizeOptions backend;
  backend.backend = options.backend;
  if (Status s = sparsenorm::detail::CheckDeviceOptions(backend); !s.ok()) return s;
  using sparsenorm::detail::CheckDevicePointer;
  if (extents->table_bytes > 0) {
    if (Status s = CheckDevicePointer(table.data, "table.data"); !s.ok()) return s;
  }
  if (extents->grad_bytes > 0) {
    const char* name = indices != nullptr ? "values.data" : "gradient.data";
    if (Status s = CheckDevicePointer(gradient.data, name); !s.ok()) return s;
  }
  if (extents->index_bytes > 0) {
    if (Status s = CheckDevicePointer(indices->data, "indices.data"); !s.ok()) return s;
  }
  for (int i = 0; i < 2; ++i) {
    if (extents->state_bytes[i] == 0) continue;
    const std::string name = sparsenorm::detail::StrCat(StateName(options.kind, i), ".data");
    if (Status s = CheckDevicePointer(problem->state[i].data, name.c_str()); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ScratchBytes(const StepProblem& problem, std::size_t* bytes) {
  return sparsenorm::detail::StatusOf(dev::StepScratchBytes(problem, bytes));
}

Status Enqueue(const StepProblem& problem, const StepExtents& extents, bool sparse, OptimizerKind kind,
               void* scratch, std::size_t scratch_bytes, StreamHandle stream) {
  std::size_t needed = 0;
  if (Status s = ScratchBytes(problem, &needed); !s.ok()) return s;
  if (Status s = sparsenorm::detail::CheckScratch(scratch, scratch_bytes, needed); !s.ok()) return s;
  struct Region {
    const void* data;
    std::int64_t bytes;
    const char* name;
  };
  const Region regions[] = {{problem.table.data, extents.table_bytes, "table"},
                            {problem.grad, extents.grad_bytes, sparse ? "values" : "gradient"},
                            {problem.indices, extents.index_bytes, "indices"},
                            {problem.state[0].data, extents.state_bytes[0], StateName(kind, 0)},
                            {problem.state[1].data, extents.state_bytes[1], StateName(kind, 1)}};
  for (const Region& r : regions) {
    if (sparsenorm::detail::Overlaps(scratch, static_cast<std::int64_t>(needed), r.data, r.bytes)) {
      return InvalidArgument("scratch overlaps ", r.name, "; it must be memory of its own.");
    }
  }
  return sparsenorm::detail::StatusOf(dev::EnqueueStep(problem, scratch, stream));
}

Status RunAsync(const Table& table, const OptimizerState& state, const Indices* indices,
                const ConstTable& gradient, const OptimizerOptions& options, void* scratch,
                std::size_t scratch_bytes, StreamHandle stream) {
  StepProblem problem;
  StepExtents extents;
  if (Status s = Prepare(table, state, indices, gradient, options, &problem, &extents); !s.ok()) return s;
  return Enqueue(problem, extents, indices != nullptr, options.kind, scratch, scratch_bytes, stream);
}

Status RunSync(const Table& table, const OptimizerState& state, const Indices* indices,
               const ConstTable& gradient, const OptimizerOptions& options, RowStats* stats,
               StreamHandle stream) {
  StepProblem problem;
  StepExtents extents;
  if (Status s = Prepare(table, state, indices, gradient, options, &problem, &extents); !s.ok()) return s;
  std::size_t bytes = 0;
  if (Status s = ScratchBytes(problem, &bytes); !s.ok()) return s;
  void* scratch = nullptr;
  if (Finding f = dev::AllocateScratch(bytes, stream, "allocating scratch memory for the optimizer step", &scratch)) {
    return sparsenorm::detail::StatusOf(f);
  }
  Status s = Enqueue(problem, extents, indices != nullptr, options.kind, scratch, bytes, stream);
  if (s.ok()) s = OptimizerResult(scratch, stream, stats);
  dev::FreeScratch(scratch, stream);
  return s;
}

// The scratch size of a call with these shapes (the other arguments do not
// change it); 0 when the shapes are invalid or the device cannot tell.
std::size_t ScratchBytesOf(const Table& table, const Indices* indices) {
  if (table.rows < 0 || table.cols < 0 || ElementSize(table.dtype) == 0) return 0;
  if (indices != nullptr && (indices->size < 0 || IndexSize(indices->type) == 0)) return 0;
  // The partial sums take up to n / 32 rows of cols float64 values.
  if (indices != nullptr && table.cols > 0 && indices->size / 32 > (std::int64_t{1} << 60) / 8 / table.cols) return 0;
  StepProblem problem;
  problem.rows = table.rows;
  problem.cols = table.cols;
  problem.dtype = table.dtype;
  problem.grad_dtype = table.dtype;
  if (indices != nullptr) {
    problem.indices = &kNoIndex;  // sparse; the values are not read
    problem.index_type = indices->type;
    problem.num_indices = indices->size;
  } else {
    problem.num_indices = table.rows;
  }
  std::size_t bytes = 0;
  if (dev::StepScratchBytes(problem, &bytes)) return 0;
  return bytes;
}

Status HostOutOfMemory() { return sparsenorm::detail::OutOfMemory("host memory for an error message"); }

}  // namespace

std::size_t OptimizerScratchBytes(const Table& table, const Indices& indices) noexcept {
  try {
    return ScratchBytesOf(table, &indices);
  } catch (const std::bad_alloc&) {
    return 0;
  }
}

std::size_t OptimizerScratchBytesDense(const Table& table) noexcept {
  try {
    return ScratchBytesOf(table, nullptr);
  } catch (const std::bad_alloc&) {
    return 0;
  }
}

Status OptimizerStepAsync(Table table, const OptimizerState& state, Indices indices, ConstTable values,
                          const OptimizerOptions& options, void* scratch, std::size_t scratch_bytes,
                          StreamHandle stream) noexcept {
  try {
    return RunAsync(table, state, &indices, values, options, scratch, scratch_bytes, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status OptimizerStepDenseAsync(Table table, const OptimizerState& state, ConstTable gradient,
                               const OptimizerOptions& options, void* scratch, std::size_t scratch_bytes,
                               StreamHandle stream) noexcept {
  try {
    return RunAsync(table, state, nullptr, gradient, options, scratch, scratch_bytes, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status OptimizerResult(const void* scratch, StreamHandle stream, RowStats* stats) noexcept {
  try {
    if (scratch == nullptr) return InvalidArgument("scratch is null.");
    bool valid = false;
    RowStats result;
    if (Finding f = dev::StepOutcome(scratch, stream, &valid, &result)) return sparsenorm::detail::StatusOf(f);
    if (!valid) {
      return InvalidArgument("scratch does not hold the outcome of an optimizer step; pass the "
                             "scratch memory of an OptimizerStepAsync or OptimizerStepDenseAsync "
                             "call that returned Ok.");
    }
    if (stats != nullptr) *stats = result;
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status OptimizerStep(Table table, const OptimizerState& state, Indices indices, ConstTable values,
                     const OptimizerOptions& options, RowStats* stats, StreamHandle stream) noexcept {
  try {
    return RunSync(table, state, &indices, values, options, stats, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status OptimizerStepDense(Table table, const OptimizerState& state, ConstTable gradient,
                          const OptimizerOptions& options, RowStats* stats, StreamHandle stream) noexcept {
  try {
    return RunSync(table, state, nullptr, gradient, options, stats, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

}  // namespace sparsenorm::cuda
