// The optimizer step's part of the backend contract (core/backend.h): the
// problem, the plan of a CPU run, and each backend's entry points. The
// contract the caller sees is include/sparsenorm/optim.h.
#ifndef SPARSENORM_CORE_OPTIM_BACKEND_H_
#define SPARSENORM_CORE_OPTIM_BACKEND_H_

#include <cstddef>
#include <cstdint>

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
};

namespace cpu {
Finding OptimizerStep(const StepProblem& problem, const StepPlan& plan, RowStats* stats);
// Every problem of the list; checks them all before writing any, then
// updates the rows of all of them in one dispatch to the threads. `stats`
// has `count` entries.
BatchFinding OptimizerStepMany(const StepProblem* problems, std::int64_t count, int threads,
                               RowStats* stats);
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
