// How a validated call runs: which backend, how many threads, which path,
// which scratch structure. Every decision that depends on sizes and tuning
// thresholds (core/backend.h, Tuning) is made here, once per call.
#ifndef SPARSENORM_CORE_PLAN_H_
#define SPARSENORM_CORE_PLAN_H_

#include <cstdint>

#include "core/matrix_backend.h"
#include "core/optim_backend.h"
#include "core/rows_backend.h"
#include "sparsenorm/types.h"

namespace sparsenorm::detail {

// The reference backend runs when the options ask for it or the environment
// says SPARSENORM_BACKEND=reference (read once per process).
bool UseReference(Backend requested);

// The thread count for a call: the request (0 = cpu::AvailableThreads()),
// reduced so that each thread gets at least `bytes_per_thread` of the
// `work_bytes` to touch.
int ThreadsFor(int requested, std::int64_t work_bytes, std::int64_t bytes_per_thread);

RowsPlan PlanRows(const RowsProblem& problem, int requested_threads, const Tuning& tuning);
MatrixPlan PlanDenseMatrix(const DenseMatrixProblem& problem, int requested_threads,
                           const Tuning& tuning);
MatrixPlan PlanSparseMatrix(const SparseMatrixProblem& problem, int requested_threads,
                            const Tuning& tuning);

// The work of an optimizer step, to size its thread count: the bytes it
// moves, each index's rows counted as at least Tuning::min_step_row_bytes.
std::int64_t StepWorkBytes(const StepProblem& problem, const Tuning& tuning);
StepPlan PlanStep(const StepProblem& problem, int requested_threads, const Tuning& tuning);

}  // namespace sparsenorm::detail

#endif  // SPARSENORM_CORE_PLAN_H_
