// The optimizer step's part of the backend contract (core/backend.h): the
// problem, the plan of a CPU run, and each backend's entry points. The
// contract the caller sees is include/sparsenorm/optim.h.
#ifndef SPARSENORM_CORE_OPTIM_BACKEND_H_
#define SPARSENORM_CORE_OPTIM_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/decision.h"
#include "common/optim_rules.h"
#include "core/backend.h"
#include "sparsenorm/types.h"

namespace sparsenorm {

// A strided 2-D array of the problem: row r at data + r * stride_bytes.
struct StepArray {
  unsigned char* data = nullptr;
  std::int64_t stride_bytes = 0;
};

struct StepProblem {
  // The table, rows x cols of dtype.
  StepArray table;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  DType dtype = DType::kFloat32;

  // The gradient: num_indices rows of cols elements of grad_dtype (the
  // table's dtype or its arithmetic type). Sparse: row i belongs to table
  // row indices[i]. Dense (indices == nullptr): row r to table row r, and
  // num_indices == rows.
  const unsigned char* grad = nullptr;
  std::int64_t grad_stride_bytes = 0;
  DType grad_dtype = DType::kFloat32;
  const void* indices = nullptr;
  IndexType index_type = IndexType::kInt64;
  std::int64_t num_indices = 0;

  // The state tables, of the arithmetic type (float32, or float64 for a
  // float64 table): state[0] is Adagrad's and row-wise Adagrad's `sum` or
  // Adam's `exp_avg`, state[1] Adam's `exp_avg_sq`. Row-wise Adagrad's
  // state has one element per row.
  StepArray state[2];

  StepRule rule{};
  bool has_constraint = false;
  NormRule constraint{};
  bool stochastic = false;  // 16-bit tables only
  std::uint64_t seed = 0;
  std::int64_t step = 1;
  bool nonfinite_error = false;

  bool dense() const { return indices == nullptr; }
};

// The finding of a gradient element that is NaN or infinite under the error
// policy: gradient row `position` (which updates table row `row`).
inline Finding NonFiniteGradientFinding(std::int64_t position, std::int64_t row) {
  return MakeFinding(FindingKind::kNonFiniteGradient, position, row);
}

struct StepPlan {
  int threads = 1;
  // The CPU backend may group the index list with the rows in the order the
  // list first names them (a hash table), rather than ascending (a sort).
  // The single-process step on short lists (core/plan.cc); never the
  // sharded phases, which promise ascending rows.
  bool groups_first_seen = false;
};

// The split phases of the step on a table sharded by columns
// (include/sparsenorm/sharded_step.h). Each phase groups, checks and sums
// the gradient as the whole step does, and runs the same kernels, so that
// one shard stores the single-process bits.
enum class StepPhase : int {
  kSquares = 1,  // row-wise Adagrad: each row's sum of squares of g' (its C value)
  kParts = 2,    // each row's norm of w' (constraint's p), or not finite
  kApply = 3,    // write state' and round(w' * s), s decided by the combined norm
};

struct StepShard {
  StepPhase phase = StepPhase::kParts;
  std::int64_t global_cols = 0;  // the row-wise mean's divisor (in problem.rule)
  std::int64_t col_offset = 0;   // the slice's first global column: stochastic rounding's key
  // Per distinct row (ascending, as the problem's groups): kSquares writes
  // this slice's sums; kParts and kApply read the combined ones (row-wise
  // Adagrad; null otherwise).
  double* squares = nullptr;
  // kParts writes this slice's norms of w' ({0, true} without a constraint;
  // not finite when g, w' or state' is not).
  VectorNorm* norms = nullptr;
  // kApply reads the combined norms: a row whose norm is not finite is left
  // and counted.
  const VectorNorm* combined = nullptr;
  // kParts and kApply: the length of the combined inputs above (-1: none).
  // When it is not the count of distinct rows, the phase only groups the
  // rows (the caller reports the mismatch).
  std::int64_t inputs = -1;
};

// What a phase gives back: the distinct rows, and kSquares' sums or
// kParts' norms, one per row.
struct StepPhaseOutput {
  std::vector<std::int64_t> rows;
  std::vector<double> squares;
  std::vector<VectorNorm> norms;
};

namespace cpu {
Finding OptimizerStep(const StepProblem& problem, const StepPlan& plan, RowStats* stats);
// Every problem of the list; checks them all before writing any, then
// updates the rows of all of them in one dispatch to the threads. `stats`
// has `count` entries.
BatchFinding OptimizerStepMany(const StepProblem* problems, const StepPlan* plans,
                               std::int64_t count, int threads, RowStats* stats);
// One phase of the column-sharded step. Writes the table and state only
// in kApply.
Finding OptimizerStepPhase(const StepProblem& problem, const StepPlan& plan, StepShard shard,
                           StepPhaseOutput* out, RowStats* stats);
}  // namespace cpu

namespace reference {
Finding OptimizerStep(const StepProblem& problem, RowStats* stats);
BatchFinding OptimizerStepMany(const StepProblem* problems, std::int64_t count, RowStats* stats);
}  // namespace reference

namespace cuda::dev {
// The scratch bytes a step needs on the current device (CUB's temporary
// storage depends on its architecture); kDeviceError when the runtime
// cannot tell.
Finding StepScratchBytes(const StepProblem& problem, std::size_t* bytes);
Finding EnqueueStep(const StepProblem& problem, void* scratch, void* stream);
// Waits for the stream; the outcome the device recorded in `scratch`.
// kNone with *valid = false when scratch holds no step's outcome.
Finding StepOutcome(const void* scratch, void* stream, bool* valid, RowStats* stats);
}  // namespace cuda::dev

}  // namespace sparsenorm

#endif  // SPARSENORM_CORE_OPTIM_BACKEND_H_
