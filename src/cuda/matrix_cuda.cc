// Front end of the matrix normalization on the device: host-side checks of
// options, shapes and pointers; the launch; the device header turned into a
// Status and MatrixStats.

#include <cuda_runtime_api.h>

#include <cmath>
#include <new>

#include "core/validate.h"
#include "cuda/front.h"
#include "cuda/launch.h"
#include "sparsenorm/cuda.h"

namespace sparsenorm::cuda {
namespace {

using detail::Format;
using detail::MatrixLaunch;
using sparsenorm::detail::InvalidArgument;
using sparsenorm::detail::StrCat;

Status CheckMatrixOptions(const MatrixOptions& options, std::int64_t rows, std::int64_t cols) {
  if (Status s = detail::ValidateDeviceOptions(options.norm); !s.ok()) return s;
  if (options.axis != 0 && options.axis != 1) {
    return InvalidArgument("options.axis = ", options.axis,
                           " is invalid: use 0 (normalize each column) or 1 (each row).");
  }
  if (!(options.prune_below >= 0.0)) {
    return InvalidArgument("options.prune_below = ",
                           sparsenorm::detail::FormatDouble(options.prune_below),
                           " is invalid: the pruning threshold must be >= 0 (0 disables it).");
  }
  (void)rows;
  (void)cols;
  if (options.subset.has_value()) {
    const Indices& sub = *options.subset;
    if (Status s = sparsenorm::detail::CheckIndexList(sub.data, sub.type, sub.size, "options.subset");
        !s.ok()) {
      return s;
    }
    if (sub.size > 0) {
      if (Status s = detail::CheckDevicePointer(sub.data, "options.subset.data"); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

void FillCommon(const MatrixOptions& options, MatrixLaunch* job) {
  job->axis = options.axis;
  if (options.subset.has_value()) {
    job->subset = options.subset->data;
    job->subset_type = options.subset->type == IndexType::kInt32 ? 0 : 1;
    job->subset_size = options.subset->size;
  }
  job->params = detail::DeviceParams(options.norm);
  job->nonfinite_error = options.norm.non_finite == NonFinitePolicy::kError;
  job->prune_below = options.prune_below;
}

Status PrepareDense(const Table& m, const MatrixOptions& options, MatrixLaunch* job) {
  if (Status s = CheckMatrixOptions(options, m.rows, m.cols); !s.ok()) return s;
  sparsenorm::detail::CheckedLayout layout;
  if (Status s = sparsenorm::detail::CheckLayout(m.data, m.dtype, m.rows, m.cols, m.row_stride,
                                                 "matrix", &layout);
      !s.ok()) {
    return s;
  }
  if (layout.extent_bytes > 0) {
    if (Status s = detail::CheckDevicePointer(m.data, "matrix.data"); !s.ok()) return s;
  }
  job->format = Format::kDense;
  job->rows = m.rows;
  job->cols = m.cols;
  job->row_stride = layout.stride;
  job->values = m.data;
  job->dtype = static_cast<int>(m.dtype);
  const auto element = static_cast<std::int64_t>(layout.element_size);
  job->vectorized = detail::Aligned16(m.data, layout.stride * element, m.cols * element);
  FillCommon(options, job);
  return Status::Ok();
}

Status CheckArray(const void* p, std::int64_t count, std::size_t element, const char* name) {
  std::int64_t bytes = 0;
  if (__builtin_mul_overflow(count, static_cast<std::int64_t>(element), &bytes)) {
    return InvalidArgument(name, " of ", count, " elements of ", element,
                           " bytes spans more bytes than a 64-bit offset can address.");
  }
  if (count == 0) return Status::Ok();
  if (p == nullptr) return InvalidArgument(name, " is null but must hold ", count, " elements.");
  return detail::CheckDevicePointer(p, name);
}

Status PrepareSparse(const SparseMatrix& m, const MatrixOptions& options, MatrixLaunch* job) {
  if (Status s = CheckMatrixOptions(options, m.rows, m.cols); !s.ok()) return s;
  if (m.format != SparseFormat::kCSR && m.format != SparseFormat::kCSC &&
      m.format != SparseFormat::kCOO) {
    return InvalidArgument("matrix.format = ", static_cast<int>(m.format),
                           " is not a SparseFormat (0 = CSR, 1 = CSC, 2 = COO).");
  }
  const std::size_t value_size = DTypeSize(m.dtype);
  if (value_size == 0) {
    return Status(StatusCode::kUnsupported,
                  StrCat("matrix.dtype = ", static_cast<int>(m.dtype),
                         " is not a supported dtype (float32, float64, float16, bfloat16)."));
  }
  if (m.index_type != IndexType::kInt32 && m.index_type != IndexType::kInt64) {
    return Status(StatusCode::kUnsupported,
                  StrCat("matrix.index_type = ", static_cast<int>(m.index_type),
                         " is neither int32 (0) nor int64 (1)."));
  }
  if (m.rows < 0) return InvalidArgument("matrix.rows = ", m.rows, " is negative.");
  if (m.cols < 0) return InvalidArgument("matrix.cols = ", m.cols, " is negative.");
  if (m.nnz < 0) return InvalidArgument("matrix.nnz = ", m.nnz, " is negative.");
  const std::size_t index_size = m.index_type == IndexType::kInt32 ? 4 : 8;
  if (m.index_type == IndexType::kInt32 && m.nnz > INT32_MAX) {
    return InvalidArgument("matrix.nnz = ", m.nnz,
                           " does not fit the int32 index pointers; use int64 indices.");
  }
  if (Status s = CheckArray(m.values, m.nnz, value_size, "matrix.values"); !s.ok()) return s;
  if (m.format == SparseFormat::kCOO) {
    if (Status s = CheckArray(m.row, m.nnz, index_size, "matrix.row"); !s.ok()) return s;
    if (Status s = CheckArray(m.col, m.nnz, index_size, "matrix.col"); !s.ok()) return s;
  } else {
    const std::int64_t segments = m.format == SparseFormat::kCSR ? m.rows : m.cols;
    if (segments == INT64_MAX) return InvalidArgument("matrix dimensions are too large.");
    if (Status s = CheckArray(m.indptr, segments + 1, index_size, "matrix.indptr"); !s.ok()) return s;
    if (Status s = CheckArray(m.indices, m.nnz, index_size, "matrix.indices"); !s.ok()) return s;
  }
  job->format = m.format == SparseFormat::kCSR   ? Format::kCSR
                : m.format == SparseFormat::kCSC ? Format::kCSC
                                                 : Format::kCOO;
  job->rows = m.rows;
  job->cols = m.cols;
  job->nnz = m.nnz;
  job->values = m.values;
  job->dtype = static_cast<int>(m.dtype);
  job->index_type = m.index_type == IndexType::kInt32 ? 0 : 1;
  job->indptr = m.indptr;
  job->indices = m.indices;
  job->row = m.row;
  job->col = m.col;
  FillCommon(options, job);
  return Status::Ok();
}

Status Enqueue(MatrixLaunch job, void* scratch, std::size_t scratch_bytes, StreamHandle stream) {
  const detail::MatrixScratchLayout layout = detail::MatrixLayout(job);
  if (Status s = detail::CheckScratch(scratch, scratch_bytes, layout.total); !s.ok()) return s;
  job.scratch = scratch;
  job.stream = stream;
  if (const int e = detail::LaunchMatrix(job); e != 0) {
    return detail::DeviceError(e, "launching the matrix normalization");
  }
  return Status::Ok();
}

Status RunSync(const MatrixLaunch& job, MatrixStats* stats, SparseMatrix* matrix, StreamHandle stream) {
  const std::size_t bytes = detail::MatrixLayout(job).total;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  void* scratch = nullptr;
  if (const cudaError_t e = cudaMallocAsync(&scratch, bytes, st); e != cudaSuccess) {
    cudaGetLastError();
    return detail::DeviceError(e, "allocating scratch memory for the matrix normalization");
  }
  Status s = Enqueue(job, scratch, bytes, stream);
  if (s.ok()) s = MatrixResult(scratch, stream, stats, matrix);
  cudaFreeAsync(scratch, st);
  return s;
}

const char* VectorName(long long axis) { return axis == 0 ? "column" : "row"; }

Status ErrorFromHeader(const detail::MatrixHeader& h) {
  using sparsenorm::detail::IndexOutOfRange;
  const bool coo = h.format == static_cast<long long>(Format::kCOO);
  for (int e = 0; e < detail::kErrCount; ++e) {
    if (h.error_key[e] == 0) continue;
    if (e == detail::kErrUnsorted && coo && h.coo_colmajor_key == 0) continue;
    const auto pos = static_cast<std::int64_t>(detail::kKeyBase - h.error_key[e]);
    const long long v = h.error_value[e];
    const long long x = h.error_extra[e];
    const std::int64_t vectors = h.axis == 0 ? h.cols : h.rows;
    switch (e) {
      case detail::kErrSubsetIndex:
        return IndexOutOfRange("options.subset", pos, v, vectors, VectorName(h.axis));
      case detail::kErrIndptrStart:
        return InvalidArgument("indptr[0] = ", v, ", but index pointers must start at 0.");
      case detail::kErrIndptrOrder:
        return InvalidArgument("indptr[", pos, "] = ", v, " is greater than indptr[", pos + 1,
                               "] = ", x, ": index pointers must not decrease.");
      case detail::kErrIndptrEnd:
        return InvalidArgument("indptr[", pos, "] = ", v,
                               ", but the last index pointer must equal nnz = ", h.nnz, ".");
      case detail::kErrMinorIndex:
        if (coo) return IndexOutOfRange("row", pos, v, h.rows, "row");
        if (h.format == static_cast<long long>(Format::kCSR)) {
          return IndexOutOfRange("indices", pos, v, h.cols, "column");
        }
        return IndexOutOfRange("indices", pos, v, h.rows, "row");
      case detail::kErrCooCol:
        return IndexOutOfRange("col", pos, v, h.cols, "column");
      case detail::kErrUnsorted:
        if (coo) {
          return Status(StatusCode::kUnsupported,
                        StrCat("entry ", pos, " (row ", v, ", col ", x, ") does not come after entry ",
                               pos - 1, " (row ", h.error_aux[0], ", col ", h.error_aux[1],
                               ") in row-major nor in column-major order: the CUDA backend needs "
                               "COO entries strictly increasing by (row, col) or by (col, row), "
                               "without duplicates; call sum_duplicates() (SciPy, CuPy) first. "
                               "Nothing was modified."));
        }
        return Status(StatusCode::kUnsupported,
                      StrCat("indices[", pos, "] = ", v, " does not exceed indices[", pos - 1,
                             "] = ", x, " within one ",
                             h.format == static_cast<long long>(Format::kCSR) ? "row" : "column",
                             ": the CUDA backend needs the indices of each ",
                             h.format == static_cast<long long>(Format::kCSR) ? "CSR row" : "CSC column",
                             " strictly increasing (sorted, no duplicates); call "
                             "sum_duplicates() (SciPy, CuPy) first. Nothing was modified."));
      case detail::kErrNonFinite:
        return Status(StatusCode::kNonFinite,
                      StrCat(VectorName(h.axis), " ", v,
                             " holds NaN or infinity and options.norm.non_finite is kError; "
                             "nothing was modified."));
      default:
        break;
    }
  }
  return Status::Ok();
}

}  // namespace

std::size_t MatrixScratchBytes(const Table& matrix, const MatrixOptions& options) noexcept {
  try {
    MatrixLaunch job;
    if (!PrepareDense(matrix, options, &job).ok()) return 0;
    return detail::MatrixLayout(job).total;
  } catch (const std::bad_alloc&) {
    return 0;
  }
}

std::size_t MatrixScratchBytes(const SparseMatrix& matrix, const MatrixOptions& options) noexcept {
  try {
    MatrixLaunch job;
    if (!PrepareSparse(matrix, options, &job).ok()) return 0;
    return detail::MatrixLayout(job).total;
  } catch (const std::bad_alloc&) {
    return 0;
  }
}

Status NormalizeMatrixAsync(Table matrix, const MatrixOptions& options, void* scratch,
                            std::size_t scratch_bytes, StreamHandle stream) noexcept {
  try {
    MatrixLaunch job;
    if (Status s = PrepareDense(matrix, options, &job); !s.ok()) return s;
    return Enqueue(job, scratch, scratch_bytes, stream);
  } catch (const std::bad_alloc&) {
    return sparsenorm::detail::OutOfMemory("host memory for an error message");
  }
}

Status NormalizeMatrixAsync(const SparseMatrix& matrix, const MatrixOptions& options,
                            void* scratch, std::size_t scratch_bytes, StreamHandle stream) noexcept {
  try {
    MatrixLaunch job;
    if (Status s = PrepareSparse(matrix, options, &job); !s.ok()) return s;
    return Enqueue(job, scratch, scratch_bytes, stream);
  } catch (const std::bad_alloc&) {
    return sparsenorm::detail::OutOfMemory("host memory for an error message");
  }
}

Status MatrixResult(const void* scratch, StreamHandle stream, MatrixStats* stats,
                    SparseMatrix* matrix) noexcept {
  try {
    if (scratch == nullptr) return InvalidArgument("scratch is null.");
    detail::MatrixHeader h{};
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    cudaError_t e = cudaMemcpyAsync(&h, scratch, sizeof h, cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return detail::DeviceError(e, "waiting for the matrix normalization");
    }
    if (h.magic != detail::kMatrixMagic) {
      return InvalidArgument("scratch does not hold the outcome of a matrix normalization; pass "
                             "the scratch memory of a NormalizeMatrixAsync call that returned Ok.");
    }
    if (Status s = ErrorFromHeader(h); !s.ok()) return s;
    const bool dense = h.format == static_cast<long long>(Format::kDense);
    const auto pruned = static_cast<std::int64_t>(h.pruned);
    if (stats != nullptr) {
      stats->vectors = static_cast<std::int64_t>(h.vectors);
      stats->vectors_scaled = static_cast<std::int64_t>(h.scaled);
      stats->zero_vectors = static_cast<std::int64_t>(h.zero);
      stats->nonfinite_vectors = static_cast<std::int64_t>(h.nonfinite);
      stats->pruned = pruned;
      stats->nnz_before = h.nnz;
      stats->nnz_after = dense ? h.nnz : h.nnz - pruned;
    }
    if (matrix != nullptr && !dense) matrix->nnz = h.nnz - pruned;
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return sparsenorm::detail::OutOfMemory("host memory for an error message");
  }
}

Status NormalizeMatrix(Table matrix, const MatrixOptions& options, MatrixStats* stats,
                       StreamHandle stream) noexcept {
  try {
    MatrixLaunch job;
    if (Status s = PrepareDense(matrix, options, &job); !s.ok()) return s;
    return RunSync(job, stats, nullptr, stream);
  } catch (const std::bad_alloc&) {
    return sparsenorm::detail::OutOfMemory("host memory for an error message");
  }
}

Status NormalizeMatrix(SparseMatrix* matrix, const MatrixOptions& options, MatrixStats* stats,
                       StreamHandle stream) noexcept {
  try {
    if (matrix == nullptr) return InvalidArgument("matrix is null.");
    MatrixLaunch job;
    if (Status s = PrepareSparse(*matrix, options, &job); !s.ok()) return s;
    return RunSync(job, stats, matrix, stream);
  } catch (const std::bad_alloc&) {
    return sparsenorm::detail::OutOfMemory("host memory for an error message");
  }
}

}  // namespace sparsenorm::cuda
