// Split-phase primitives for tables sharded across processes, independent of
// any communication engine: each shard computes the partial norms of its
// part of every touched row, the caller combines the partials of all shards
// (an all-gather, a reduce and broadcast, any transport), and each shard then
// applies the decision the combined norms give to its own part.
// sparsenorm/mpi.h and the Python module `sparsenorm.distributed` are such
// callers; docs/DISTRIBUTED.md describes the layouts and the protocol.
//
// A partial norm is a pair (scale, sum) with ||x||_p = scale * sum^(1/p)
// (p = inf: ||x|| = scale, sum unused). It is combined without overflow or
// underflow for every finite vector, as the single-process norm falls back
// to max |x| scaling (src/common/norms.h). A shard's part holds its own norm
// as the scale and 1 as the sum (0, 0 for a zero or empty part); a part of a
// row holding NaN or infinity has a NaN scale, and so has any combination
// with it.
//
// Combining is deterministic: CombineNormParts adds the parts in the order
// given, so shards that combine the same parts in the same order (rank
// order) hold bit-identical norms and decide every row alike. An all-reduce
// is not enough for that: MPI and NCCL may sum in a different order on each
// rank.
//
// Accuracy: each part's norm is computed as the single-process call computes
// a row's norm (float32 sums for float32, float16 and bfloat16 tables), and
// the parts are combined in float64. The combined norm therefore differs
// from the single-process norm of the gathered row by at most the float32
// summation error of the single-process sum plus that of the parts: about
// cols * 2^-24 relative in the worst case, a few ulps of float32 in
// practice (float64 tables: the same with 2^-53). With one shard the norm,
// and hence every decision and every stored bit, is the single-process one.
// The decision, scale and rounding then follow the contract of rows.h
// exactly: a row whose combined norm is n is treated as a single-process row
// of norm n.
//
// Layouts (what the callers do):
//   table sharded by columns (every shard holds columns [c0, c1) of every
//     row, all pass the same indices): RowNormParts, combine the parts of
//     all shards, ApplyRowNorms.
//   table sharded by rows: each shard normalizes the rows it owns
//     (OwnedRowIndices, then NormalizeRows on its shard); no norm is
//     combined, only the outcome is agreed.
//   dense matrix sharded by rows, normalized along axis 0 (each column
//     W[:, j] / ||W[:, j]||, the founding formula), or sharded by columns
//     along axis 1: MatrixNormParts, combine, ApplyMatrixNorms.
//   sparse matrix sharded the same way, as a CSR block of rows on axis 0 or
//     a CSC block of columns on axis 1: the same calls on a SparseMatrix.
//   the optimizer step (optim.h) on a table sharded by columns: the phases
//     of sharded_step.h, whose parts combine as these do.
#ifndef SPARSENORM_SHARDED_H_
#define SPARSENORM_SHARDED_H_

#include <cstdint>
#include <span>
#include <vector>

#include "sparsenorm/export.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/types.h"

namespace sparsenorm {

struct NormPart {
  double scale = 0.0;  // >= 0 and finite; NaN when the part holds NaN or infinity
  double sum = 0.0;    // >= 0 and finite
};

// The parts combined in the order given; p > 0 (kInfinity: the max of the
// scales). NaN scale when any part's scale is NaN or not a finite value >= 0.
SPARSENORM_API NormPart CombineNormParts(std::span<const NormPart> parts, double p) noexcept;

// ||x||_p of a (combined) part; NaN for a non-finite one.
SPARSENORM_API double NormOfPart(const NormPart& part, double p) noexcept;

// Combines what an all-gather delivers: `gathered` holds `shards` blocks of
// equal length n, block k being shard k's parts; combined[i] is the
// combination of gathered[k * n + i] over k = 0, 1, ... in that order.
// kInvalidArgument when shards < 1 or gathered.size() is not a multiple of it.
// *combined is resized, so a caller that reserved n parts beforehand has
// nothing left to allocate here (an adapter allocates before it agrees).
SPARSENORM_API Status CombineGatheredParts(std::span<const NormPart> gathered, int shards,
                                           double p, std::vector<NormPart>* combined) noexcept;

// ---------------------------------------------------------------------------
// The row operator on a table sharded by columns.

// The distinct rows of `indices`, ascending, into *rows, and the partial
// norm of this slice's part of each into *parts (same length). Checks what
// NormalizeRows checks (options, layout, every index against slice.rows)
// and reads the table only to compute the parts. NaN or infinity in a row's
// part is not an error here: its part is non-finite, and ApplyRowNorms
// applies options.non_finite once the parts are combined, on every shard
// alike. A slice of zero columns has zero parts.
SPARSENORM_API Status RowNormParts(ConstTable slice, Indices indices,
                                   const NormalizeOptions& options,
                                   std::vector<std::int64_t>* rows,
                                   std::vector<NormPart>* parts) noexcept;

// Scales this slice's part of each row of `rows` as the combined norm of that
// row decides (rows.h's rule with options' mode, target, p and eps). `rows`
// (strictly ascending, in [0, slice.rows), as RowNormParts gives them) and
// `combined` have the same length. Under NonFinitePolicy::kError a
// non-finite combined norm fails the call (kNonFinite, naming the row) before
// anything is written; under kSkip the row is left and counted. Any bad
// argument fails the call before anything is written. stats: indices_seen
// and distinct_rows are rows.size().
SPARSENORM_API Status ApplyRowNorms(Table slice, std::span<const std::int64_t> rows,
                                    std::span<const NormPart> combined,
                                    const NormalizeOptions& options,
                                    RowStats* stats = nullptr) noexcept;

// ---------------------------------------------------------------------------
// A table sharded by rows: which positions of a global index list this
// shard owns, and which of its rows those are. Global row g is owned when
// row_offset <= g < row_offset + local_rows (blocks: it is local row
// g - row_offset), or, with cyclic, when g % world == rank (local row
// g / world). Every index is checked against global_rows (kOutOfRange naming
// its position), so every shard rejects the same bad list.
struct RowOwnership {
  std::int64_t global_rows = 0;
  std::int64_t local_rows = 0;
  std::int64_t row_offset = 0;  // blocks
  bool cyclic = false;
  int rank = 0;   // cyclic
  int world = 1;  // cyclic
};

// The local rows this shard owns among `global_indices`, in list order,
// repeats kept (NormalizeRows processes a repeated row once). Checks the
// ownership itself: blocks within [0, global_rows), and, when cyclic,
// 0 <= rank < world and local_rows equal to the count of global rows
// with g % world == rank.
SPARSENORM_API Status OwnedRowIndices(Indices global_indices, const RowOwnership& ownership,
                                      std::vector<std::int64_t>* local_indices) noexcept;

// ---------------------------------------------------------------------------
// A dense matrix whose every vector of options.axis (columns on axis 0, rows
// on axis 1) is split across shards: a block of rows of the matrix on axis
// 0, a block of columns on axis 1. The contract is matrix.h's on the
// gathered matrix, with the norm combined from the parts: a column's part
// is its max |x| and the float64 sum of its scaled terms (so even with one
// shard its norm may differ from the single-process plain float64 sum in
// the last bits), a row's part its norm as the row operator computes it.
// options.subset, when set, names the vectors (checked against their count,
// kOutOfRange naming the position): parts then has one entry per subset
// entry, in its order; otherwise one per vector. Pruning is elementwise and
// needs nothing from other shards: ApplyMatrixNorms prunes this slice.

SPARSENORM_API Status MatrixNormParts(ConstTable slice, const MatrixOptions& options,
                                      std::vector<NormPart>* parts) noexcept;

// Scales this slice's part of every vector as its combined norm decides
// (matrix.h's rule), then prunes. Every argument and, under
// NonFinitePolicy::kError, every combined norm is checked before anything
// is written. stats: vectors, vectors_scaled, zero_vectors and
// nonfinite_vectors are the whole matrix's (the same on every shard); pruned,
// nnz_before and nnz_after this slice's.
SPARSENORM_API Status ApplyMatrixNorms(Table slice, const MatrixOptions& options,
                                       std::span<const NormPart> combined,
                                       MatrixStats* stats = nullptr) noexcept;

// The same on a sparse slice whose vectors are its minor indices: a CSR
// block of rows (any count, possibly none, shape (rows_k, cols)) on axis 0,
// whose columns are split across shards, or a CSC block of columns on axis
// 1, whose rows are. A column's (row's) part is its max |x| and the float64
// sum of its scaled terms, exactly as for a dense block of rows: the
// accuracy contract above is the dense one, and a repeated coordinate
// (non-canonical CSR/CSC, never split across shards) counts as its sum as
// in matrix.h. The parts depend on the input and options.norm.num_threads
// only; options.norm.backend is not consulted (the CPU kernels run).
//
//   for a CSR block B of rows of W, axis 0:
//     parts[i] = (max_r |B[r, j]|, sum_r ScaledTerm(B[r, j], max))  with j = subset[i] (or i)
//   combined = CombineGatheredParts of every shard's parts, in rank order
//   ApplyMatrixNorms: B[r, j] = round(B[r, j] * target / (||W[:, j]|| + eps))
//                     for the stored entries, matrix.h's rule; then pruning
//
// A CSR slice on axis 1 or a CSC slice on axis 0 holds its vectors whole:
// NormalizeMatrix on it is the sharded call, with no exchange, and these
// functions reject it (kUnsupported), as they reject COO slices (convert
// them to CSR or CSC). The structure is checked as NormalizeMatrix checks
// it (index pointers, every stored index; kInvalidArgument, kOutOfRange) by
// both calls, so a bad slice fails in MatrixNormParts, before any exchange.
//
// ApplyMatrixNorms scales the stored values in place; with prune_below > 0
// it then compacts values and indices in place, rewrites indptr and sets
// slice->nnz (the slots past it are left with unspecified contents), as
// NormalizeMatrix does. stats as for the dense slice: pruned, nnz_before
// and nnz_after are this slice's stored entries. Every argument (the
// structure included) and, under kError, every combined norm is checked
// before anything is written.
SPARSENORM_API Status MatrixNormParts(const SparseMatrix& slice, const MatrixOptions& options,
                                      std::vector<NormPart>* parts) noexcept;
SPARSENORM_API Status ApplyMatrixNorms(SparseMatrix* slice, const MatrixOptions& options,
                                       std::span<const NormPart> combined,
                                       MatrixStats* stats = nullptr) noexcept;

// ---------------------------------------------------------------------------
// What shards compare before they combine anything, so that a mismatch is an
// error on every shard rather than a hang or a silent mix: a 64-bit digest of
// an index list's values (the same for int32 and int64 lists of the same
// values), and one of the options that decide (mode, target, p, eps,
// non_finite; not num_threads or backend, which may differ per shard; for
// a matrix also axis, prune_below and the subset's values).
SPARSENORM_API std::uint64_t IndexListDigest(Indices indices) noexcept;
SPARSENORM_API std::uint64_t OptionsDigest(const NormalizeOptions& options) noexcept;
SPARSENORM_API std::uint64_t OptionsDigest(const MatrixOptions& options) noexcept;

}  // namespace sparsenorm

#endif  // SPARSENORM_SHARDED_H_
