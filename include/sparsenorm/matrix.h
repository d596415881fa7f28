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
// Numerics: dtypes, index types, the scale (target / (n + eps) in float64,
// rounded to float32 for narrow dtypes when that is a normal float32) and the
// single rounding of each element are those of the row operator (rows.h).
// The norms:
//   - vectors whose values are contiguous in storage (dense rows, CSR rows
//     on axis 1, CSC columns on axis 0, and likewise for a COO matrix whose
//     entries are sorted by row or by column) are reduced like the row
//     operator's rows: float32 sums for float32/float16/bfloat16, float64
//     for float64;
//   - vectors whose values are scattered (dense columns, CSR columns, CSC
//     rows, other COO matrices) are reduced in float64 whatever the dtype;
//   - repeated coordinates are summed in float64, in storage order, before
//     their contribution to the norm is taken;
//   - sums that would overflow or underflow are recomputed after dividing
//     by the vector's max |x|, so every finite vector gets its norm; p other
//     than 1, 2 and infinity always takes that path.
// Results are deterministic for a given input and thread count; vectors that
// are contiguous, and dense columns with at least 2048 x threads columns,
// do not depend on the thread count at all.
//
// Repeated coordinates: a COO matrix may store a coordinate more than once,
// and so may a non-canonical CSR/CSC matrix (repeated indices within a row or
// column); both mean the sum of the stored values, as in SciPy (toarray,
// sum_duplicates). The norms are those of that sum, and every stored value of
// the coordinate is multiplied by the same factor, so the sum is scaled too.
// (sklearn.preprocessing.normalize treats the stored values of a
// non-canonical CSR matrix as separate entries instead.) Indices within a
// CSR row or CSC column may be in any order.
//
// Pruning applies to every stored value after scaling, including the values
// of vectors outside the subset or left alone; NaN is never pruned. A sparse
// matrix is compacted in place, keeping the storage order of the survivors;
// the slots past the new nnz are left with unspecified contents. `pruned`
// counts the entries removed (sparse) or the nonzero values set to +0
// (dense).
//
// Extra memory, besides a few bytes per thread:
//   - the scattered axis of a sparse matrix: 8 bytes per vector, plus a
//     private copy of that table for each thread while it is at most 4 MiB,
//     or else 1 MiB of buffers per thread (so 100 million columns take
//     800 MB, not 800 MB per thread); 8 more bytes per vector for p outside
//     {1, 2, inf} and for float64 vectors whose plain sums overflow or
//     underflow; for float32, float16 and bfloat16 values and at most 2^24
//     vectors, 4 more bytes per vector while the entries are scaled (the
//     scales as float32: the gathers then read half the bytes);
//   - dense axis 0: 12 bytes per column (16 for the cases above), and below
//     2048 columns per thread a private copy per thread;
//   - sparse: one bit per row (CSR) or column (CSC) to mark those holding
//     a repeated index (and unsorted ones of more than 256 entries, which
//     are not checked), and 24 bytes per entry of the longest marked one per
//     thread;
//   - COO: 8 bytes per row (or column) of index pointers when the entries
//     are sorted by row (or column), otherwise also an 8-byte permutation per
//     stored entry.
//
// Errors (nothing is modified when a call fails, and the statistics are not
// written): those of rows.h for the options and the subset list, plus
//   kInvalidArgument  an axis other than 0 or 1, a negative or NaN
//                     prune_below, a null matrix, negative sizes, null
//                     arrays with entries to hold, sizes whose byte counts
//                     overflow, index pointers that do not start at 0,
//                     decrease, or do not end at nnz
//   kOutOfRange       a stored row or column index outside the matrix (the
//                     message names the array, the position, the value and,
//                     for CSR/CSC, the row or column holding it)
//   kUnsupported      a format, dtype or index type outside the enumerations
//   kNonFinite        with NonFinitePolicy::kError, a vector considered that
//                     holds NaN or infinity (the lowest such one is named)
//   kOutOfMemory      scratch memory could not be allocated
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
