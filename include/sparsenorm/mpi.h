// The row operator on a table, and the matrix normalization on a dense or
// sparse matrix, sharded across the ranks of an MPI communicator: the split-phase primitives of sparsenorm/sharded.h with MPI
// collectives between them. A library of its own (CMake target
// sparsenorm::mpi, built where find_package(MPI) finds MPI), so that
// libsparsenorm does not depend on MPI.
//
// Every rank of `comm` must make the same call (collectively, like an MPI
// collective) with the same options and the same global index list; what
// differs per rank is its shard. Each call:
//   1. checks its own arguments and computes what it can locally, then
//      agrees with the other ranks on shapes, options and the index list
//      (count and 64-bit digest) and on the outcome of those local checks,
//      in one MPI_Allgather of a few integers per rank;
//   2. (column-sharded tables, matrices) exchanges the partial norms of the
//      touched rows (the vectors), 16 bytes per row per rank: one
//      MPI_Allgather below 4 ranks, from 4 ranks on an MPI_Alltoallv and an
//      MPI_Allgatherv of chunks (about 2 x 16 bytes per row per rank). Each
//      row is combined in rank order, so every rank holds bit-identical
//      norms and decides every row alike;
//   3. (row-sharded only) agrees on the outcome of the checks only the
//      owner of a row can make (NaN or infinity under
//      NonFinitePolicy::kError) in one MPI_Allreduce of an integer;
//   4. writes its own shard.
// When any rank's arguments are bad, when the ranks disagree, or when a row
// holds NaN or infinity under kError, every rank returns the same Status
// (the message starts with "rank r of n: " naming the first rank that
// found the problem, or names the ranks that disagree) and no rank writes
// anything. docs/DISTRIBUTED.md describes the protocol and its cost.
#ifndef SPARSENORM_MPI_H_
#define SPARSENORM_MPI_H_

#include <mpi.h>

#include <cstdint>

#include "sparsenorm/export.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/optim.h"
#include "sparsenorm/types.h"

namespace sparsenorm::mpi {

// A table sharded by columns: every rank holds some columns (possibly none)
// of every row of the global table (`slice`, with the same row count on
// every rank), and every rank passes the same indices. Results equal the
// single-process call on the gathered table within sparsenorm/sharded.h's
// bound, and are bit-for-bit reproducible for a fixed rank count and column
// split. stats (the same on every rank): the whole call's.
SPARSENORM_API Status NormalizeColumnShardedRows(MPI_Comm comm, Table slice, Indices indices,
                                                 const NormalizeOptions& options = {},
                                                 RowStats* stats = nullptr) noexcept;

// How a table is sharded by rows. Blocks: the rank holds the global rows
// [row_offset, row_offset + shard.rows); the blocks of all ranks must tile
// the global table, in any rank order. Cyclic: the rank holds the global
// rows g with g % size == rank, global row g being local row g / size. In
// both the global row count is the sum of the ranks' shard.rows, agreed
// between the ranks, not assumed.
struct RowSharding {
  std::int64_t row_offset = 0;
  bool cyclic = false;
};

// A table sharded by rows: every rank passes the same global index list and
// normalizes the rows it owns; no data moves. The result equals the
// single-process call on the gathered table bit for bit. stats: this rank's
// rows (indices_seen counts the positions of the list it owns).
SPARSENORM_API Status NormalizeRowShardedRows(MPI_Comm comm, Table shard, Indices indices,
                                              RowSharding sharding,
                                              const NormalizeOptions& options = {},
                                              RowStats* stats = nullptr) noexcept;

// A dense matrix sharded so that every rank holds part of every vector of
// options.axis: a block of rows (any count, possibly none) on axis 0, whose
// columns are normalized (the founding formula W[:, j] / ||W[:, j]||), or a
// block of columns on axis 1, whose rows are. One exchange of 16 bytes per
// vector (per subset entry) per rank, combined in rank order as above.
// Results equal NormalizeMatrix on the gathered matrix within
// sparsenorm/sharded.h's bound. stats: vectors, vectors_scaled,
// zero_vectors and nonfinite_vectors are the whole matrix's; pruned,
// nnz_before and nnz_after this rank's.
SPARSENORM_API Status NormalizeShardedMatrix(MPI_Comm comm, Table slice,
                                             const MatrixOptions& options = {},
                                             MatrixStats* stats = nullptr) noexcept;

// The same on a sparse matrix: every rank holds a CSR block of rows (any
// count, possibly none or no stored entry) on axis 0, or a CSC block of
// columns on axis 1 (sparsenorm/sharded.h says why the other layouts are
// rejected). Values in place; with pruning this rank's arrays are compacted
// and slice->nnz set, as NormalizeMatrix does. The ranks agree on the dtype
// and the vector count (slice->cols on axis 0, slice->rows on axis 1), not
// on the index type, which may differ per rank. Results equal
// NormalizeMatrix on the gathered matrix within sparsenorm/sharded.h's bound.
SPARSENORM_API Status NormalizeShardedMatrix(MPI_Comm comm, SparseMatrix* slice,
                                             const MatrixOptions& options = {},
                                             MatrixStats* stats = nullptr) noexcept;

// ---------------------------------------------------------------------------
// The optimizer step (optim.h) on a table sharded by columns: the split
// phases of sparsenorm/sharded_step.h with the protocol above. Rank k holds
// the k-th block of columns of every row, the blocks tiling the global
// columns in rank order (a rank may hold none): its `slice`, its columns of
// the elementwise state (Adagrad's sum, Adam's moments) and of the gradient
// rows (`values`), and for row-wise Adagrad the whole per-row sum (rows x 1,
// a replica every rank updates identically). The global column count and
// each rank's first column are the gathered column counts' sum and
// prefix, agreed, not assumed. Every rank passes the same indices and
// options (every option that decides the result is compared: kind,
// hyperparameters, step, constraint, rounding, seed, non_finite).
//
// Protocol: step 1 above (the local checks include, under
// NonFinitePolicy::kError, NaN or infinity in this rank's gradient); for
// row-wise Adagrad an exchange of 8 bytes per distinct row per rank (the
// partial sums of squares); then the exchange of 16 bytes per distinct row
// per rank (the partial norms of w', NaN where a rank's g, w' or state'
// is not finite); then each rank writes its columns. Results: sharded_step.h's
// (bit-identical to OptimizerStep on the gathered table for one rank, and
// for SGD, Adagrad and Adam without a constraint on any split; within its
// bound otherwise), bit-for-bit reproducible for a fixed rank count and
// split. stats (the same on every rank): the whole call's. After the
// exchanges only running out of memory can fail a rank, which then writes
// nothing while the others write.
SPARSENORM_API Status ColumnShardedOptimizerStep(MPI_Comm comm, Table slice,
                                                 const OptimizerState& state, Indices indices,
                                                 ConstTable values,
                                                 const OptimizerOptions& options,
                                                 RowStats* stats = nullptr) noexcept;

}  // namespace sparsenorm::mpi

#endif  // SPARSENORM_MPI_H_
