// Front end of the optimizer step on host memory: validate
// (core/validate_step.cc), plan, run on the CPU or the reference backend,
// turn what the backend found into a Status. Also the options' factories
// and SparseOptimizer, which owns its state.

#include <algorithm>
#include <new>

#include "core/entry.h"
#include "core/messages.h"
#include "core/optim_backend.h"
#include "core/plan.h"
#include "core/status.h"
#include "core/validate.h"
#include "sparsenorm/optim.h"

namespace sparsenorm {

static_assert(kRepeatGroup == kRepeatGroupSize, "one repeat group size for the contract and the kernels");
static_assert(static_cast<int>(OptimizerKind::kAdam) == static_cast<int>(StepKind::kAdam) &&
                  static_cast<int>(OptimizerKind::kRowWiseAdagrad) == static_cast<int>(StepKind::kRowWiseAdagrad) &&
                  static_cast<int>(OptimizerKind::kAdagrad) == static_cast<int>(StepKind::kAdagrad) &&
                  static_cast<int>(WeightDecayMode::kDecoupled) == static_cast<int>(DecayKind::kDecoupled) &&
                  static_cast<int>(WeightDecayMode::kL2) == static_cast<int>(DecayKind::kL2),
              "the device-side mirrors of the public enumerations");

namespace detail {

Status OptimizerStep(const Table& table, const OptimizerState& state, const Indices* indices,
                     const ConstTable& gradient, const OptimizerOptions& options,
                     const Tuning& tuning, RowStats* stats_out) {
  StepProblem problem;
  if (Status s = PrepareStep(table, state, indices, gradient, options, &problem, nullptr);
      !s.ok()) {
    return s;
  }
  RowStats stats;
  const Finding finding =
      UseReference(options.backend)
          ? reference::OptimizerStep(problem, &stats)
          : cpu::OptimizerStep(problem, PlanStep(problem, options.num_threads, tuning), &stats);
  if (finding) return StatusOf(finding);
  stats.indices_seen = problem.num_indices;
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

namespace {

Status StepOutOfMemory() { return OutOfMemory("scratch memory for the optimizer step"); }

}  // namespace
}  // namespace detail

Status OptimizerStep(Table table, const OptimizerState& state, Indices indices, ConstTable values,
                     const OptimizerOptions& options, RowStats* stats) noexcept {
  try {
    return detail::OptimizerStep(table, state, &indices, values, options, Tuning{}, stats);
  } catch (const std::bad_alloc&) {
    return detail::StepOutOfMemory();
  }
}

Status OptimizerStepDense(Table table, const OptimizerState& state, ConstTable gradient,
                          const OptimizerOptions& options, RowStats* stats) noexcept {
  try {
    return detail::OptimizerStep(table, state, nullptr, gradient, options, Tuning{}, stats);
  } catch (const std::bad_alloc&) {
    return detail::StepOutOfMemory();
  }
}

// ---------------------------------------------------------------------------
// Factories.

OptimizerOptions SgdOptions(double lr, double weight_decay) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kSGD;
  o.lr = lr;
  o.weight_decay = weight_decay;
  return o;
}

OptimizerOptions AdagradOptions(double lr, double lr_decay, double weight_decay, double eps) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kAdagrad;
  o.lr = lr;
  o.lr_decay = lr_decay;
  o.weight_decay = weight_decay;
  o.eps = eps;
  return o;
}

OptimizerOptions RowWiseAdagradOptions(double lr, double eps, double weight_decay,
                                       WeightDecayMode weight_decay_mode) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kRowWiseAdagrad;
  o.lr = lr;
  o.eps = eps;
  o.weight_decay = weight_decay;
  o.weight_decay_mode = weight_decay_mode;
  return o;
}

OptimizerOptions AdamOptions(double lr, double beta1, double beta2, double eps) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kAdam;
  o.lr = lr;
  o.beta1 = beta1;
  o.beta2 = beta2;
  o.eps = eps;
  return o;
}

OptimizerOptions Caffe2SparseAdagradOptions(double lr, double epsilon, double weight_decay) {
  OptimizerOptions o = AdagradOptions(lr, 0.0, weight_decay, epsilon);
  o.caffe2_sign = true;
  return o;
}

// ---------------------------------------------------------------------------
// SparseOptimizer.

Status SparseOptimizer::Create(Table table, const OptimizerOptions& options,
                               std::unique_ptr<SparseOptimizer>* out) noexcept {
  try {
    if (Status s = detail::CheckLayout(table.data, table.dtype, table.rows, table.cols,
                                       table.row_stride, "table", nullptr);
        !s.ok()) {
      return s;
    }
    if (Status s = detail::ValidateStepOptions(options, table.dtype); !s.ok()) return s;
    std::unique_ptr<SparseOptimizer> o(new SparseOptimizer(table, options));
    const int count = detail::StateTableCount(options.kind);
    const std::int64_t cols = detail::StateCols(options.kind, table.cols);
    const bool wide = table.dtype == DType::kFloat64;
    const DType dtype = wide ? DType::kFloat64 : DType::kFloat32;
    const std::int64_t elements = table.rows * cols;
    const std::int64_t bytes = elements * (wide ? 8 : 4);
    // Zero bytes are zero values; operator new aligns to 16 bytes.
    o->storage_.assign(static_cast<std::size_t>(bytes * count), 0);
    const double initial = options.kind == OptimizerKind::kAdagrad ||
                                   options.kind == OptimizerKind::kRowWiseAdagrad
                               ? options.initial_accumulator_value
                               : 0.0;
    Table* slots[2] = {options.kind == OptimizerKind::kAdam ? &o->state_.exp_avg : &o->state_.sum,
                       &o->state_.exp_avg_sq};
    for (int i = 0; i < count; ++i) {
      unsigned char* base = o->storage_.data() + i * bytes;
      *slots[i] = Table{base, dtype, table.rows, cols, 0};
      if (initial == 0.0) continue;
      if (wide) {
        std::fill_n(reinterpret_cast<double*>(base), elements, initial);
      } else {
        std::fill_n(reinterpret_cast<float*>(base), elements, static_cast<float>(initial));
      }
    }
    *out = std::move(o);
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("the optimizer's state tables");
  }
}

Status SparseOptimizer::Step(Indices indices, ConstTable values, RowStats* stats) noexcept {
  options_.step = steps_ + 1;
  Status s = OptimizerStep(table_, state_, indices, values, options_, stats);
  if (s.ok()) ++steps_;
  return s;
}

Status SparseOptimizer::StepDense(ConstTable gradient, RowStats* stats) noexcept {
  options_.step = steps_ + 1;
  Status s = OptimizerStepDense(table_, state_, gradient, options_, stats);
  if (s.ok()) ++steps_;
  return s;
}

}  // namespace sparsenorm
