// Every way an optimizer step can be called wrongly: the status code, a
// message that names the value and where it is, the same message from the
// CPU and the reference backend, and the table, every state table and the
// gradient byte for byte as they were.

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "optim/optim_test_util.h"
#include "sparsenorm/optim.h"

namespace sparsenorm {
namespace {

using testing::MakeStepCase;
using testing::StepCase;

struct ErrorCase {
  std::string name;
  OptimizerOptions options;
  std::function<void(StepCase*)> spoil;  // makes the call bad
  StatusCode code;
  std::string message;  // a part of the message
  DType dtype = DType::kFloat32;
};

// Runs `spoil`ed copies on both backends; checks code, message, and that no
// byte of the caller's arrays changed.
void Expect(const ErrorCase& e) {
  std::mt19937_64 rng(42);
  const std::vector<std::int64_t> indices = {3, 7, 3, 0};
  StepCase base = MakeStepCase(e.options, e.dtype, e.dtype, 10, 4, indices, false, rng);
  e.spoil(&base);
  std::string first_message;
  for (Backend backend : {Backend::kAuto, Backend::kReference}) {
    StepCase c = base;
    const StepCase before = c;
    RowStats stats;
    stats.rows_scaled = -5;
    const Status s = c.Run(IndexType::kInt64, &stats, nullptr, backend);
    EXPECT_EQ(s.code(), e.code) << e.name << ": " << s.message();
    EXPECT_NE(s.message().find(e.message), std::string::npos)
        << e.name << ": the message is \"" << s.message() << "\"";
    EXPECT_EQ(stats.rows_scaled, -5) << e.name << ": statistics written by a failed call";
    EXPECT_TRUE(testing::SameBytes(c.table, before.table)) << e.name << ": the table changed";
    EXPECT_TRUE(testing::SameBytes(c.state[0], before.state[0])) << e.name << ": state changed";
    EXPECT_TRUE(testing::SameBytes(c.state[1], before.state[1])) << e.name << ": state changed";
    EXPECT_TRUE(testing::SameBytes(c.grad, before.grad)) << e.name << ": the gradient changed";
    if (backend == Backend::kAuto) {
      first_message = s.message();
    } else {
      EXPECT_EQ(s.message(), first_message) << e.name << ": the backends disagree";
    }
  }
}

OptimizerOptions Adagrad() { return AdagradOptions(0.1); }
OptimizerOptions Adam() { return AdamOptions(0.01); }

template <class F>
OptimizerOptions With(OptimizerOptions o, F&& f) {
  f(o);
  return o;
}

auto Nothing = [](StepCase*) {};

TEST(OptimErrors, EachBadInputIsRefusedAndNothingChanges) {
  const double nan = std::nan("");
  std::vector<ErrorCase> cases = {
      {"index out of range", Adagrad(), [](StepCase* c) { c->indices[2] = 10; },
       StatusCode::kOutOfRange, "indices[2] = 10 is out of range for 10 table rows"},
      {"negative index", Adam(), [](StepCase* c) { c->indices[1] = -1; }, StatusCode::kOutOfRange,
       "indices[1] = -1"},
      {"gradient rows", Adagrad(), [](StepCase* c) { c->grad.rows = 3; },
       StatusCode::kInvalidArgument, "values has 3 rows but there are 4 indices"},
      {"gradient cols", Adagrad(), [](StepCase* c) { c->grad.cols = 3; },
       StatusCode::kInvalidArgument, "values has 3 columns but the table has 4"},
      {"gradient dtype", Adagrad(), [](StepCase* c) { c->grad.dtype = DType::kFloat16; },
       StatusCode::kInvalidArgument, "values is float16 but the table is float32"},
      {"state dtype", Adagrad(), [](StepCase* c) { c->state[0].dtype = DType::kFloat64; c->state[0].rows = 5; },
       StatusCode::kInvalidArgument, "state.sum is 5 x 4 float64 but Adagrad on a 10 x 4 float32 table needs 10 x 4 float32"},
      {"row-wise state shape", RowWiseAdagradOptions(0.1),
       [](StepCase* c) { c->state[0] = testing::TestTable(DType::kFloat32, 10, 4); },
       StatusCode::kInvalidArgument, "needs 10 x 1 float32"},
      // An empty vector's data() is null (libstdc++), its shape still 10 x 4.
      {"state missing", Adam(), [](StepCase* c) { std::vector<unsigned char>().swap(c->state[1].bytes); },
       StatusCode::kInvalidArgument, "state.exp_avg_sq.data is null"},
      {"lr negative", Adagrad(), Nothing, StatusCode::kInvalidArgument,
       "options.lr = -0.5 is invalid"},
      {"lr NaN", Adam(), Nothing, StatusCode::kInvalidArgument, "options.lr = nan is invalid"},
      {"eps negative", Adagrad(), Nothing, StatusCode::kInvalidArgument, "options.eps = -1 is invalid"},
      {"weight decay without a mode", Adagrad(), Nothing, StatusCode::kInvalidArgument,
       "options.weight_decay = 0.01 would have no effect with weight_decay_mode = none"},
      {"weight decay negative", Adagrad(), Nothing, StatusCode::kInvalidArgument,
       "options.weight_decay = -0.1 is invalid"},
      {"beta1 = 1", Adam(), Nothing, StatusCode::kInvalidArgument,
       "options.beta1 = 1 is invalid: it must be in [0, 1)"},
      {"beta2 NaN", Adam(), Nothing, StatusCode::kInvalidArgument, "options.beta2 = nan"},
      {"lr_decay negative", Adagrad(), Nothing, StatusCode::kInvalidArgument, "options.lr_decay = -1"},
      {"step 0", Adam(), Nothing, StatusCode::kInvalidArgument, "options.step = 0 is invalid"},
      {"constraint target", Adagrad(), Nothing, StatusCode::kInvalidArgument,
       "options.constraint.target = -1 is invalid"},
      {"constraint p", Adagrad(), Nothing, StatusCode::kInvalidArgument, "options.constraint.p = 0"},
      {"constraint eps", Adagrad(), Nothing, StatusCode::kInvalidArgument, "options.constraint.eps = nan"},
      {"constraint kind", Adagrad(), Nothing, StatusCode::kInvalidArgument,
       "options.constraint.kind = 7 is not a ConstraintKind"},
      {"stochastic float32", Adagrad(), Nothing, StatusCode::kInvalidArgument,
       "options.rounding is stochastic but the table is float32"},
      {"kind", Adagrad(), Nothing, StatusCode::kInvalidArgument, "options.kind = 9 is not an OptimizerKind"},
      {"decay mode", Adagrad(), Nothing, StatusCode::kInvalidArgument,
       "options.weight_decay_mode = 5 is not a WeightDecayMode"},
      {"caffe2 sign with SGD", SgdOptions(0.1), Nothing, StatusCode::kInvalidArgument,
       "options.caffe2_sign is set for SGD"},
      {"initial accumulator", Adagrad(), Nothing, StatusCode::kInvalidArgument,
       "options.initial_accumulator_value = -1"},
      {"threads", Adam(), Nothing, StatusCode::kInvalidArgument, "options.num_threads = -2"},
      {"non-finite gradient, error policy", Adagrad(),
       [](StepCase* c) { c->grad.Set(2, 1, std::nan("")); }, StatusCode::kNonFinite,
       "gradient row 2 (for table row 3) holds NaN or infinity"},
      {"table dtype", Adagrad(), [](StepCase* c) { c->table.dtype = static_cast<DType>(9); },
       StatusCode::kUnsupported, "table.dtype = 9 is not a supported dtype"},
  };
  auto set = [&](const char* name, auto f) {
    for (ErrorCase& e : cases) {
      if (e.name == name) f(e.options);
    }
  };
  set("lr negative", [](OptimizerOptions& o) { o.lr = -0.5; });
  set("lr NaN", [&](OptimizerOptions& o) { o.lr = nan; });
  set("eps negative", [](OptimizerOptions& o) { o.eps = -1; });
  set("weight decay without a mode", [](OptimizerOptions& o) {
    o.weight_decay = 0.01;
    o.weight_decay_mode = WeightDecayMode::kNone;
  });
  set("weight decay negative", [](OptimizerOptions& o) { o.weight_decay = -0.1; });
  set("beta1 = 1", [](OptimizerOptions& o) { o.beta1 = 1.0; });
  set("beta2 NaN", [&](OptimizerOptions& o) { o.beta2 = nan; });
  set("lr_decay negative", [](OptimizerOptions& o) { o.lr_decay = -1; });
  set("step 0", [](OptimizerOptions& o) { o.step = 0; });
  set("constraint target", [](OptimizerOptions& o) { o.constraint = {ConstraintKind::kMaxNorm, -1.0, 2.0, 0.0}; });
  set("constraint p", [](OptimizerOptions& o) { o.constraint = {ConstraintKind::kMaxNorm, 1.0, 0.0, 0.0}; });
  set("constraint eps", [&](OptimizerOptions& o) { o.constraint = {ConstraintKind::kConstantNorm, 1.0, 2.0, nan}; });
  set("constraint kind", [](OptimizerOptions& o) { o.constraint.kind = static_cast<ConstraintKind>(7); });
  set("stochastic float32", [](OptimizerOptions& o) { o.rounding = Rounding::kStochastic; });
  set("kind", [](OptimizerOptions& o) { o.kind = static_cast<OptimizerKind>(9); });
  set("decay mode", [](OptimizerOptions& o) { o.weight_decay_mode = static_cast<WeightDecayMode>(5); });
  set("caffe2 sign with SGD", [](OptimizerOptions& o) { o.caffe2_sign = true; });
  set("initial accumulator", [](OptimizerOptions& o) { o.initial_accumulator_value = -1; });
  set("threads", [](OptimizerOptions& o) { o.num_threads = -2; });
  set("non-finite gradient, error policy", [](OptimizerOptions& o) { o.non_finite = NonFinitePolicy::kError; });
  for (const ErrorCase& e : cases) Expect(e);
}

// Arrays that share memory: the state inside the table, the two Adam
// moments in one array, the gradient over the table.
TEST(OptimErrors, OverlappingArraysAreRefused) {
  std::vector<float> memory(200, 0.0f);
  std::vector<float> grad(16, 1.0f);
  const std::vector<std::int64_t> idx = {0, 1, 2, 3};
  const Indices indices{std::span<const std::int64_t>(idx)};
  const Table table = MakeTable(memory.data(), 10, 4);
  struct Case {
    const char* name;
    OptimizerOptions options;
    OptimizerState state;
    ConstTable gradient;
    const char* message;
  };
  OptimizerState in_table;
  in_table.sum = MakeTable(memory.data() + 20, 10, 4);
  OptimizerState shared;
  shared.exp_avg = MakeTable(memory.data() + 100, 10, 4);
  shared.exp_avg_sq = MakeTable(memory.data() + 120, 10, 4);
  OptimizerState fine;
  fine.sum = MakeTable(memory.data() + 100, 10, 4);
  const Case cases[] = {
      {"state in table", AdagradOptions(0.1), in_table, MakeConstTable(grad.data(), 4, 4),
       "table and state.sum overlap in memory"},
      {"moments share", AdamOptions(0.1), shared, MakeConstTable(grad.data(), 4, 4),
       "state.exp_avg and state.exp_avg_sq overlap in memory"},
      {"gradient over table", AdagradOptions(0.1), fine, MakeConstTable(memory.data() + 36, 4, 4),
       "table and values overlap in memory"},
  };
  for (const Case& c : cases) {
    const std::vector<float> before = memory;
    const Status s = OptimizerStep(table, c.state, indices, c.gradient, c.options);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(s.message().find(c.message), std::string::npos) << c.name << ": " << s.message();
    EXPECT_EQ(memory, before) << c.name;
  }
}

TEST(OptimErrors, DenseGradientShape) {
  std::vector<float> table(40, 1.0f), grad(36, 1.0f);
  const Status s = OptimizerStepDense(MakeTable(table.data(), 10, 4), {},
                                      MakeConstTable(grad.data(), 9, 4), SgdOptions(0.1));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("gradient has 9 rows but the table has 10"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace sparsenorm
