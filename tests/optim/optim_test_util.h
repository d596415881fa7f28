// Helpers of the optimizer-step tests: a table with its state tables and a
// gradient, made at random, run through the public functions on copies.
#ifndef SPARSENORM_TESTS_OPTIM_OPTIM_TEST_UTIL_H_
#define SPARSENORM_TESTS_OPTIM_OPTIM_TEST_UTIL_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/entry.h"
#include "sparsenorm/optim.h"
#include "test_util.h"

namespace sparsenorm::testing {

inline const char* OptimizerName(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::kSGD:
      return "sgd";
    case OptimizerKind::kAdagrad:
      return "adagrad";
    case OptimizerKind::kRowWiseAdagrad:
      return "rowwise";
    case OptimizerKind::kAdam:
      return "adam";
  }
  return "?";
}

inline constexpr OptimizerKind kAllOptimizers[] = {OptimizerKind::kSGD, OptimizerKind::kAdagrad,
                                                   OptimizerKind::kRowWiseAdagrad,
                                                   OptimizerKind::kAdam};

// The options the step tests use for `kind`, with weight decay in `mode`
// (0.01 unless kNone) and a random step number.
inline OptimizerOptions OptionsFor(OptimizerKind kind, WeightDecayMode mode, std::mt19937_64& rng) {
  OptimizerOptions o;
  switch (kind) {
    case OptimizerKind::kSGD:
      o = SgdOptions(0.1);
      break;
    case OptimizerKind::kAdagrad:
      o = AdagradOptions(0.05, 0.01);
      break;
    case OptimizerKind::kRowWiseAdagrad:
      o = RowWiseAdagradOptions(0.05);
      break;
    case OptimizerKind::kAdam:
      o = AdamOptions(0.01);
      break;
  }
  o.weight_decay_mode = mode;
  o.weight_decay = mode == WeightDecayMode::kNone ? 0.0 : 0.01;
  o.step = std::uniform_int_distribution<std::int64_t>(1, 20)(rng);
  return o;
}

inline DType ArithmeticOf(DType t) { return t == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32; }

// A table, the state its optimizer uses (zero-padded strides where asked),
// and a sparse or dense gradient.
struct StepCase {
  TestTable table;
  TestTable state[2];
  TestTable grad;
  std::vector<std::int64_t> indices;  // empty with dense = true
  bool dense = false;
  OptimizerOptions options;

  OptimizerState StateView() {
    OptimizerState s;
    Table* slots[2] = {options.kind == OptimizerKind::kAdam ? &s.exp_avg : &s.sum, &s.exp_avg_sq};
    const int count = options.kind == OptimizerKind::kAdam ? 2 : options.kind == OptimizerKind::kSGD ? 0 : 1;
    for (int i = 0; i < count; ++i) *slots[i] = state[i].view();
    return s;
  }

  // Runs the step (through the front end with `tuning`, or the public
  // function when `tuning` is null) with the list converted to `itype`.
  Status Run(IndexType itype, RowStats* stats, const Tuning* tuning = nullptr,
             Backend backend = Backend::kAuto) {
    OptimizerOptions o = options;
    o.backend = backend;
    const OptimizerState s = StateView();
    std::vector<std::int32_t> l32(indices.begin(), indices.end());
    const Indices idx = itype == IndexType::kInt32
                            ? Indices(std::span<const std::int32_t>(l32))
                            : Indices(std::span<const std::int64_t>(indices));
    if (tuning != nullptr) {
      return detail::OptimizerStep(table.view(), s, dense ? nullptr : &idx, grad.const_view(), o,
                                   *tuning, stats);
    }
    return dense ? OptimizerStepDense(table.view(), s, grad.const_view(), o, stats)
                 : OptimizerStep(table.view(), s, idx, grad.const_view(), o, stats);
  }
};

// Random state: Adagrad sums and Adam second moments >= 0, first moments of
// either sign, all of the table's row scale.
inline void FillState(StepCase* c, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (int i = 0; i < 2; ++i) {
    TestTable& s = c->state[i];
    const bool signed_values = c->options.kind == OptimizerKind::kAdam && i == 0;
    for (std::int64_t r = 0; r < s.rows; ++r) {
      for (std::int64_t k = 0; k < s.cols; ++k) {
        s.Set(r, k, signed_values ? 0.1 * normal(rng) : 0.05 * u(rng));
      }
    }
  }
}

// A case of `rows` x `cols` of `dtype`, `count` random indices (repeats
// likely), a gradient of `grad_dtype`, state with padded rows.
inline StepCase MakeStepCase(const OptimizerOptions& o, DType dtype, DType grad_dtype,
                             std::int64_t rows, std::int64_t cols,
                             const std::vector<std::int64_t>& indices, bool dense,
                             std::mt19937_64& rng) {
  StepCase c;
  c.options = o;
  c.dense = dense;
  c.indices = indices;
  c.table = TestTable(dtype, rows, cols, cols + 3);
  FillRandom(&c.table, rng, 1.0);
  const std::int64_t state_cols = o.kind == OptimizerKind::kRowWiseAdagrad ? 1 : cols;
  const int count = o.kind == OptimizerKind::kAdam ? 2 : o.kind == OptimizerKind::kSGD ? 0 : 1;
  for (int i = 0; i < count; ++i) c.state[i] = TestTable(ArithmeticOf(dtype), rows, state_cols, state_cols + 1);
  FillState(&c, rng);
  c.grad = TestTable(grad_dtype, dense ? rows : static_cast<std::int64_t>(indices.size()), cols);
  FillRandom(&c.grad, rng, 1.0);
  return c;
}

// Every byte of two tables, padding and tail included, is the same.
inline bool SameBytes(const TestTable& a, const TestTable& b) { return a.bytes == b.bytes; }

}  // namespace sparsenorm::testing

#endif  // SPARSENORM_TESTS_OPTIM_OPTIM_TEST_UTIL_H_
