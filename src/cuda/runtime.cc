// The CUDA backend as the front end sees it (core/backend.h): problems
// turned into launches, scratch memory, pointer inspection, and the device's
// report read back. The only file of the library, with the kernels, that
// talks to the CUDA runtime.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/element_types.h"
#include "core/matrix_backend.h"
#include "core/optim_backend.h"
#include "core/rows_backend.h"
#include "cuda/launch.h"
#include "cuda/results.h"

namespace sparsenorm::cuda::dev {
namespace {

using cuda::detail::Format;
using cuda::detail::MatrixLaunch;
using cuda::detail::RowsLaunch;
using cuda::detail::StepLaunch;
using cuda::detail::StepLaunchOf;

Finding DeviceError(cudaError_t e, const char* what) {
  Finding f;
  f.kind = FindingKind::kDeviceError;
  f.what = what;
  f.device_name = cudaGetErrorName(e);
  f.device_text = cudaGetErrorString(e);
  f.device_out_of_memory = e == cudaErrorMemoryAllocation;
  return f;
}

// Whether [p, p + row_bytes) in steps of stride_bytes is a run of 16-byte
// aligned pieces: the rows can then be moved 16 bytes at a time.
bool Aligned16(const void* p, std::int64_t stride_bytes, std::int64_t row_bytes) {
  return (reinterpret_cast<std::uintptr_t>(p) % 16) == 0 && stride_bytes % 16 == 0 && row_bytes % 16 == 0;
}

RowsLaunch RowsLaunchOf(const RowsProblem& p) {
  RowsLaunch job;
  const auto element = static_cast<std::int64_t>(ElementSize(p.dtype));
  job.in = p.in;
  job.out = p.out;
  job.in_stride = p.in_stride_bytes / element;
  job.out_stride = p.out_stride_bytes / element;
  job.rows = p.rows;
  job.cols = p.cols;
  job.dtype = p.dtype;
  job.vectorized = Aligned16(p.out, p.out_stride_bytes, p.row_bytes) && Aligned16(p.in, p.in_stride_bytes, p.row_bytes);
  job.in_place = p.in_place;
  job.indices = p.indices;
  job.index_type = p.index_type;
  job.num_indices = p.num_indices;
  job.rule = p.rule;
  job.nonfinite_error = p.nonfinite_error;
  return job;
}

void FillCommon(const MatrixCommon& c, MatrixLaunch* job) {
  job->path = c.path;
  job->axis = c.axis;
  if (c.has_subset) {
    job->subset = c.subset.data;
    job->subset_type = c.subset.type;
    job->subset_size = c.subset.size;
  }
  job->rule = c.rule;
  job->nonfinite_error = c.nonfinite_error;
  job->prune_below = c.prune_below;
}

MatrixLaunch DenseLaunchOf(const DenseMatrixProblem& p) {
  MatrixLaunch job;
  const auto element = static_cast<std::int64_t>(ElementSize(p.dtype));
  job.format = Format::kDense;
  job.rows = p.rows;
  job.cols = p.cols;
  job.row_stride = p.stride_bytes / element;
  job.values = p.data;
  job.dtype = p.dtype;
  job.vectorized = Aligned16(p.data, p.stride_bytes, p.cols * element);
  FillCommon(p.common, &job);
  return job;
}

MatrixLaunch SparseLaunchOf(const SparseMatrixProblem& p) {
  const SparseMatrix& m = p.matrix;
  MatrixLaunch job;
  job.format = m.format == SparseFormat::kCSR   ? Format::kCSR
               : m.format == SparseFormat::kCSC ? Format::kCSC
                                                : Format::kCOO;
  job.rows = m.rows;
  job.cols = m.cols;
  job.nnz = m.nnz;
  job.values = m.values;
  job.dtype = m.dtype;
  job.index_type = m.index_type;
  job.indptr = m.indptr;
  job.indices = m.indices;
  job.row = m.row;
  job.col = m.col;
  FillCommon(p.common, &job);
  return job;
}

Finding Launch(const MatrixLaunch& launch, void* scratch, void* stream) {
  MatrixLaunch job = launch;
  job.scratch = scratch;
  job.stream = stream;
  if (const int e = cuda::detail::LaunchMatrix(job); e != 0) {
    return DeviceError(static_cast<cudaError_t>(e), "launching the matrix normalization");
  }
  return {};
}

// Copies the header at the start of `scratch` and waits for the stream.
template <class Header>
Finding ReadHeader(const void* scratch, void* stream, const char* what, Header* h) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  cudaError_t e = cudaMemcpyAsync(h, scratch, sizeof(Header), cudaMemcpyDeviceToHost, st);
  if (e == cudaSuccess) e = cudaStreamSynchronize(st);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return DeviceError(e, what);
  }
  return {};
}

}  // namespace

int DeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

Finding InspectPointer(const void* p, PointerKind* kind) {
  cudaPointerAttributes attr{};
  const cudaError_t e = cudaPointerGetAttributes(&attr, p);
  if (e != cudaSuccess) {
    cudaGetLastError();  // not sticky: do not let it surface at the next launch
    return DeviceError(e, "inspecting a pointer");
  }
  *kind = PointerKind{};
  cudaGetDevice(&kind->current_device);
  switch (attr.type) {
    case cudaMemoryTypeDevice:
      kind->device_addressable = true;
      kind->device = attr.device;
      break;
    case cudaMemoryTypeManaged:
      kind->device_addressable = true;
      kind->device = kind->current_device;
      break;
    case cudaMemoryTypeHost:
      kind->device_addressable = attr.devicePointer != nullptr;
      kind->device = kind->current_device;
      break;
    default:
      break;
  }
  return {};
}

std::size_t RowsScratchBytes(const RowsProblem& problem) {
  return cuda::detail::RowsLayout(problem.rows, problem.num_indices).total;
}

Finding EnqueueRows(const RowsProblem& problem, void* scratch, void* stream) {
  RowsLaunch job = RowsLaunchOf(problem);
  job.scratch = scratch;
  job.stream = stream;
  if (const int e = cuda::detail::LaunchRows(job); e != 0) {
    return DeviceError(static_cast<cudaError_t>(e), "launching the row operator");
  }
  return {};
}

Finding RowsOutcome(const void* scratch, void* stream, bool* valid, RowStats* stats) {
  cuda::detail::RowsHeader h{};
  if (Finding f = ReadHeader(scratch, stream, "waiting for the row operator", &h)) return f;
  *valid = h.magic == cuda::detail::kRowsMagic;
  if (!*valid) return {};
  if (Finding f = cuda::detail::RowsFinding(h)) return f;
  stats->indices_seen = h.num_indices;
  stats->distinct_rows = static_cast<std::int64_t>(h.distinct);
  stats->rows_scaled = static_cast<std::int64_t>(h.scaled);
  stats->nonfinite_rows = static_cast<std::int64_t>(h.nonfinite_rows);
  return {};
}

Finding StepScratchBytes(const StepProblem& problem, std::size_t* bytes) {
  cuda::detail::StepScratchLayout layout;
  if (const int e = cuda::detail::StepLayout(StepLaunchOf(problem), &layout); e != 0) {
    cudaGetLastError();
    return DeviceError(static_cast<cudaError_t>(e), "sizing the optimizer step's scratch memory");
  }
  *bytes = layout.total;
  return {};
}

Finding EnqueueStep(const StepProblem& problem, void* scratch, void* stream) {
  StepLaunch job = StepLaunchOf(problem);
  job.scratch = scratch;
  job.stream = stream;
  if (const int e = cuda::detail::LaunchStep(job); e != 0) {
    return DeviceError(static_cast<cudaError_t>(e), "launching the optimizer step");
  }
  return {};
}

Finding StepOutcome(const void* scratch, void* stream, bool* valid, RowStats* stats) {
  cuda::detail::StepHeader h{};
  if (Finding f = ReadHeader(scratch, stream, "waiting for the optimizer step", &h)) return f;
  *valid = h.magic == cuda::detail::kStepMagic;
  if (!*valid) return {};
  if (Finding f = cuda::detail::StepFinding(h)) return f;
  stats->indices_seen = h.num_indices;
  stats->distinct_rows = static_cast<std::int64_t>(h.distinct);
  stats->rows_scaled = static_cast<std::int64_t>(h.scaled);
  stats->nonfinite_rows = static_cast<std::int64_t>(h.nonfinite_rows);
  return {};
}

std::size_t DenseMatrixScratchBytes(const DenseMatrixProblem& problem) {
  return cuda::detail::MatrixLayout(DenseLaunchOf(problem)).total;
}

std::size_t SparseMatrixScratchBytes(const SparseMatrixProblem& problem) {
  return cuda::detail::MatrixLayout(SparseLaunchOf(problem)).total;
}

Finding EnqueueDenseMatrix(const DenseMatrixProblem& problem, void* scratch, void* stream) {
  return Launch(DenseLaunchOf(problem), scratch, stream);
}

Finding EnqueueSparseMatrix(const SparseMatrixProblem& problem, void* scratch, void* stream) {
  return Launch(SparseLaunchOf(problem), scratch, stream);
}

Finding MatrixOutcome(const void* scratch, void* stream, bool* valid, MatrixStats* stats, bool* sparse,
                      std::int64_t* nnz_after) {
  cuda::detail::MatrixHeader h{};
  if (Finding f = ReadHeader(scratch, stream, "waiting for the matrix normalization", &h)) return f;
  *valid = h.magic == cuda::detail::kMatrixMagic;
  if (!*valid) return {};
  if (Finding f = cuda::detail::MatrixFinding(h)) return f;
  *sparse = h.format != static_cast<long long>(Format::kDense);
  const auto pruned = static_cast<std::int64_t>(h.pruned);
  stats->vectors = static_cast<std::int64_t>(h.vectors);
  stats->vectors_scaled = static_cast<std::int64_t>(h.scaled);
  stats->zero_vectors = static_cast<std::int64_t>(h.zero);
  stats->nonfinite_vectors = static_cast<std::int64_t>(h.nonfinite);
  stats->pruned = pruned;
  stats->nnz_before = h.nnz;
  stats->nnz_after = *sparse ? h.nnz - pruned : h.nnz;
  *nnz_after = stats->nnz_after;
  return {};
}

Finding AllocateScratch(std::size_t bytes, void* stream, const char* what, void** scratch) {
  const cudaError_t e = cudaMallocAsync(scratch, bytes, static_cast<cudaStream_t>(stream));
  if (e != cudaSuccess) {
    cudaGetLastError();
    return DeviceError(e, what);
  }
  return {};
}

void FreeScratch(void* scratch, void* stream) { cudaFreeAsync(scratch, static_cast<cudaStream_t>(stream)); }

}  // namespace sparsenorm::cuda::dev
