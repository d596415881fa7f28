// The optimizer step against the reference implementation on random inputs
// over every optimizer, weight-decay mode, constraint, dtype, gradient dtype,
// index type, list shape, SIMD target and thread count; against values
// worked out by hand; and its promises: bits independent of the thread
// count and of how the list is grouped, repeats summed in list order, dense = sparse over every row in
// order, non-finite rows left alone, unbiased stochastic rounding, and
// SparseOptimizer's own state and step count.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/stochastic_rounding.h"
#include "cpu/group_rows.h"
#include "optim/optim_test_util.h"
#include "sparsenorm/optim.h"

namespace sparsenorm {
namespace {

using testing::MakeStepCase;
using testing::OptionsFor;
using testing::StepCase;
using testing::TestTable;

// Small work per thread, so that small inputs run on several threads.
Tuning ManyThreads() {
  Tuning t;
  t.bytes_per_thread = 1;
  return t;
}

// Table elements: bitwise where both sides compute the same operations
// (every rule but row-wise Adagrad's sum of squares, without a norm), else
// within the norm tolerance of the row tests, or, for row-wise Adagrad, the
// float32 (float64) rounding of its row sum relative to the row's size.
void CompareStep(const StepCase& base, const StepCase& fast, const StepCase& ref,
                 const std::string& what) {
  const OptimizerOptions& o = base.options;
  const bool rowwise = o.kind == OptimizerKind::kRowWiseAdagrad;
  const bool constrained = o.constraint.kind != ConstraintKind::kNone;
  const DType dtype = base.table.dtype;
  ASSERT_TRUE(fast.table.SentinelsIntact()) << what;
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(fast.state[i].SentinelsIntact()) << what;
  const double rel = dtype == DType::kFloat64 ? 1e-13 : 2e-6;
  for (std::int64_t r = 0; r < base.table.rows; ++r) {
    double row_max = 0;
    for (std::int64_t k = 0; k < base.table.cols; ++k) row_max = std::max(row_max, std::fabs(ref.table.Get(r, k)));
    for (std::int64_t k = 0; k < base.table.cols; ++k) {
      const double a = fast.table.Get(r, k), b = ref.table.Get(r, k);
      if (!rowwise && !constrained) {
        ASSERT_EQ(fast.table.Bits(r, k), ref.table.Bits(r, k))
            << what << ": row " << r << " col " << k << " fast " << a << " reference " << b;
      } else if (!rowwise) {
        ASSERT_LE(testing::UlpDistance(dtype, a, b), testing::NormUlpTolerance(dtype, o.constraint.p))
            << what << ": row " << r << " col " << k << " fast " << a << " reference " << b;
      } else {
        // A 16-bit result may also round the other way: one ulp at the
        // row's largest magnitude.
        const double narrow_ulp = dtype == DType::kFloat16    ? std::ldexp(row_max, -10)
                                  : dtype == DType::kBFloat16 ? std::ldexp(row_max, -7)
                                                              : 0.0;
        const double tol = rel * row_max + narrow_ulp;
        ASSERT_LE(std::fabs(a - b), tol)
            << what << ": row " << r << " col " << k << " fast " << a << " reference " << b;
      }
    }
  }
  for (int i = 0; i < 2; ++i) {
    const TestTable& fs = fast.state[i];
    for (std::int64_t r = 0; r < fs.rows; ++r) {
      for (std::int64_t k = 0; k < fs.cols; ++k) {
        if (rowwise) {
          ASSERT_LE(std::fabs(fs.Get(r, k) - ref.state[i].Get(r, k)), rel * std::fabs(ref.state[i].Get(r, k)))
              << what << ": state row " << r;
        } else {
          ASSERT_EQ(fs.Bits(r, k), ref.state[i].Bits(r, k))
              << what << ": state " << i << " row " << r << " col " << k;
        }
      }
    }
  }
}

void RunAndCompare(const StepCase& base, IndexType itype, const Tuning* tuning,
                   const std::string& what) {
  StepCase fast = base, ref = base;
  if (tuning != nullptr) fast.options.num_threads = 3;
  RowStats fs, rs;
  const Status a = fast.Run(itype, &fs, tuning);
  ASSERT_TRUE(a.ok()) << what << ": " << a.message();
  const Status b = ref.Run(itype, &rs, nullptr, Backend::kReference);
  ASSERT_TRUE(b.ok()) << what << ": " << b.message();
  EXPECT_EQ(fs.indices_seen, rs.indices_seen) << what;
  EXPECT_EQ(fs.distinct_rows, rs.distinct_rows) << what;
  EXPECT_EQ(fs.nonfinite_rows, rs.nonfinite_rows) << what;
  if (base.options.kind != OptimizerKind::kRowWiseAdagrad) {
    EXPECT_EQ(fs.rows_scaled, rs.rows_scaled) << what;
  }
  CompareStep(base, fast, ref, what);
}

class OptimTarget : public testing::PerTarget {};

TEST_P(OptimTarget, MatchesReference) {
  std::mt19937_64 rng(1234 + static_cast<std::uint64_t>(GetParam() % 1000));
  const Tuning many = ManyThreads();
  const std::int64_t widths[] = {1, 3, 8, 17, 64, 130};
  for (OptimizerKind kind : testing::kAllOptimizers) {
    for (WeightDecayMode mode : {WeightDecayMode::kNone, WeightDecayMode::kL2, WeightDecayMode::kDecoupled}) {
      for (DType dtype : testing::kAllDTypes) {
        for (int variant = 0; variant < 4; ++variant) {
          OptimizerOptions o = OptionsFor(kind, mode, rng);
          const std::int64_t cols = widths[rng() % std::size(widths)];
          const std::int64_t rows = 40;
          switch (variant) {
            case 1:
              o.constraint = RowConstraint{ConstraintKind::kMaxNorm, 0.5, 2.0, 1e-7};
              break;
            case 2:
              o.constraint = RowConstraint{ConstraintKind::kConstantNorm, 2.0, 1.0, 1e-12};
              break;
            case 3:
              o.constraint = RowConstraint{ConstraintKind::kMaxNorm, 0.3, kInfinity, 0.0};
              break;
            default:
              break;
          }
          const bool dense = variant == 3;
          const DType grad_dtype = variant == 2 ? testing::ArithmeticOf(dtype) : dtype;
          auto indices = testing::RandomIndices<std::int64_t>(60, rows, rng);
          if (variant == 1) indices.insert(indices.end(), 150, 7);  // past kRepeatGroup
          const StepCase base = MakeStepCase(o, dtype, grad_dtype, rows, cols, indices, dense, rng);
          const std::string what = std::string(testing::OptimizerName(kind)) + " decay " +
                                   std::to_string(static_cast<int>(mode)) + " " +
                                   testing::Describe(dtype, rows, cols) + " grad " +
                                   DTypeName(grad_dtype) + " variant " + std::to_string(variant);
          RunAndCompare(base, variant % 2 ? IndexType::kInt32 : IndexType::kInt64, nullptr, what);
          // These short lists are grouped through the hash table; half the
          // runs on many threads take the sort instead.
          Tuning threaded = many;
          if (variant % 2) threaded.hash_groups_below = 0;
          RunAndCompare(base, IndexType::kInt64, &threaded,
                        what + " many threads" + (variant % 2 ? ", sorted groups" : ""));
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, OptimTarget,
                         ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         testing::TargetParamName);

TEST(Optim, BitsDoNotDependOnThreadCount) {
  std::mt19937_64 rng(7);
  for (OptimizerKind kind : testing::kAllOptimizers) {
    OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kL2, rng);
    o.constraint = RowConstraint{ConstraintKind::kMaxNorm, 0.7, 2.0, 1e-12};
    // Zipf-like: a few rows take most of the list, some far past kRepeatGroup.
    std::vector<std::int64_t> indices;
    for (int i = 0; i < 6000; ++i) indices.push_back(static_cast<std::int64_t>(std::pow(rng() % 1000 + 1, 2.0) / 1000.0) % 997);
    const StepCase base = MakeStepCase(o, DType::kFloat32, DType::kFloat32, 997, 33, indices, false, rng);
    StepCase one = base;
    RowStats stats;
    one.options.num_threads = 1;
    ASSERT_TRUE(one.Run(IndexType::kInt64, &stats).ok());
    for (int threads : {2, 3, 5}) {
      StepCase many = base;
      many.options.num_threads = threads;
      // The default groups this list through the hash table, on one
      // thread; the radix sort runs its passes on `threads`.
      Tuning tuning = ManyThreads();
      tuning.hash_groups_below = 0;
      ASSERT_TRUE(many.Run(IndexType::kInt64, &stats, &tuning).ok());
      EXPECT_TRUE(testing::SameBytes(one.table, many.table)) << testing::OptimizerName(kind) << " " << threads;
      EXPECT_TRUE(testing::SameBytes(one.state[0], many.state[0])) << testing::OptimizerName(kind) << " " << threads;
      EXPECT_TRUE(testing::SameBytes(one.state[1], many.state[1])) << testing::OptimizerName(kind) << " " << threads;
    }
  }
}

// A grouping's structure: every position once, each group's positions
// ascending and naming its row, the rows distinct. The rows of `order`
// kAscending ascend; those of kFirstSeen come in the order of their first
// positions.
void CheckGroups(const std::vector<std::int64_t>& idx, const cpu::RowGroups& g, cpu::GroupOrder order,
                 const std::string& what) {
  const auto n = static_cast<std::int64_t>(idx.size());
  const auto groups = static_cast<std::int64_t>(g.rows.size());
  ASSERT_EQ(g.begin.size(), g.rows.size() + 1) << what;
  ASSERT_EQ(g.positions.size(), idx.size()) << what;
  ASSERT_EQ(g.begin.front(), 0) << what;
  ASSERT_EQ(g.begin.back(), n) << what;
  for (std::int64_t s = 0; s < groups; ++s) {
    ASSERT_LT(g.begin[s], g.begin[s + 1]) << what << ": group " << s << " is empty";
    for (std::int64_t k = g.begin[s]; k < g.begin[s + 1]; ++k) {
      ASSERT_EQ(idx[static_cast<std::size_t>(g.positions[k])], g.rows[s]) << what << ": group " << s;
      if (k > g.begin[s]) {
        ASSERT_LT(g.positions[k - 1], g.positions[k]) << what << ": group " << s;
      }
    }
    if (s == 0) continue;
    if (order == cpu::GroupOrder::kAscending) {
      ASSERT_LT(g.rows[s - 1], g.rows[s]) << what;
    } else {
      ASSERT_LT(g.positions[g.begin[s - 1]], g.positions[g.begin[s]]) << what;
    }
  }
  std::vector<std::int64_t> distinct = idx;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  ASSERT_EQ(static_cast<std::int64_t>(distinct.size()), groups) << what;
}

// The sort and the hash table (cpu/group_rows.h) group every list into the
// same groups, in their own orders, and name the same first bad position;
// on both index types, with tables whose row numbers need from 1 to 41
// bits, and lists around the sort's serial and parallel lengths.
TEST(GroupRows, SortAndHashTableGiveTheSameGroups) {
  std::mt19937_64 rng(21);
  for (const std::int64_t n : {0, 1, 2, 7, 300, 4095, 4096, 20000}) {
    for (const std::int64_t table_rows : {std::int64_t{1}, std::int64_t{50}, std::int64_t{1} << 20,
                                          std::int64_t{1} << 40}) {
      for (const IndexType type : {IndexType::kInt32, IndexType::kInt64}) {
        if (type == IndexType::kInt32 && table_rows > (std::int64_t{1} << 31)) continue;
        const std::string what = "n " + std::to_string(n) + " rows " + std::to_string(table_rows) +
                                 (type == IndexType::kInt32 ? " int32" : " int64");
        // A quarter of the list from the first few rows: long groups.
        std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
        for (auto& v : idx) {
          v = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(rng() % 4 == 0 ? std::min<std::int64_t>(table_rows, 8) : table_rows));
        }
        std::vector<std::int32_t> idx32(idx.begin(), idx.end());
        auto group = [&](cpu::GroupOrder order, cpu::RowGroups* out) {
          const void* data = type == IndexType::kInt32 ? static_cast<const void*>(idx32.data())
                                                       : static_cast<const void*>(idx.data());
          return cpu::GroupRows(data, type, n, table_rows, 3, order, out);
        };
        cpu::RowGroups sorted, hashed;
        ASSERT_EQ(group(cpu::GroupOrder::kAscending, &sorted), -1) << what;
        ASSERT_EQ(group(cpu::GroupOrder::kFirstSeen, &hashed), -1) << what;
        CheckGroups(idx, sorted, cpu::GroupOrder::kAscending, what + " sorted");
        CheckGroups(idx, hashed, cpu::GroupOrder::kFirstSeen, what + " hashed");
        std::vector<std::vector<std::int64_t>> a, b;  // each group: row, then positions
        for (const auto* g : {&sorted, &hashed}) {
          auto& list = g == &sorted ? a : b;
          for (std::size_t s = 0; s < g->rows.size(); ++s) {
            list.push_back({g->rows[s]});
            list.back().insert(list.back().end(), g->positions.begin() + g->begin[s],
                               g->positions.begin() + g->begin[s + 1]);
          }
        }
        std::sort(b.begin(), b.end());
        EXPECT_EQ(a, b) << what;
        if (n == 0) continue;
        // Two bad values: both name the first.
        const std::int64_t first = n / 2;
        idx[static_cast<std::size_t>(first)] = rng() % 2 ? -1 : table_rows;
        idx[static_cast<std::size_t>(n - 1)] = -5;
        idx32.assign(idx.begin(), idx.end());
        EXPECT_EQ(group(cpu::GroupOrder::kAscending, &sorted), first) << what;
        EXPECT_EQ(group(cpu::GroupOrder::kFirstSeen, &hashed), first) << what;
      }
    }
  }
}

// The gradient of a row named 200 times is the repeat groups' sums (64, 64,
// 64, 8 gradient rows, each summed in list order) added in order: SGD with
// lr = 1 from a zero row stores exactly minus that sum.
TEST(Optim, RepeatsAreSummedInListOrderByGroups) {
  std::mt19937_64 rng(11);
  OptimizerOptions o = SgdOptions(1.0);
  std::vector<std::int64_t> indices(200, 3);
  StepCase c = MakeStepCase(o, DType::kFloat32, DType::kFloat32, 5, 19, indices, false, rng);
  for (std::int64_t k = 0; k < 19; ++k) c.table.Set(3, k, 0.0);
  // Values whose sum depends on the order of the additions.
  std::uniform_real_distribution<double> exponent(-12, 12);
  for (std::int64_t i = 0; i < 200; ++i) {
    for (std::int64_t k = 0; k < 19; ++k) c.grad.Set(i, k, std::ldexp(1.0 + 0.5 * (rng() % 2), static_cast<int>(exponent(rng))));
  }
  RowStats stats;
  const Tuning many = ManyThreads();
  ASSERT_TRUE(c.Run(IndexType::kInt64, &stats, &many).ok());
  for (std::int64_t k = 0; k < 19; ++k) {
    float total = 0.0f;
    for (std::int64_t start = 0; start < 200; start += kRepeatGroup) {
      float group = static_cast<float>(c.grad.Get(start, k));
      for (std::int64_t i = start + 1; i < std::min<std::int64_t>(200, start + kRepeatGroup); ++i) {
        group += static_cast<float>(c.grad.Get(i, k));
      }
      total = start == 0 ? group : total + group;
    }
    EXPECT_EQ(c.table.Get(3, k), static_cast<double>(-total)) << "col " << k;
  }
  EXPECT_EQ(stats.distinct_rows, 1);
  EXPECT_EQ(stats.indices_seen, 200);
}

TEST(Optim, DenseIsSparseOverEveryRowInOrder) {
  std::mt19937_64 rng(5);
  for (OptimizerKind kind : testing::kAllOptimizers) {
    OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kDecoupled, rng);
    o.constraint = RowConstraint{ConstraintKind::kConstantNorm, 1.5, 2.0, 1e-12};
    std::vector<std::int64_t> every(30);
    std::iota(every.begin(), every.end(), 0);
    StepCase sparse = MakeStepCase(o, DType::kBFloat16, DType::kFloat32, 30, 12, every, false, rng);
    StepCase dense = sparse;
    dense.dense = true;
    dense.indices.clear();
    RowStats a, b;
    ASSERT_TRUE(sparse.Run(IndexType::kInt64, &a).ok());
    ASSERT_TRUE(dense.Run(IndexType::kInt64, &b).ok());
    EXPECT_TRUE(testing::SameBytes(sparse.table, dense.table)) << testing::OptimizerName(kind);
    EXPECT_TRUE(testing::SameBytes(sparse.state[0], dense.state[0])) << testing::OptimizerName(kind);
    EXPECT_EQ(a.distinct_rows, b.distinct_rows);
    EXPECT_EQ(a.rows_scaled, b.rows_scaled);
  }
}

// One row, one step, worked out by hand from each optimizer's rule (and the
// torch or FBGEMM formula it follows), in float64 so the values are exact
// enough to state.
struct HandCase {
  const char* name;
  OptimizerOptions options;
  double w0, w1, g0, g1;  // row [w0, w1], gradient [g0, g1]
  double state0;          // initial sum (all elements) for the Adagrads
  double expect0, expect1;
  double expect_state0;  // sum, row sum, or exp_avg of element 0
};

TEST(Optim, ValuesWorkedOutByHand) {
  std::vector<HandCase> cases = {
      // w - lr * g
      {"sgd", SgdOptions(0.5), 1.0, -2.0, 0.5, 1.0, 0.0, 0.75, -2.5, 0.0},
      // L2: g + wd * w = [0.5 + 0.1, 1 - 0.2]
      {"sgd l2", SgdOptions(0.5, 0.1), 1.0, -2.0, 0.5, 1.0, 0.0, 1.0 - 0.5 * 0.6, -2.0 - 0.5 * 0.8, 0.0},
      // sum = 0.25 + g^2; w - lr * g / (sqrt(sum) + eps)
      {"adagrad", AdagradOptions(0.1, 0.0, 0.0, 0.0), 1.0, 1.0, 1.0, 2.0, 0.0, 1.0 - 0.1, 1.0 - 0.1, 1.0},
      // Caffe2: w + lr * g / (sqrt(sum) + eps) with lr = -0.1, eps = 0
      {"caffe2 adagrad", Caffe2SparseAdagradOptions(-0.1, 0.0), 1.0, 1.0, 1.0, 2.0, 0.0, 0.9, 0.9, 1.0},
      // row-wise: sum += mean(g^2) = (1 + 4) / 2; m = lr / sqrt(2.5)
      {"rowwise", RowWiseAdagradOptions(0.1, 0.0), 1.0, 1.0, 1.0, 2.0, 0.0, 1.0 - 0.1 / std::sqrt(2.5),
       1.0 - 0.2 / std::sqrt(2.5), 2.5},
      // row-wise decoupled: c = 1 - lr * wd = 0.99
      {"rowwise decoupled", RowWiseAdagradOptions(0.1, 0.0, 0.1, WeightDecayMode::kDecoupled), 1.0, 1.0,
       1.0, 2.0, 0.0, 0.99 - 0.1 / std::sqrt(2.5), 0.99 - 0.2 / std::sqrt(2.5), 2.5},
      // Adam step 1: m = 0.1 g, v = 0.001 g^2, step_size = lr sqrt(0.001) / 0.1:
      // w - step_size * m / sqrt(v) = w - lr * sign(g)
      {"adam", AdamOptions(0.01, 0.9, 0.999, 0.0), 1.0, 1.0, 2.0, -3.0, 0.0, 0.99, 1.01, 0.2},
  };
  // Max-norm on top of SGD: [0.75, -2.5] has norm sqrt(0.5625 + 6.25) > 1.
  HandCase constrained = cases[0];
  constrained.name = "sgd max-norm";
  constrained.options.constraint = RowConstraint{ConstraintKind::kMaxNorm, 1.0, 2.0, 0.0};
  const double n = std::sqrt(0.75 * 0.75 + 2.5 * 2.5);
  constrained.expect0 = 0.75 / n;
  constrained.expect1 = -2.5 / n;
  cases.push_back(constrained);
  for (const HandCase& h : cases) {
    for (Backend backend : {Backend::kAuto, Backend::kReference}) {
      std::vector<double> w = {h.w0, h.w1}, g = {h.g0, h.g1};
      std::vector<double> s0(2, h.state0), s1(2, 0.0);
      OptimizerOptions o = h.options;
      o.backend = backend;
      OptimizerState state;
      const bool rowwise = o.kind == OptimizerKind::kRowWiseAdagrad;
      if (o.kind == OptimizerKind::kAdam) {
        state.exp_avg = MakeTable(s0.data(), 1, 2);
        state.exp_avg_sq = MakeTable(s1.data(), 1, 2);
      } else if (o.kind != OptimizerKind::kSGD) {
        state.sum = MakeTable(s0.data(), 1, rowwise ? 1 : 2);
      }
      const std::int64_t zero = 0;
      const Status s = OptimizerStep(MakeTable(w.data(), 1, 2), state,
                                     Indices(std::span<const std::int64_t>(&zero, 1)),
                                     MakeConstTable(g.data(), 1, 2), o);
      ASSERT_TRUE(s.ok()) << h.name << ": " << s.message();
      EXPECT_NEAR(w[0], h.expect0, 1e-14) << h.name;
      EXPECT_NEAR(w[1], h.expect1, 1e-14) << h.name;
      if (o.kind != OptimizerKind::kSGD) {
        EXPECT_NEAR(s0[0], h.expect_state0, 1e-14) << h.name;
      }
    }
  }
}

TEST(Optim, NonFiniteGradientRowsAreLeftAndCounted) {
  std::mt19937_64 rng(3);
  for (OptimizerKind kind : testing::kAllOptimizers) {
    OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kNone, rng);
    const std::vector<std::int64_t> indices = {4, 9, 4, 2};
    StepCase base = MakeStepCase(o, DType::kFloat16, DType::kFloat16, 12, 9, indices, false, rng);
    base.grad.Set(2, 5, std::nan(""));    // row 4's second occurrence: row 4 is left
    base.grad.Set(3, 0, -INFINITY);       // row 2 is left
    for (Backend backend : {Backend::kAuto, Backend::kReference}) {
      StepCase c = base;
      RowStats stats;
      ASSERT_TRUE(c.Run(IndexType::kInt64, &stats, nullptr, backend).ok());
      EXPECT_EQ(stats.nonfinite_rows, 2) << testing::OptimizerName(kind);
      EXPECT_EQ(stats.distinct_rows, 3);
      for (std::int64_t r : {4, 2}) {
        for (std::int64_t k = 0; k < 9; ++k) {
          EXPECT_EQ(c.table.Bits(r, k), base.table.Bits(r, k)) << testing::OptimizerName(kind) << " row " << r;
        }
        for (int i = 0; i < 2; ++i) {
          for (std::int64_t k = 0; k < c.state[i].cols; ++k) {
            EXPECT_EQ(c.state[i].Bits(r, k), base.state[i].Bits(r, k)) << testing::OptimizerName(kind);
          }
        }
      }
      bool changed = false;
      for (std::int64_t k = 0; k < 9; ++k) changed |= c.table.Bits(9, k) != base.table.Bits(9, k);
      EXPECT_TRUE(changed) << testing::OptimizerName(kind) << ": row 9 was not updated";
    }
  }
}

// An update that overflows (finite gradient, infinite result) is left too.
TEST(Optim, OverflowingUpdateIsLeftAndCounted) {
  std::vector<float> w = {3e38f, 1.0f}, g = {-3e38f, 1.0f};
  const std::int64_t zero = 0;
  for (Backend backend : {Backend::kAuto, Backend::kReference}) {
    std::vector<float> table = w;
    OptimizerOptions o = SgdOptions(2.0);
    o.backend = backend;
    RowStats stats;
    ASSERT_TRUE(OptimizerStep(MakeTable(table.data(), 1, 2), {}, Indices(std::span<const std::int64_t>(&zero, 1)),
                              MakeConstTable(g.data(), 1, 2), o, &stats)
                    .ok());
    EXPECT_EQ(stats.nonfinite_rows, 1);
    EXPECT_EQ(table, w);
  }
}

TEST(Optim, StochasticRoundingMatchesReferenceAndThreads) {
  std::mt19937_64 rng(17);
  for (DType dtype : {DType::kFloat16, DType::kBFloat16}) {
    for (OptimizerKind kind : testing::kAllOptimizers) {
      OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kL2, rng);
      o.rounding = Rounding::kStochastic;
      o.seed = 99;
      o.constraint = RowConstraint{ConstraintKind::kMaxNorm, 0.4, 2.0, 1e-7};
      auto indices = testing::RandomIndices<std::int64_t>(300, 64, rng);
      const StepCase base = MakeStepCase(o, dtype, DType::kFloat32, 64, 21, indices, false, rng);
      if (kind != OptimizerKind::kRowWiseAdagrad) {
        // Same bits as the reference where the constraint leaves rows (the
        // scaled ones may differ by a float32 ulp of the scale).
        StepCase fast = base, ref = base;
        fast.options.constraint.kind = ref.options.constraint.kind = ConstraintKind::kNone;
        RowStats s;
        ASSERT_TRUE(fast.Run(IndexType::kInt64, &s).ok());
        ASSERT_TRUE(ref.Run(IndexType::kInt64, &s, nullptr, Backend::kReference).ok());
        EXPECT_TRUE(testing::SameBytes(fast.table, ref.table)) << DTypeName(dtype) << " " << testing::OptimizerName(kind);
      }
      StepCase one = base, many = base;
      one.options.num_threads = 1;
      many.options.num_threads = 3;
      RowStats s;
      const Tuning tuning = ManyThreads();
      ASSERT_TRUE(one.Run(IndexType::kInt64, &s).ok());
      ASSERT_TRUE(many.Run(IndexType::kInt64, &s, &tuning).ok());
      EXPECT_TRUE(testing::SameBytes(one.table, many.table)) << DTypeName(dtype);
      // Another step number draws other bits.
      StepCase later = base;
      later.options.step += 1;
      ASSERT_TRUE(later.Run(IndexType::kInt64, &s).ok());
      EXPECT_FALSE(testing::SameBytes(one.table, later.table)) << DTypeName(dtype);
    }
  }
}

// A value a quarter of the way between two float16 neighbours, rounded in
// 40,000 places (rows x columns), lands on the upper one about a quarter of
// the time; in expectation the rounding adds nothing.
TEST(Optim, StochasticRoundingIsUnbiased) {
  const std::int64_t rows = 400, cols = 100;
  std::vector<std::uint16_t> table(static_cast<std::size_t>(rows * cols), 0);
  std::vector<float> grad(static_cast<std::size_t>(rows * cols));
  // 1 + 2^-10 / 4: one float16 ulp above 1 is 2^-10.
  const float target = 1.0f + 0x1p-12f;
  std::fill(grad.begin(), grad.end(), -target);  // SGD, lr 1, from 0: w' = target
  OptimizerOptions o = SgdOptions(1.0);
  o.rounding = Rounding::kStochastic;
  o.seed = 2024;
  const Status s = OptimizerStepDense(Table{table.data(), DType::kFloat16, rows, cols, 0}, {},
                                      ConstTable(grad.data(), DType::kFloat32, rows, cols), o);
  ASSERT_TRUE(s.ok()) << s.message();
  std::int64_t up = 0;
  for (std::uint16_t b : table) {
    const float v = numerics::HalfToFloat(b);
    ASSERT_TRUE(v == 1.0f || v == 1.0f + 0x1p-10f) << v;
    up += v != 1.0f;
  }
  // Binomial(40000, 0.25): standard deviation about 87.
  EXPECT_NEAR(static_cast<double>(up), 10000.0, 450.0);
}

TEST(Optim, SparseOptimizerOwnsStateAndCountsSteps) {
  std::vector<float> table(6 * 4, 1.0f);
  OptimizerOptions o = AdagradOptions(0.1);
  o.initial_accumulator_value = 0.5;
  std::unique_ptr<SparseOptimizer> opt;
  ASSERT_TRUE(SparseOptimizer::Create(MakeTable(table.data(), 6, 4), o, &opt).ok());
  ASSERT_NE(opt, nullptr);
  const Table& sum = opt->state().sum;
  ASSERT_EQ(sum.rows, 6);
  ASSERT_EQ(sum.cols, 4);
  ASSERT_EQ(sum.dtype, DType::kFloat32);
  EXPECT_EQ(static_cast<const float*>(sum.data)[23], 0.5f);
  const std::vector<std::int64_t> idx = {1, 5};
  std::vector<float> g(2 * 4, 1.0f);
  ASSERT_TRUE(opt->Step(Indices(std::span<const std::int64_t>(idx)), MakeConstTable(g.data(), 2, 4)).ok());
  EXPECT_EQ(opt->steps_taken(), 1);
  EXPECT_EQ(static_cast<const float*>(sum.data)[4], 1.5f);
  EXPECT_EQ(static_cast<const float*>(sum.data)[0], 0.5f);
  // A failed step changes nothing, the count included.
  const std::vector<std::int64_t> bad = {1, 6};
  const std::vector<float> before = table;
  EXPECT_EQ(opt->Step(Indices(std::span<const std::int64_t>(bad)), MakeConstTable(g.data(), 2, 4)).code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(opt->steps_taken(), 1);
  EXPECT_EQ(table, before);
  // lr_decay reads the step count: step 2 uses lr / (1 + lr_decay).
  opt->options().lr_decay = 1.0;
  ASSERT_TRUE(opt->Step(Indices(std::span<const std::int64_t>(idx)), MakeConstTable(g.data(), 2, 4)).ok());
  EXPECT_EQ(opt->steps_taken(), 2);
  EXPECT_EQ(opt->options().step, 2);
  // Bad options are refused at creation.
  std::unique_ptr<SparseOptimizer> none;
  OptimizerOptions neg = AdagradOptions(-1.0);
  EXPECT_EQ(SparseOptimizer::Create(MakeTable(table.data(), 6, 4), neg, &none).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(none, nullptr);
}

// An empty sparse list may come with a null pointer (an empty std::vector's
// data(), an empty PyTorch tensor's): it is still a sparse gradient of no
// rows, never the dense form (which would read `rows` gradient rows).
TEST(Optim, EmptyListWithNullPointerUpdatesNothing) {
  for (Backend backend : {Backend::kAuto, Backend::kReference}) {
    std::vector<float> table(3 * 2, 1.0f);
    std::vector<float> g(3 * 2, 5.0f);  // memory a dense reading would find
    const std::vector<std::int64_t> none;
    ASSERT_EQ(none.data(), nullptr);
    OptimizerOptions o = SgdOptions(1.0);
    o.backend = backend;
    RowStats stats;
    ASSERT_TRUE(OptimizerStep(MakeTable(table.data(), 3, 2), {}, Indices(std::span<const std::int64_t>(none)),
                              MakeConstTable(g.data(), 0, 2), o, &stats)
                    .ok());
    EXPECT_EQ(stats.distinct_rows, 0);
    EXPECT_EQ(table, std::vector<float>(3 * 2, 1.0f));
  }
}

}  // namespace
}  // namespace sparsenorm
