// Front end of the matrix normalization on host memory: validate
// (core/validate.h), plan (core/plan.h), run on the CPU or the reference
// backend, and turn what the backend found into a Status.
//
// A backend writes nothing before it has checked the structure, the subset
// and, under NonFinitePolicy::kError, every vector it normalizes: a rejected
// call leaves the matrix and its statistics as they were.

#include <new>

#include "core/matrix_backend.h"
#include "core/entry.h"
#include "core/messages.h"
#include "core/plan.h"
#include "core/status.h"
#include "core/validate.h"
#include "sparsenorm/matrix.h"

namespace sparsenorm {
namespace detail {

Status NormalizeMatrix(const Table& matrix, const MatrixOptions& options, const Tuning& tuning,
                       MatrixStats* stats_out) {
  DenseMatrixProblem problem;
  if (Status s = PrepareDenseMatrix(matrix, options, &problem); !s.ok()) return s;
  MatrixStats stats;
  const Finding finding =
      UseReference(options.norm.backend)
          ? reference::NormalizeDenseMatrix(problem, &stats)
          : cpu::NormalizeDenseMatrix(problem, PlanDenseMatrix(problem, options.norm.num_threads, tuning),
                                      &stats);
  if (finding) return StatusOf(finding);
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

Status NormalizeMatrix(SparseMatrix* matrix, const MatrixOptions& options, const Tuning& tuning,
                       MatrixStats* stats_out) {
  SparseMatrixProblem problem;
  if (Status s = PrepareSparseMatrix(matrix, options, &problem); !s.ok()) return s;
  MatrixStats stats;
  const Finding finding =
      UseReference(options.norm.backend)
          ? reference::NormalizeSparseMatrix(problem, &stats)
          : cpu::NormalizeSparseMatrix(problem, PlanSparseMatrix(problem, options.norm.num_threads, tuning),
                                       &stats);
  if (finding) return StatusOf(finding);
  matrix->nnz = stats.nnz_after;
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

}  // namespace detail

Status NormalizeMatrix(Table matrix, const MatrixOptions& options, MatrixStats* stats) noexcept {
  try {
    return detail::NormalizeMatrix(matrix, options, Tuning{}, stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the matrix normalization");
  }
}

Status NormalizeMatrix(SparseMatrix* matrix, const MatrixOptions& options, MatrixStats* stats) noexcept {
  try {
    return detail::NormalizeMatrix(matrix, options, Tuning{}, stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the matrix normalization");
  }
}

}  // namespace sparsenorm
