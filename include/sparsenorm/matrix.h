// Normalization of whole matrices: every column (axis 0) or every row
// (axis 1) of a dense, CSR, CSC or COO matrix W of shape (rows, cols),
// in place. A sparse matrix keeps its structure: only stored values change
// (and, with pruning, stored entries may be removed; none is ever added).
//
// Contract (axis 0; axis 1 is the same with rows and columns exchanged):
//
//   for each column j (or each distinct j of options.subset):
//     v = W[:, j]                               // COO/CSR/CSC repeats of one
//                                               // coordinate count as their sum
//     n = ||v||_p
//     if v holds NaN or +-inf:  leave v; count it (or fail, NonFinitePolicy::kError)
//     elif n == 0:              leave v          // never NaN
//     elif mode == kMaxNorm and n <= target:   leave v
//     else:                     W[i, j] = round(W[i, j] * target / (n + eps)) for stored i
//   if prune_below > 0:         every value with |w| < prune_below becomes 0
//                               (dense) or is removed (sparse, compacted)
//
// With the defaults (constant norm, target 1, p 2, eps 0) this is exactly
// W_norm[i, j] = W[i, j] / sqrt(sum_i W[i, j]^2), the formula of
// sklearn.preprocessing.normalize(W, axis=0).
//
// Numerics, dtypes and index types are those of the row operator (rows.h).
// Results are deterministic for a given input and thread count.
//
// Errors (nothing is modified when a call fails): those of rows.h for the
// options and the subset list, plus kInvalidArgument for an axis other than
// 0 or 1, negative sizes, index pointers that do not start at 0, decrease or
// do not end at nnz, mismatched array lengths, sizes whose byte counts
// overflow, a negative or NaN prune_below; kOutOfRange for a stored row or
// column index outside the matrix (the message names the array, the
// position and the value).
#ifndef SPARSENORM_MATRIX_H_
#define SPARSENORM_MATRIX_H_

#include <cstdint>
#include <optional>

#include "sparsenorm/export.h"
#include "sparsenorm/types.h"

namespace sparsenorm {

enum class SparseFormat : std::uint8_t { kCSR = 0, kCSC = 1, kCOO = 2 };

// A sparse matrix in SciPy's layout. Every index array (indptr, indices,
// row, col) has the element type `index_type`.
//   CSR: indptr has rows + 1 entries; indices[k] is the column of values[k];
//        the entries of row i are k in [indptr[i], indptr[i + 1]).
//   CSC: indptr has cols + 1 entries; indices[k] is the row of values[k].
//   COO: row[k], col[k] are the coordinates of values[k]; indptr and
//        indices are unused.
// Column indices within a CSR row (row indices within a CSC column) need
// not be sorted.
struct SparseMatrix {
  SparseFormat format = SparseFormat::kCSR;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t nnz = 0;  // stored entries; updated by pruning
  void* values = nullptr;
  DType dtype = DType::kFloat32;
  IndexType index_type = IndexType::kInt32;
  void* indptr = nullptr;
  void* indices = nullptr;
  void* row = nullptr;
  void* col = nullptr;
};

struct MatrixOptions {
  // Unlike the row operator, the default scales every vector to unit norm
  // with no eps: W / ||W||, as the founding formula and scikit-learn do.
  NormalizeOptions norm{.mode = NormMode::kConstantNorm, .target = 1.0, .p = 2.0, .eps = 0.0};
  int axis = 0;  // 0: each column W[:, j]; 1: each row W[i, :]
  // Only these columns (axis 0) or rows (axis 1), validated and deduplicated
  // like the row operator's index list. std::nullopt: all of them.
  std::optional<Indices> subset;
  double prune_below = 0.0;  // tau; 0 disables pruning
};

struct MatrixStats {
  std::int64_t vectors = 0;            // columns or rows considered
  std::int64_t vectors_scaled = 0;
  std::int64_t zero_vectors = 0;       // norm 0, left as they were
  std::int64_t nonfinite_vectors = 0;  // holding NaN/inf, left as they were
  std::int64_t pruned = 0;             // values zeroed (dense) or entries removed (sparse)
  std::int64_t nnz_before = 0;         // stored entries (dense: rows * cols)
  std::int64_t nnz_after = 0;
};

// Dense row-major matrix (row_stride as in Table), in place.
SPARSENORM_API Status NormalizeMatrix(Table matrix, const MatrixOptions& options = {},
                                      MatrixStats* stats = nullptr) noexcept;

// Sparse matrix, values in place. With pruning the index arrays are
// compacted in place too, matrix->nnz is set to the new count and, for
// CSR/CSC, indptr is rewritten.
SPARSENORM_API Status NormalizeMatrix(SparseMatrix* matrix, const MatrixOptions& options = {},
                                      MatrixStats* stats = nullptr) noexcept;

}  // namespace sparsenorm

#endif  // SPARSENORM_MATRIX_H_
