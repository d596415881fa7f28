// The front ends with their tuning passed in: the public functions call
// these with Tuning{}; tests pass other thresholds to reach paths that only
// large inputs or many cores would take (core/backend.h, Tuning).
#ifndef SPARSENORM_CORE_ENTRY_H_
#define SPARSENORM_CORE_ENTRY_H_

#include "core/backend.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/optim.h"
#include "sparsenorm/rows.h"

namespace sparsenorm::detail {

Status NormalizeRows(const ConstTable& input, const Table& output, const Indices& indices,
                     const NormalizeOptions& options, bool out_of_place, const Tuning& tuning,
                     RowStats* stats);

Status NormalizeRowsMany(std::span<const RowsBatchEntry> entries, std::span<RowStats> stats,
                         const Tuning& tuning);

Status NormalizeMatrix(const Table& matrix, const MatrixOptions& options, const Tuning& tuning,
                       MatrixStats* stats);

Status NormalizeMatrix(SparseMatrix* matrix, const MatrixOptions& options, const Tuning& tuning,
                       MatrixStats* stats);

// `indices` null: a dense gradient.
Status OptimizerStep(const Table& table, const OptimizerState& state, const Indices* indices,
                     const ConstTable& gradient, const OptimizerOptions& options,
                     const Tuning& tuning, RowStats* stats);

Status OptimizerStepMany(std::span<const StepBatchEntry> entries, std::span<RowStats> stats,
                         const Tuning& tuning);

}  // namespace sparsenorm::detail

#endif  // SPARSENORM_CORE_ENTRY_H_
