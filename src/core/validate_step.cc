// The optimizer step's checks (core/validate.h): what the host can see of a
// call before any backend reads the caller's data.

#include <cmath>

#include "common/element_types.h"
#include "core/status.h"
#include "core/validate.h"

namespace sparsenorm::detail {
namespace {

const char* KindName(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSGD:
      return "SGD";
    case OptimizerKind::kAdagrad:
      return "Adagrad";
    case OptimizerKind::kRowWiseAdagrad:
      return "row-wise Adagrad";
    case OptimizerKind::kAdam:
      return "Adam";
  }
  return "unknown";
}

bool FiniteAtLeastZero(double v) { return v >= 0.0 && !std::isinf(v); }

Status NotFiniteAtLeastZero(const char* name, double v, const char* what) {
  return InvalidArgument(name, " = ", FormatDouble(v), " is invalid: ", what,
                         " must be a finite number >= 0.");
}

Status CheckBeta(const char* name, double v) {
  if (v >= 0.0 && v < 1.0) return Status::Ok();
  return InvalidArgument(name, " = ", FormatDouble(v), " is invalid: it must be in [0, 1).");
}

Status CheckConstraint(const RowConstraint& c) {
  if (c.kind != ConstraintKind::kNone && c.kind != ConstraintKind::kMaxNorm &&
      c.kind != ConstraintKind::kConstantNorm) {
    return InvalidArgument("options.constraint.kind = ", static_cast<int>(c.kind),
                           " is not a ConstraintKind (0 = none, 1 = max-norm, 2 = constant-norm).");
  }
  if (c.kind == ConstraintKind::kNone) return Status::Ok();
  if (!FiniteAtLeastZero(c.target)) {
    return NotFiniteAtLeastZero("options.constraint.target", c.target, "the target norm");
  }
  if (!(c.p > 0.0)) {
    return InvalidArgument("options.constraint.p = ", FormatDouble(c.p),
                           " is invalid: the norm order must be > 0 (infinity selects max |x|).");
  }
  if (!FiniteAtLeastZero(c.eps)) return NotFiniteAtLeastZero("options.constraint.eps", c.eps, "eps");
  return Status::Ok();
}

// The state tables each kind uses, with the names the messages give them.
struct StateSlot {
  const Table OptimizerState::*table;
  const char* name;
};
constexpr StateSlot kSumSlot{&OptimizerState::sum, "state.sum"};
constexpr StateSlot kAdamSlots[2] = {{&OptimizerState::exp_avg, "state.exp_avg"},
                                     {&OptimizerState::exp_avg_sq, "state.exp_avg_sq"}};

const StateSlot* StateSlots(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kAdagrad:
    case OptimizerKind::kRowWiseAdagrad:
      return &kSumSlot;
    case OptimizerKind::kAdam:
      return kAdamSlots;
    case OptimizerKind::kSGD:
      break;
  }
  return nullptr;
}

DType ArithmeticDType(DType table) {
  return table == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
}

}  // namespace

int StateTableCount(OptimizerKind kind) {
  return kind == OptimizerKind::kAdam                                                   ? 2
         : kind == OptimizerKind::kAdagrad || kind == OptimizerKind::kRowWiseAdagrad ? 1
                                                                                       : 0;
}

std::int64_t StateCols(OptimizerKind kind, std::int64_t table_cols) {
  return kind == OptimizerKind::kRowWiseAdagrad ? 1 : table_cols;
}

Status ValidateStepOptions(const OptimizerOptions& o, DType table_dtype) {
  if (o.kind != OptimizerKind::kSGD && o.kind != OptimizerKind::kAdagrad &&
      o.kind != OptimizerKind::kRowWiseAdagrad && o.kind != OptimizerKind::kAdam) {
    return InvalidArgument("options.kind = ", static_cast<int>(o.kind),
                           " is not an OptimizerKind (0 = SGD, 1 = Adagrad, 2 = row-wise Adagrad, "
                           "3 = Adam).");
  }
  const bool caffe2 = o.caffe2_sign;
  if (caffe2 && o.kind != OptimizerKind::kAdagrad) {
    return InvalidArgument("options.caffe2_sign is set for ", KindName(o.kind),
                           ": it is Caffe2's SparseAdagrad convention and applies to Adagrad only.");
  }
  if (caffe2 ? !std::isfinite(o.lr) : !FiniteAtLeastZero(o.lr)) {
    return InvalidArgument("options.lr = ", FormatDouble(o.lr), " is invalid: the learning rate ",
                           caffe2 ? "must be finite."
                                  : "must be a finite number >= 0 (a negative one is accepted "
                                    "only with caffe2_sign, Caffe2's convention).");
  }
  if (o.weight_decay_mode != WeightDecayMode::kNone && o.weight_decay_mode != WeightDecayMode::kL2 &&
      o.weight_decay_mode != WeightDecayMode::kDecoupled) {
    return InvalidArgument("options.weight_decay_mode = ", static_cast<int>(o.weight_decay_mode),
                           " is not a WeightDecayMode (0 = none, 1 = L2, 2 = decoupled).");
  }
  if (!FiniteAtLeastZero(o.weight_decay)) {
    return NotFiniteAtLeastZero("options.weight_decay", o.weight_decay, "the weight decay");
  }
  if (o.weight_decay != 0.0 && o.weight_decay_mode == WeightDecayMode::kNone) {
    return InvalidArgument("options.weight_decay = ", FormatDouble(o.weight_decay),
                           " would have no effect with weight_decay_mode = none; choose L2 or "
                           "decoupled, or set it to 0.");
  }
  if (o.kind != OptimizerKind::kSGD && !FiniteAtLeastZero(o.eps)) {
    return NotFiniteAtLeastZero("options.eps", o.eps, "eps");
  }
  if (o.kind == OptimizerKind::kAdagrad) {
    if (!FiniteAtLeastZero(o.lr_decay)) {
      return NotFiniteAtLeastZero("options.lr_decay", o.lr_decay, "the learning-rate decay");
    }
  }
  if (o.kind == OptimizerKind::kAdagrad || o.kind == OptimizerKind::kRowWiseAdagrad) {
    if (!FiniteAtLeastZero(o.initial_accumulator_value)) {
      return NotFiniteAtLeastZero("options.initial_accumulator_value",
                                  o.initial_accumulator_value, "the initial accumulator value");
    }
  }
  if (o.kind == OptimizerKind::kAdam) {
    if (Status s = CheckBeta("options.beta1", o.beta1); !s.ok()) return s;
    if (Status s = CheckBeta("options.beta2", o.beta2); !s.ok()) return s;
  }
  if (o.step < 1) {
    return InvalidArgument("options.step = ", o.step,
                           " is invalid: steps are counted from 1 (the first step is 1).");
  }
  if (Status s = CheckConstraint(o.constraint); !s.ok()) return s;
  if (o.rounding != Rounding::kNearestEven && o.rounding != Rounding::kStochastic) {
    return InvalidArgument("options.rounding = ", static_cast<int>(o.rounding),
                           " is not a Rounding (0 = nearest-even, 1 = stochastic).");
  }
  if (o.rounding == Rounding::kStochastic && table_dtype != DType::kFloat16 &&
      table_dtype != DType::kBFloat16) {
    return InvalidArgument("options.rounding is stochastic but the table is ",
                           DTypeName(table_dtype),
                           ": stochastic rounding applies to float16 and bfloat16 tables.");
  }
  if (o.non_finite != NonFinitePolicy::kSkip && o.non_finite != NonFinitePolicy::kError) {
    return InvalidArgument("options.non_finite = ", static_cast<int>(o.non_finite),
                           " is not a NonFinitePolicy (0 = skip, 1 = error).");
  }
  if (o.num_threads < 0) {
    return InvalidArgument("options.num_threads = ", o.num_threads,
                           " is invalid: use 0 for every core or a positive count.");
  }
  if (o.backend != Backend::kAuto && o.backend != Backend::kReference) {
    return InvalidArgument("options.backend = ", static_cast<int>(o.backend),
                           " is not a Backend (0 = auto, 1 = reference).");
  }
  return Status::Ok();
}

StepRule StepRuleOf(const OptimizerOptions& o, std::int64_t cols) {
  StepCoefficients<double> d{};
  d.lr = o.lr;
  d.eps = o.eps;
  d.wd = o.weight_decay;
  d.cols = static_cast<double>(cols);
  const auto t = static_cast<double>(o.step);
  switch (o.kind) {
    case OptimizerKind::kSGD:
      d.step = -o.lr;
      d.decay = 1.0 - o.lr * o.weight_decay;
      break;
    case OptimizerKind::kAdagrad: {
      const double clr = o.lr / (1.0 + (t - 1.0) * o.lr_decay);
      d.step = o.caffe2_sign ? clr : -clr;
      d.decay = 1.0 - clr * o.weight_decay;
      break;
    }
    case OptimizerKind::kRowWiseAdagrad:
      d.decay = 1.0 - o.lr * o.weight_decay;
      break;
    case OptimizerKind::kAdam: {
      // As torch.optim.SparseAdam computes them, in float64.
      const double bias_correction1 = 1.0 - std::pow(o.beta1, t);
      const double bias_correction2 = 1.0 - std::pow(o.beta2, t);
      d.step = -(o.lr * std::sqrt(bias_correction2) / bias_correction1);
      d.one_minus_beta1 = 1.0 - o.beta1;
      d.one_minus_beta2 = 1.0 - o.beta2;
      d.decay = 1.0 - o.lr * o.weight_decay;
      break;
    }
  }
  StepCoefficients<float> f{};
  f.step = static_cast<float>(d.step);
  f.lr = static_cast<float>(d.lr);
  f.eps = static_cast<float>(d.eps);
  f.wd = static_cast<float>(d.wd);
  f.decay = static_cast<float>(d.decay);
  f.one_minus_beta1 = static_cast<float>(d.one_minus_beta1);
  f.one_minus_beta2 = static_cast<float>(d.one_minus_beta2);
  f.cols = static_cast<float>(d.cols);
  return StepRule{static_cast<StepKind>(o.kind), static_cast<DecayKind>(o.weight_decay_mode), f, d};
}

Status PrepareStep(const Table& table, const OptimizerState& state, const Indices* indices,
                   const ConstTable& gradient, const OptimizerOptions& options,
                   StepProblem* problem, StepExtents* extents) {
  CheckedLayout table_layout;
  if (Status s = CheckLayout(table.data, table.dtype, table.rows, table.cols, table.row_stride,
                             "table", &table_layout);
      !s.ok()) {
    return s;
  }
  if (Status s = ValidateStepOptions(options, table.dtype); !s.ok()) return s;

  const char* grad_name = indices != nullptr ? "values" : "gradient";
  CheckedLayout grad_layout;
  if (Status s = CheckLayout(gradient.data, gradient.dtype, gradient.rows, gradient.cols,
                             gradient.row_stride, grad_name, &grad_layout);
      !s.ok()) {
    return s;
  }
  const DType arithmetic = ArithmeticDType(table.dtype);
  if (gradient.dtype != table.dtype && gradient.dtype != arithmetic) {
    return InvalidArgument(grad_name, " is ", DTypeName(gradient.dtype), " but the table is ",
                           DTypeName(table.dtype), ": the gradient must be ",
                           DTypeName(table.dtype),
                           table.dtype == arithmetic ? "" : StrCat(" or ", DTypeName(arithmetic)),
                           ".");
  }
  if (gradient.cols != table.cols) {
    return InvalidArgument(grad_name, " has ", gradient.cols, " columns but the table has ",
                           table.cols, ": one gradient element per table column.");
  }
  if (indices != nullptr) {
    if (Status s = CheckIndexList(indices->data, indices->type, indices->size, "indices");
        !s.ok()) {
      return s;
    }
    if (gradient.rows != indices->size) {
      return InvalidArgument("values has ", gradient.rows, " rows but there are ", indices->size,
                             " indices: a sparse gradient has one row per index.");
    }
  } else if (gradient.rows != table.rows) {
    return InvalidArgument("gradient has ", gradient.rows, " rows but the table has ", table.rows,
                           ": a dense gradient has one row per table row.");
  }

  // The state tables the kind uses: the arithmetic dtype, the table's rows,
  // cols or 1 column.
  const int state_count = StateTableCount(options.kind);
  const StateSlot* slots = StateSlots(options.kind);
  const std::int64_t state_cols = StateCols(options.kind, table.cols);
  CheckedLayout state_layout[2];
  for (int i = 0; i < state_count; ++i) {
    const Table& s = state.*(slots[i].table);
    const char* name = slots[i].name;
    if (Status st = CheckLayout(s.data, s.dtype, s.rows, s.cols, s.row_stride, name,
                                &state_layout[i]);
        !st.ok()) {
      return st;
    }
    if (s.dtype != arithmetic || s.rows != table.rows || s.cols != state_cols) {
      return InvalidArgument(name, " is ", s.rows, " x ", s.cols, " ", DTypeName(s.dtype), " but ",
                             KindName(options.kind), " on a ", table.rows, " x ", table.cols, " ",
                             DTypeName(table.dtype), " table needs ", table.rows, " x ",
                             state_cols, " ", DTypeName(arithmetic), ".");
    }
  }

  // Nothing the step writes may overlap anything it reads or writes.
  struct Region {
    const void* data;
    std::int64_t bytes;
    const char* name;
  };
  const std::int64_t index_bytes =
      indices != nullptr ? indices->size * static_cast<std::int64_t>(IndexSize(indices->type)) : 0;
  Region regions[5] = {{table.data, table_layout.extent_bytes, "table"},
                       {gradient.data, grad_layout.extent_bytes, grad_name},
                       {indices != nullptr ? indices->data : nullptr, index_bytes, "indices"},
                       {nullptr, 0, nullptr},
                       {nullptr, 0, nullptr}};
  for (int i = 0; i < state_count; ++i) {
    const Table& s = state.*(slots[i].table);
    regions[3 + i] = Region{s.data, state_layout[i].extent_bytes, slots[i].name};
  }
  for (int a = 0; a < 5; ++a) {
    // The gradient and the indices are only read: they may overlap each
    // other (b starts after a, and pairs of read-only regions are skipped).
    for (int b = a + 1; b < 5; ++b) {
      const bool both_read_only = (a == 1 || a == 2) && (b == 1 || b == 2);
      if (both_read_only) continue;
      if (Overlaps(regions[a].data, regions[a].bytes, regions[b].data, regions[b].bytes)) {
        return InvalidArgument(regions[a].name, " and ", regions[b].name,
                               " overlap in memory: the step writes ",
                               a == 0 || a >= 3 ? regions[a].name : regions[b].name,
                               " while it reads the other.");
      }
    }
  }

  StepProblem& p = *problem;
  const auto element = static_cast<std::int64_t>(table_layout.element_size);
  p.table = StepArray{static_cast<unsigned char*>(table.data), table_layout.stride * element};
  p.rows = table.rows;
  p.cols = table.cols;
  p.dtype = table.dtype;
  p.grad = static_cast<const unsigned char*>(gradient.data);
  p.grad_stride_bytes = grad_layout.stride * static_cast<std::int64_t>(grad_layout.element_size);
  p.grad_dtype = gradient.dtype;
  // The backends tell a dense gradient by a null index pointer
  // (StepProblem::dense), but an empty list may well have one (an empty
  // std::vector's data(), an empty PyTorch tensor's): give it one that is not.
  static constexpr std::int64_t kNoIndex = 0;
  p.indices = indices == nullptr ? nullptr : indices->data != nullptr ? indices->data : &kNoIndex;
  p.index_type = indices != nullptr ? indices->type : IndexType::kInt64;
  p.num_indices = gradient.rows;
  for (int i = 0; i < 2; ++i) p.state[i] = StepArray{};
  for (int i = 0; i < state_count; ++i) {
    const Table& s = state.*(slots[i].table);
    p.state[i] = StepArray{static_cast<unsigned char*>(s.data),
                           state_layout[i].stride *
                               static_cast<std::int64_t>(state_layout[i].element_size)};
  }
  p.rule = StepRuleOf(options, table.cols);
  p.has_constraint = options.constraint.kind != ConstraintKind::kNone;
  p.constraint = NormRule{options.constraint.kind == ConstraintKind::kMaxNorm,
                          options.constraint.target, options.constraint.eps, options.constraint.p,
                          KindOf(options.constraint.p)};
  p.stochastic = options.rounding == Rounding::kStochastic;
  p.seed = options.seed;
  p.step = options.step;
  p.nonfinite_error = options.non_finite == NonFinitePolicy::kError;
  if (extents != nullptr) {
    extents->table_bytes = table_layout.extent_bytes;
    extents->grad_bytes = grad_layout.extent_bytes;
    extents->index_bytes = index_bytes;
    for (int i = 0; i < state_count; ++i) extents->state_bytes[i] = state_layout[i].extent_bytes;
  }
  return Status::Ok();
}

}  // namespace sparsenorm::detail
