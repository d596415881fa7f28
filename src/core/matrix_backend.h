// The matrix normalization's part of the backend contract
// (core/backend.h): the problems, the plan of a CPU run, and each backend's
// entry points.
#ifndef SPARSENORM_CORE_MATRIX_BACKEND_H_
#define SPARSENORM_CORE_MATRIX_BACKEND_H_

#include <cstddef>
#include <cstdint>

#include "core/backend.h"
#include "sparsenorm/matrix.h"

namespace sparsenorm {

struct MatrixCommon {
  NormRule rule{};
  bool nonfinite_error = false;
  int axis = 0;
  std::int64_t vectors = 0;  // columns on axis 0, rows on axis 1
  double prune_below = 0.0;
  bool has_subset = false;
  Indices subset;            // validated as a list; its values are the backend's to check
  MatrixPath path = MatrixPath::kContiguous;
};

struct DenseMatrixProblem {
  unsigned char* data = nullptr;  // row r at data + r * stride_bytes
  std::int64_t stride_bytes = 0;
  std::int64_t extent_bytes = 0;  // from the first to one past the last element
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  DType dtype = DType::kFloat32;
  MatrixCommon common;
};

struct SparseMatrixProblem {
  SparseMatrix matrix;  // shape, arrays and byte sizes validated
  // CSR/CSC: the segments (rows, columns) and the other dimension.
  std::int64_t segments = 0;
  std::int64_t minor_dim = 0;
  MatrixCommon common;
};

struct MatrixPlan {
  int threads = 1;
  Tuning tuning;
  // CSR/CSC scattered axis: the column sums validate the minor indices as
  // they go instead of a separate pass (only with private arrays).
  bool fold_validation = false;
  ColumnSumMode column_sums = ColumnSumMode::kPrivateArrays;
};

namespace cpu {
Finding NormalizeDenseMatrix(const DenseMatrixProblem& problem, const MatrixPlan& plan,
                             MatrixStats* stats);
// With pruning, the arrays are compacted in place and stats->nnz_after is the
// new entry count (the front end writes it to the caller's SparseMatrix).
Finding NormalizeSparseMatrix(const SparseMatrixProblem& problem, const MatrixPlan& plan,
                              MatrixStats* stats);
}  // namespace cpu

namespace reference {
Finding NormalizeDenseMatrix(const DenseMatrixProblem& problem, MatrixStats* stats);
Finding NormalizeSparseMatrix(const SparseMatrixProblem& problem, MatrixStats* stats);
}  // namespace reference

namespace cuda::dev {
std::size_t DenseMatrixScratchBytes(const DenseMatrixProblem& problem);
std::size_t SparseMatrixScratchBytes(const SparseMatrixProblem& problem);
Finding EnqueueDenseMatrix(const DenseMatrixProblem& problem, void* scratch, void* stream);
Finding EnqueueSparseMatrix(const SparseMatrixProblem& problem, void* scratch, void* stream);
// As RowsOutcome; *nnz_after is the entry count after pruning (sparse).
Finding MatrixOutcome(const void* scratch, void* stream, bool* valid, MatrixStats* stats,
                      bool* sparse, std::int64_t* nnz_after);
}  // namespace cuda::dev

}  // namespace sparsenorm

#endif  // SPARSENORM_CORE_MATRIX_BACKEND_H_
