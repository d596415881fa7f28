// Front end of the matrix normalization on device memory
// (include/sparsenorm/cuda.h): the checks every front end makes
// (core/validate.h), the device's own restrictions and where the memory
// lives, then the CUDA backend, whose report (cuda/launch.h) MatrixResult
// reads back and formats like any backend's finding.

#include <climits>
#include <type_traits>
#include <new>

#include "common/element_types.h"
#include "core/matrix_backend.h"
#include "core/cuda_front.h"
#include "core/messages.h"
#include "core/status.h"
#include "core/validate.h"
#include "sparsenorm/cuda.h"

namespace sparsenorm::cuda {
namespace {

using sparsenorm::detail::CheckDevicePointer;
using sparsenorm::detail::InvalidArgument;

// The subset list, when given, must be device memory too.
Status CheckSubset(const MatrixOptions& options) {
  if (Status s = sparsenorm::detail::CheckDeviceOptions(options.norm); !s.ok()) return s;
  if (options.subset.has_value() && options.subset->size > 0) {
    return CheckDevicePointer(options.subset->data, "options.subset.data");
  }
  return Status::Ok();
}

Status PrepareDense(const Table& m, const MatrixOptions& options, DenseMatrixProblem* problem) {
  if (Status s = sparsenorm::detail::PrepareDenseMatrix(m, options, problem); !s.ok()) return s;
  if (Status s = CheckSubset(options); !s.ok()) return s;
  if (problem->extent_bytes > 0) return CheckDevicePointer(m.data, "matrix.data");
  return Status::Ok();
}

Status PrepareSparse(const SparseMatrix* m, const MatrixOptions& options, SparseMatrixProblem* problem) {
  if (Status s = sparsenorm::detail::PrepareSparseMatrix(m, options, problem); !s.ok()) return s;
  if (Status s = CheckSubset(options); !s.ok()) return s;
  if (m->index_type == IndexType::kInt32 && m->nnz > INT32_MAX) {
    return InvalidArgument("matrix.nnz = ", m->nnz,
                           " does not fit the int32 index pointers; use int64 indices.");
  }
  const std::int64_t nnz = m->nnz;
  auto check = [&](const void* p, std::int64_t count, const char* name) {
    return count > 0 ? CheckDevicePointer(p, name) : Status::Ok();
  };
  if (Status s = check(m->values, nnz, "matrix.values"); !s.ok()) return s;
  if (m->format == SparseFormat::kCOO) {
    if (Status s = check(m->row, nnz, "matrix.row"); !s.ok()) return s;
    return check(m->col, nnz, "matrix.col");
  }
  if (Status s = check(m->indptr, problem->segments + 1, "matrix.indptr"); !s.ok()) return s;
  return check(m->indices, nnz, "matrix.indices");
}

template <class Problem>
Status Enqueue(const Problem& problem, void* scratch, std::size_t scratch_bytes, StreamHandle stream) {
  std::size_t needed;
  if constexpr (std::is_same_v<Problem, DenseMatrixProblem>) {
    needed = dev::DenseMatrixScratchBytes(problem);
  } else {
    needed = dev::SparseMatrixScratchBytes(problem);
  }
  if (Status s = sparsenorm::detail::CheckScratch(scratch, scratch_bytes, needed); !s.ok()) return s;
  Finding f;
  if constexpr (std::is_same_v<Problem, DenseMatrixProblem>) {
    f = dev::EnqueueDenseMatrix(problem, scratch, stream);
  } else {
    f = dev::EnqueueSparseMatrix(problem, scratch, stream);
  }
  return sparsenorm::detail::StatusOf(f);
}

template <class Problem>
Status RunSync(const Problem& problem, MatrixStats* stats, SparseMatrix* matrix, StreamHandle stream) {
  std::size_t bytes;
  if constexpr (std::is_same_v<Problem, DenseMatrixProblem>) {
    bytes = dev::DenseMatrixScratchBytes(problem);
  } else {
    bytes = dev::SparseMatrixScratchBytes(problem);
  }
  void* scratch = nullptr;
  if (Finding f = dev::AllocateScratch(bytes, stream, "allocating scratch memory for the matrix normalization",
                                       &scratch)) {
    return sparsenorm::detail::StatusOf(f);
  }
  Status s = Enqueue(problem, scratch, bytes, stream);
  if (s.ok()) s = MatrixResult(scratch, stream, stats, matrix);
  dev::FreeScratch(scratch, stream);
  return s;
}

Status HostOutOfMemory() { return sparsenorm::detail::OutOfMemory("host memory for an error message"); }

}  // namespace

std::size_t MatrixScratchBytes(const Table& matrix, const MatrixOptions& options) noexcept {
  try {
    DenseMatrixProblem problem;
    if (!PrepareDense(matrix, options, &problem).ok()) return 0;
    return dev::DenseMatrixScratchBytes(problem);
  } catch (const std::bad_alloc&) {
    return 0;
  }
}

std::size_t MatrixScratchBytes(const SparseMatrix& matrix, const MatrixOptions& options) noexcept {
  try {
    SparseMatrixProblem problem;
    if (!PrepareSparse(&matrix, options, &problem).ok()) return 0;
    return dev::SparseMatrixScratchBytes(problem);
  } catch (const std::bad_alloc&) {
    return 0;
  }
}

Status NormalizeMatrixAsync(Table matrix, const MatrixOptions& options, void* scratch,
                            std::size_t scratch_bytes, StreamHandle stream) noexcept {
  try {
    DenseMatrixProblem problem;
    if (Status s = PrepareDense(matrix, options, &problem); !s.ok()) return s;
    return Enqueue(problem, scratch, scratch_bytes, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status NormalizeMatrixAsync(const SparseMatrix& matrix, const MatrixOptions& options,
                            void* scratch, std::size_t scratch_bytes, StreamHandle stream) noexcept {
  try {
    SparseMatrixProblem problem;
    if (Status s = PrepareSparse(&matrix, options, &problem); !s.ok()) return s;
    return Enqueue(problem, scratch, scratch_bytes, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status MatrixResult(const void* scratch, StreamHandle stream, MatrixStats* stats,
                    SparseMatrix* matrix) noexcept {
  try {
    if (scratch == nullptr) return InvalidArgument("scratch is null.");
    bool valid = false, sparse = false;
    MatrixStats result;
    std::int64_t nnz_after = 0;
    if (Finding f = dev::MatrixOutcome(scratch, stream, &valid, &result, &sparse, &nnz_after)) {
      return sparsenorm::detail::StatusOf(f);
    }
    if (!valid) {
      return InvalidArgument("scratch does not hold the outcome of a matrix normalization; pass "
                             "the scratch memory of a NormalizeMatrixAsync call that returned Ok.");
    }
    if (stats != nullptr) *stats = result;
    if (matrix != nullptr && sparse) matrix->nnz = nnz_after;
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status NormalizeMatrix(Table matrix, const MatrixOptions& options, MatrixStats* stats,
                       StreamHandle stream) noexcept {
  try {
    DenseMatrixProblem problem;
    if (Status s = PrepareDense(matrix, options, &problem); !s.ok()) return s;
    return RunSync(problem, stats, nullptr, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

Status NormalizeMatrix(SparseMatrix* matrix, const MatrixOptions& options, MatrixStats* stats,
                       StreamHandle stream) noexcept {
  try {
    SparseMatrixProblem problem;
    if (Status s = PrepareSparse(matrix, options, &problem); !s.ok()) return s;
    return RunSync(problem, stats, matrix, stream);
  } catch (const std::bad_alloc&) {
    return HostOutOfMemory();
  }
}

}  // namespace sparsenorm::cuda
