// The checks every call goes through before any backend sees it, whatever
// the backend: options, shapes, strides, null pointers, byte sizes, and
// overlap — what the host can see without reading the caller's data. Each
// returns a Status whose message names the offending value and where it was
// found, and fills the problem a backend runs (core/*_backend.h). None of them
// reads or writes the caller's arrays.
#ifndef SPARSENORM_CORE_VALIDATE_H_
#define SPARSENORM_CORE_VALIDATE_H_

#include <cstddef>
#include <cstdint>

#include "core/matrix_backend.h"
#include "core/optim_backend.h"
#include "core/rows_backend.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/optim.h"
#include "sparsenorm/types.h"

namespace sparsenorm::detail {

// mode, target, p, eps, non_finite, num_threads and backend.
Status ValidateOptions(const NormalizeOptions& options);

// The decision rule of validated options.
NormRule RuleOf(const NormalizeOptions& options);

// A checked description of a strided 2-D array.
struct CheckedLayout {
  std::int64_t stride = 0;        // elements between row starts
  std::size_t element_size = 0;   // bytes
  std::int64_t extent_bytes = 0;  // bytes from the first to one past the last element
};

// Checks dtype, sizes, stride, null pointer and 64-bit byte-size overflow.
// `name` is how the message refers to the array, e.g. "table".
Status CheckLayout(const void* data, DType dtype, std::int64_t rows, std::int64_t cols,
                   std::int64_t row_stride, const char* name, CheckedLayout* out);

// Checks the index type, the size and the null pointer (not the values).
Status CheckIndexList(const void* data, IndexType type, std::int64_t size, const char* name);

// True when [a, a + a_bytes) and [b, b + b_bytes) share a byte.
bool Overlaps(const void* a, std::int64_t a_bytes, const void* b, std::int64_t b_bytes);

// The row operator: options; the layouts of `out` (called "table", or
// "output" when out_of_place) and `in`, of the same shape and dtype, not
// partially overlapping; the index list's type, size and pointer.
struct RowsExtents {
  std::int64_t in_bytes = 0;
  std::int64_t out_bytes = 0;
  std::int64_t index_bytes = 0;
};
Status PrepareRows(const ConstTable& in, const Table& out, const Indices& indices,
                   const NormalizeOptions& options, bool out_of_place, RowsProblem* problem,
                   RowsExtents* extents);

// The matrix normalization: options (norm options, axis, prune_below, the
// subset list's shape), then the matrix's.
Status PrepareDenseMatrix(const Table& matrix, const MatrixOptions& options,
                          DenseMatrixProblem* problem);
Status PrepareSparseMatrix(const SparseMatrix* matrix, const MatrixOptions& options,
                           SparseMatrixProblem* problem);

// The optimizer step (core/validate_step.cc): the options, for a table of
// `table_dtype` with `cols` columns (every hyperparameter the kind uses,
// the constraint, the rounding, the policies).
Status ValidateStepOptions(const OptimizerOptions& options, DType table_dtype);

// The step's coefficients (common/optim_rules.h) of validated options.
StepRule StepRuleOf(const OptimizerOptions& options, std::int64_t cols);

// The state tables the kind uses: their count, and rows x cols of each.
int StateTableCount(OptimizerKind kind);
std::int64_t StateCols(OptimizerKind kind, std::int64_t table_cols);

// Options, then the table, the gradient (`indices` null for a dense one),
// the index list and the state tables: layouts, shapes, dtypes, overlap.
struct StepExtents {
  std::int64_t table_bytes = 0;
  std::int64_t grad_bytes = 0;
  std::int64_t index_bytes = 0;
  std::int64_t state_bytes[2] = {0, 0};
};
Status PrepareStep(const Table& table, const OptimizerState& state, const Indices* indices,
                   const ConstTable& gradient, const OptimizerOptions& options,
                   StepProblem* problem, StepExtents* extents);

// "column" on axis 0, "row" on axis 1.
const char* VectorName(int axis);

}  // namespace sparsenorm::detail

#endif  // SPARSENORM_CORE_VALIDATE_H_
