// The optimizer step (optim.h) on a table sharded by columns across
// processes, as split phases independent of any communication engine, in
// the manner of sharded.h's row operator: each shard computes a few numbers
// per touched row, the caller combines them across shards in rank order
// (an all-gather, any transport), and each shard then writes its columns.
// sparsenorm/mpi.h (ColumnShardedOptimizerStep) and the Python module
// `sparsenorm.distributed` are such callers; docs/DISTRIBUTED.md describes
// the protocol.
//
// Layout: shard k holds columns [c0_k, c0_k + slice.cols) of every row of
// the global table (its `slice`, possibly of zero columns), the same columns
// of the elementwise state tables (Adagrad's `sum`, Adam's moments: rows x
// slice.cols), and, for row-wise Adagrad, the whole per-row `sum` (rows x
// 1): a replica that every shard keeps and updates identically. Every shard
// passes the same indices, the same options and its columns of the gradient
// rows (`values`: indices.size x slice.cols). ColumnSlice tells each shard
// where its columns lie.
//
// The protocol, per call (every shard, the same rows in the same order):
//   1. row-wise Adagrad only: ColumnShardedStepSquares, each distinct row's
//      partial sum of the squares of g' over this slice's columns; combine
//      every shard's in rank order (CombineGatheredSquares).
//   2. ColumnShardedStepParts: each distinct row's partial norm of w' (the
//      constraint's p) as a NormPart, NaN when this slice's g, w' or state'
//      holds NaN or infinity; combine in rank order (CombineGatheredParts
//      with options.constraint.p). Needed without a constraint too: it is how
//      the shards agree which rows to leave, so that the elementwise state
//      and the row-wise replica move on every shard or on none.
//   3. ApplyColumnShardedStep: recomputes w' and state' (nothing is kept
//      between phases), leaves and counts each row whose combined part is
//      NaN, writes state' and round(w' * s), s decided by the combined norm.
// Each phase checks everything OptimizerStep checks, on the slice, and
// reads the gradient, table and state; only phase 3 writes. Under
// NonFinitePolicy::kError every phase fails (kNonFinite, nothing written)
// on a shard whose gradient holds NaN or infinity: a caller agrees on the
// first phase's status across shards before it combines anything, so that
// no shard writes when any fails.
//
// Semantics: OptimizerStep on the gathered table (optim.h), with these
// differences only:
//   (a) row-wise Adagrad's sum of squares of g' is the shards' partial sums
//       (each summed as the single-process kernel sums a row, in the
//       arithmetic type), added in float64 in rank order, then rounded to
//       the arithmetic type; the mean divides by global_cols;
//   (b) the constraint's norm of w' is combined from the shards' parts, as
//       sharded.h combines the row operator's (its accuracy statement
//       applies).
// Everything else is per element and the same as the single-process step:
// SGD, Adagrad and Adam without a constraint store the single-process bits
// for any split; with a constraint, and row-wise Adagrad always, the result
// is within the bounds of (a) and (b) and bit-for-bit reproducible for a
// fixed shard count and column split. With one shard (col_offset 0,
// global_cols = slice.cols) every stored bit, table and state, is
// OptimizerStep's. Stochastic rounding draws the bits of the global column
// (col_offset + local column), so a split changes no random bit. A row is
// left (and counted in nonfinite_rows) on every shard when g, w' or state'
// holds NaN or infinity in any shard's columns; the decision to scale uses
// the combined norm, bit-identical on every shard, so every shard decides
// every row alike.
//
// Cost: phase 1 moves 8 bytes per distinct row per shard, phase 2 16 bytes;
// the gradient rows are summed once per phase (three times for row-wise
// Adagrad, twice otherwise), the price of keeping nothing between phases.
//
// Only the CPU kernels run the phases: Backend::kReference is kUnsupported
// here. A dense gradient is not offered (pass every row as the index list).
#ifndef SPARSENORM_SHARDED_STEP_H_
#define SPARSENORM_SHARDED_STEP_H_

#include <cstdint>
#include <span>
#include <vector>

#include "sparsenorm/export.h"
#include "sparsenorm/optim.h"
#include "sparsenorm/sharded.h"
#include "sparsenorm/types.h"

namespace sparsenorm {

// Where a slice's columns lie in the global table: [col_offset, col_offset +
// slice.cols) within [0, global_cols). Checked against the slice in every
// phase (kInvalidArgument); that the shards' slices tile the global columns
// is the caller's to check (mpi.h does, in its agreement).
struct ColumnSlice {
  std::int64_t col_offset = 0;
  std::int64_t global_cols = 0;
};

// Phase 1 (options.kind == kRowWiseAdagrad; kInvalidArgument otherwise):
// the distinct rows of `indices`, ascending, into *rows, and each one's sum
// over this slice's columns of g'[j]^2 (g' = g + wd * w under kL2), as the
// arithmetic type's value, into *squares. NaN or infinity in g makes the sum
// non-finite. Nothing is written to the table or the state.
SPARSENORM_API Status ColumnShardedStepSquares(Table slice, const OptimizerState& state,
                                               Indices indices, ConstTable values,
                                               const OptimizerOptions& options,
                                               ColumnSlice columns,
                                               std::vector<std::int64_t>* rows,
                                               std::vector<double>* squares) noexcept;

// Combines what an all-gather of the phase-1 sums delivers: `shards` blocks
// of equal length n; combined[i] is the float64 sum of gathered[k * n + i]
// over k = 0, 1, ... in that order. kInvalidArgument when shards < 1 or the
// length is not a multiple of it. *combined is resized only.
SPARSENORM_API Status CombineGatheredSquares(std::span<const double> gathered, int shards,
                                             std::vector<double>* combined) noexcept;

// Phase 2: the distinct rows into *rows and, for each, this slice's part of
// the norm of w' (the constraint's p; (0, 0) without a constraint) into
// *parts, NaN scale when this slice's g, w' or state' holds NaN or infinity.
// `squares` is row-wise Adagrad's combined phase-1 sums, one per distinct
// row; empty for the other kinds. Nothing is written.
SPARSENORM_API Status ColumnShardedStepParts(Table slice, const OptimizerState& state,
                                             Indices indices, ConstTable values,
                                             const OptimizerOptions& options,
                                             ColumnSlice columns,
                                             std::span<const double> squares,
                                             std::vector<std::int64_t>* rows,
                                             std::vector<NormPart>* parts) noexcept;

// Phase 3: writes this slice's columns of the updated rows and their state
// (row-wise Adagrad: the whole row's replicated sum). `squares` as in phase
// 2; `combined` the phase-2 parts of every shard combined, one per distinct
// row (a NaN scale or a valid finite part, else kInvalidArgument). Every
// argument is checked before anything is written. stats: the whole call's,
// the same on every shard (indices_seen, distinct_rows, rows_scaled,
// nonfinite_rows).
SPARSENORM_API Status ApplyColumnShardedStep(Table slice, const OptimizerState& state,
                                             Indices indices, ConstTable values,
                                             const OptimizerOptions& options,
                                             ColumnSlice columns,
                                             std::span<const double> squares,
                                             std::span<const NormPart> combined,
                                             RowStats* stats = nullptr) noexcept;

// The options that decide a step's result, for the shards to compare (as
// sharded.h's OptionsDigest): kind, lr, eps, weight_decay and its mode,
// lr_decay, beta1, beta2, caffe2_sign, step, the constraint, rounding,
// seed, non_finite; not initial_accumulator_value (SparseOptimizer's),
// num_threads or backend.
SPARSENORM_API std::uint64_t OptionsDigest(const OptimizerOptions& options) noexcept;

}  // namespace sparsenorm

#endif  // SPARSENORM_SHARDED_STEP_H_
