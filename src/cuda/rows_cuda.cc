// Front end of the row operator on the device: host-side validation (the
// same checks and messages as src/core/rows.cc), the scratch layout, the
// launch, and the translation of the device header into a Status.

#include <cuda_runtime_api.h>

#include <algorithm>
#include <new>

#include "core/validate.h"
#include "cuda/front.h"
#include "cuda/launch.h"
#include "sparsenorm/cuda.h"

namespace sparsenorm::cuda {
namespace {

using sparsenorm::detail::RowOperands;
using sparsenorm::detail::InvalidArgument;
using sparsenorm::detail::StrCat;

// Everything the host can check, before the scratch size is known.
Status CheckArguments(const ConstTable& in, const Table& out, const Indices& indices,
                      const NormalizeOptions& options, bool out_of_place, RowOperands* prep) {
  if (Status s = detail::ValidateDeviceOptions(options); !s.ok()) return s;
  if (Status s = sparsenorm::detail::CheckRowOperands(in, out, indices, out_of_place, prep);
      !s.ok()) {
    return s;
  }
  const char* out_name = out_of_place ? "output" : "table";
  if (prep->out_layout.extent_bytes > 0) {
    if (Status s = detail::CheckDevicePointer(out.data, StrCat(out_name, ".data").c_str()); !s.ok()) return s;
  }
  if (!prep->in_place && prep->in_layout.extent_bytes > 0) {
    if (Status s = detail::CheckDevicePointer(in.data, "input.data"); !s.ok()) return s;
  }
  if (indices.size > 0) {
    if (Status s = detail::CheckDevicePointer(indices.data, "indices.data"); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Enqueue(const ConstTable& in, const Table& out, const Indices& indices,
               const NormalizeOptions& options, const RowOperands& prep, void* scratch,
               std::size_t scratch_bytes, StreamHandle stream) {
  const detail::RowsScratchLayout layout = detail::RowsLayout(out.rows, indices.size);
  if (Status s = detail::CheckScratch(scratch, scratch_bytes, layout.total); !s.ok()) return s;
  const auto index_bytes = static_cast<std::int64_t>(
      indices.size * (indices.type == IndexType::kInt32 ? 4 : 8));
  const auto scratch_len = static_cast<std::int64_t>(layout.total);
  if (sparsenorm::detail::Overlaps(scratch, scratch_len, out.data, prep.out_layout.extent_bytes) ||
      sparsenorm::detail::Overlaps(scratch, scratch_len, in.data, prep.in_layout.extent_bytes) ||
      sparsenorm::detail::Overlaps(scratch, scratch_len, indices.data, index_bytes)) {
    return InvalidArgument("scratch overlaps the table or the index list; it must be memory "
                           "of its own.");
  }

  detail::RowsLaunch job;
  job.in = in.data;
  job.out = out.data;
  job.in_stride = prep.in_layout.stride;
  job.out_stride = prep.out_layout.stride;
  job.rows = out.rows;
  job.cols = out.cols;
  job.dtype = static_cast<int>(out.dtype);
  const auto element = static_cast<std::int64_t>(prep.out_layout.element_size);
  job.vectorized = detail::Aligned16(out.data, prep.out_layout.stride * element, out.cols * element) &&
                   detail::Aligned16(in.data, prep.in_layout.stride * element, out.cols * element);
  job.in_place = prep.in_place;
  job.indices = indices.data;
  job.index_type = indices.type == IndexType::kInt32 ? 0 : 1;
  job.num_indices = indices.size;
  job.params = detail::DeviceParams(options);
  job.nonfinite_error = options.non_finite == NonFinitePolicy::kError;
  job.scratch = scratch;
  job.stream = stream;
  if (const int e = detail::LaunchRows(job); e != 0) {
    return detail::DeviceError(e, "launching the row operator");
  }
  return Status::Ok();
}

Status RunAsync(const ConstTable& in, const Table& out, const Indices& indices,
                const NormalizeOptions& options, bool out_of_place, void* scratch,
                std::size_t scratch_bytes, StreamHandle stream) {
  RowOperands prep;
  if (Status s = CheckArguments(in, out, indices, options, out_of_place, &prep); !s.ok()) return s;
  return Enqueue(in, out, indices, options, prep, scratch, scratch_bytes, stream);
}

Status RunSync(const ConstTable& in, const Table& out, const Indices& indices,
               const NormalizeOptions& options, bool out_of_place, RowStats* stats,
               StreamHandle stream) {
  RowOperands prep;
  if (Status s = CheckArguments(in, out, indices, options, out_of_place, &prep); !s.ok()) return s;
  const std::size_t bytes = RowsScratchBytes(out.rows, indices.size);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  void* scratch = nullptr;
  if (const cudaError_t e = cudaMallocAsync(&scratch, bytes, st); e != cudaSuccess) {
    cudaGetLastError();
    return detail::DeviceError(e, "allocating scratch memory for the row operator");
  }
  Status s = Enqueue(in, out, indices, options, prep, scratch, bytes, stream);
  if (s.ok()) s = RowsResult(scratch, stream, stats);
  cudaFreeAsync(scratch, st);
  return s;
}

}  // namespace

std::size_t RowsScratchBytes(std::int64_t table_rows, std::int64_t num_indices) noexcept {
  return detail::RowsLayout(std::max<std::int64_t>(table_rows, 0),
                            std::max<std::int64_t>(num_indices, 0))
      .total;
}

Status NormalizeRowsAsync(Table table, Indices indices, const NormalizeOptions& options,
                          void* scratch, std::size_t scratch_bytes, StreamHandle stream) noexcept {
  try {
    return RunAsync(ConstTable(table), table, indices, options, false, scratch, scratch_bytes, stream);
  } catch (const std::bad_alloc&) {
    return sparsenorm::detail::OutOfMemory("host memory for an error message");
  }
}

Status NormalizeRowsAsync(ConstTable input, Table output, Indices indices,
                          const NormalizeOptions& options, void* scratch,
                          std::size_t scratch_bytes, StreamHandle stream) noexcept {
  try {
    return RunAsync(input, output, indices, options, true, scratch, scratch_bytes, stream);
  } catch (const std::bad_alloc&) {
    return sparsenorm::detail::OutOfMemory("host memory for an error message");
  }
}

Status RowsResult(const void* scratch, StreamHandle stream, RowStats* stats) noexcept {
  try {
    if (scratch == nullptr) return InvalidArgument("scratch is null.");
    detail::RowsHeader h{};
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    cudaError_t e = cudaMemcpyAsync(&h, scratch, sizeof h, cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return detail::DeviceError(e, "waiting for the row operator");
    }
    if (h.magic != detail::kRowsMagic) {
      return InvalidArgument("scratch does not hold the outcome of a row-operator call; pass the "
                             "scratch memory of a NormalizeRowsAsync call that returned Ok.");
    }
    if (h.bad_key != 0) {
      const auto position = h.num_indices - static_cast<std::int64_t>(h.bad_key);
      return sparsenorm::detail::IndexOutOfRange("indices", position, h.bad_value, h.rows,
                                                 "table row");
    }
    if (h.nonfinite_key != 0) {
      const auto position = h.num_indices - static_cast<std::int64_t>(h.nonfinite_key);
      return Status(StatusCode::kNonFinite,
                    StrCat("row ", h.nonfinite_value, " (indices[", position,
                           "]) holds NaN or infinity and options.non_finite is kError; "
                           "nothing was modified."));
    }
    if (stats != nullptr) {
      stats->indices_seen = h.num_indices;
      stats->distinct_rows = static_cast<std::int64_t>(h.distinct);
      stats->rows_scaled = static_cast<std::int64_t>(h.scaled);
      stats->nonfinite_rows = static_cast<std::int64_t>(h.nonfinite);
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return sparsenorm::detail::OutOfMemory("host memory for an error message");
  }
}

Status NormalizeRows(Table table, Indices indices, const NormalizeOptions& options,
                     RowStats* stats, StreamHandle stream) noexcept {
  try {
    return RunSync(ConstTable(table), table, indices, options, false, stats, stream);
  } catch (const std::bad_alloc&) {
    return sparsenorm::detail::OutOfMemory("host memory for an error message");
  }
}

Status NormalizeRows(ConstTable input, Table output, Indices indices,
                     const NormalizeOptions& options, RowStats* stats,
                     StreamHandle stream) noexcept {
  try {
    return RunSync(input, output, indices, options, true, stats, stream);
  } catch (const std::bad_alloc&) {
    return sparsenorm::detail::OutOfMemory("host memory for an error message");
  }
}

}  // namespace sparsenorm::cuda
