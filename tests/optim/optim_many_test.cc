// OptimizerStepMany: many tables in one call give, table by table, the bits
// of one OptimizerStep call each; a bad entry or shared memory anywhere
// leaves every table and every state table as it was.

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <span>
#include <random>
#include <vector>

#include "optim_test_util.h"
#include "sparsenorm/optim.h"

namespace sparsenorm {
namespace {

using testing::MakeStepCase;
using testing::SameBytes;
using testing::StepCase;

OptimizerOptions OptionsFor(int k) {
  OptimizerOptions o;
  switch (k % 4) {
    case 0:
      o = SgdOptions(0.1, 0.01);
      break;
    case 1:
      o = AdagradOptions(0.05, 0.01, 0.0, 1e-10);
      break;
    case 2:
      o = RowWiseAdagradOptions(0.05, 1e-8, 0.01, WeightDecayMode::kDecoupled);
      break;
    default:
      o = AdamOptions(0.01);
      o.step = 3;
      break;
  }
  if (k % 3 == 0) o.constraint = RowConstraint{ConstraintKind::kMaxNorm, 0.8, 2.0, 1e-7};
  if (k % 3 == 1) o.constraint = RowConstraint{ConstraintKind::kConstantNorm, 1.5, 1.0, 1e-12};
  return o;
}

// Tables of every dtype, optimizer and constraint; sparse lists with rows
// named more than kRepeatGroup times, and a dense entry.
std::vector<StepCase> MakeCases(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const DType dtypes[] = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16};
  std::vector<StepCase> cases;
  for (int k = 0; k < 9; ++k) {
    const DType dtype = dtypes[k % 4];
    const std::int64_t rows = 20 + 37 * k, cols = 1 + (k * 13) % 40;
    const bool dense = k == 5;
    std::vector<std::int64_t> list;
    if (!dense) {
      std::uniform_int_distribution<std::int64_t> row(0, rows - 1);
      for (int i = 0; i < 3 * rows; ++i) list.push_back(row(rng));
      list.insert(list.end(), static_cast<std::size_t>(kRepeatGroup + 9 * k), 3);  // a popular row
      std::shuffle(list.begin(), list.end(), rng);
    }
    OptimizerOptions o = OptionsFor(k);
    o.rounding = k == 6 ? Rounding::kStochastic : Rounding::kNearestEven;
    cases.push_back(MakeStepCase(o, dtype, dtype, rows, cols, list, dense, rng));
  }
  return cases;
}

std::vector<StepBatchEntry> EntriesOf(std::vector<StepCase>& cases, int threads, Backend backend) {
  std::vector<StepBatchEntry> entries;
  for (StepCase& c : cases) {
    StepBatchEntry e;
    e.table = c.table.view();
    e.state = c.StateView();
    e.indices = Indices(std::span<const std::int64_t>(c.indices));
    e.values = c.grad.const_view();
    e.options = c.options;
    e.options.num_threads = threads;
    e.options.backend = backend;
    e.dense = c.dense;
    entries.push_back(e);
  }
  return entries;
}

void ExpectSameTablesAndState(const std::vector<StepCase>& a, const std::vector<StepCase>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    EXPECT_TRUE(SameBytes(a[k].table, b[k].table)) << "table of entry " << k;
    for (int i = 0; i < 2; ++i) EXPECT_TRUE(SameBytes(a[k].state[i], b[k].state[i])) << "state " << i << " of entry " << k;
  }
}

TEST(OptimizerStepMany, EachTableGetsTheBitsOfItsOwnCall) {
  for (int threads : {1, 2, 4}) {
    for (Backend backend : {Backend::kAuto, Backend::kReference}) {
      std::vector<StepCase> batched = MakeCases(41), separate = batched;
      std::vector<RowStats> stats(batched.size());
      const std::vector<StepBatchEntry> entries = EntriesOf(batched, threads, backend);
      const Status s = OptimizerStepMany(entries, stats);
      ASSERT_TRUE(s.ok()) << s.message();
      for (std::size_t k = 0; k < separate.size(); ++k) {
        separate[k].options.num_threads = threads;
        RowStats one;
        ASSERT_TRUE(separate[k].Run(IndexType::kInt64, &one, nullptr, backend).ok());
        EXPECT_EQ(stats[k].distinct_rows, one.distinct_rows) << k;
        EXPECT_EQ(stats[k].rows_scaled, one.rows_scaled) << k;
        EXPECT_EQ(stats[k].nonfinite_rows, one.nonfinite_rows) << k;
        EXPECT_EQ(stats[k].indices_seen, one.indices_seen) << k;
      }
      SCOPED_TRACE(::testing::Message() << threads << " threads, backend " << static_cast<int>(backend));
      ExpectSameTablesAndState(batched, separate);
    }
  }
}

TEST(OptimizerStepMany, TheCpuMatchesTheReferenceOnEveryTable) {
  std::vector<StepCase> fast = MakeCases(43), ref = fast;
  ASSERT_TRUE(OptimizerStepMany(EntriesOf(fast, 2, Backend::kAuto)).ok());
  ASSERT_TRUE(OptimizerStepMany(EntriesOf(ref, 1, Backend::kReference)).ok());
  // Without a constraint the step is exact against the reference; with one,
  // the norm's summation order may move the last bits (optim_test.cc
  // checks those tolerances table by table): compare where it is exact.
  for (std::size_t k = 0; k < fast.size(); ++k) {
    if (fast[k].options.constraint.kind != ConstraintKind::kNone) continue;
    EXPECT_TRUE(SameBytes(fast[k].table, ref[k].table)) << "entry " << k;
  }
}

TEST(OptimizerStepMany, EmptyListAndEmptyEntries) {
  EXPECT_TRUE(OptimizerStepMany({}).ok());
  std::vector<StepCase> cases = MakeCases(47);
  cases[2].indices.clear();
  cases[2].grad = testing::TestTable(cases[2].table.dtype, 0, cases[2].table.cols);
  const std::vector<StepCase> before = cases;
  std::vector<RowStats> stats(cases.size());
  ASSERT_TRUE(OptimizerStepMany(EntriesOf(cases, 0, Backend::kAuto), stats).ok());
  EXPECT_TRUE(SameBytes(cases[2].table, before[2].table));
  EXPECT_EQ(stats[2].distinct_rows, 0);
  EXPECT_FALSE(SameBytes(cases[1].table, before[1].table));
}

// Every refused call leaves every table and state table unchanged.
class OptimizerStepManyErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    cases_ = MakeCases(53);
    before_ = cases_;
  }
  Status Run(const std::vector<StepBatchEntry>& entries, std::span<RowStats> stats = {}) {
    return OptimizerStepMany(entries, stats);
  }
  void TearDown() override { ExpectSameTablesAndState(cases_, before_); }
  std::vector<StepCase> cases_, before_;
};

TEST_F(OptimizerStepManyErrors, BadIndexInTheLastEntryNamesTheEntry) {
  cases_.back().indices[7] = cases_.back().table.rows;
  const Status s = Run(EntriesOf(cases_, 2, Backend::kAuto));
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(s.message().rfind("entries[8]: indices[7] = ", 0), 0u) << s.message();
  before_.back().indices[7] = cases_.back().indices[7];
}

TEST_F(OptimizerStepManyErrors, BadIndexUnderTheReference) {
  cases_[3].indices[0] = -1;
  const Status s = Run(EntriesOf(cases_, 1, Backend::kReference));
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(s.message().rfind("entries[3]: indices[0] = -1", 0), 0u) << s.message();
  before_[3].indices[0] = -1;
}

TEST_F(OptimizerStepManyErrors, NonFiniteGradientUnderTheErrorPolicy) {
  for (StepCase& c : cases_) c.options.non_finite = NonFinitePolicy::kError;
  cases_[4].grad.Set(5, 0, std::numeric_limits<double>::quiet_NaN());
  const Status s = Run(EntriesOf(cases_, 2, Backend::kAuto));
  EXPECT_EQ(s.code(), StatusCode::kNonFinite);
  EXPECT_EQ(s.message().rfind("entries[4]: ", 0), 0u) << s.message();
  before_[4].grad = cases_[4].grad;
  for (std::size_t k = 0; k < cases_.size(); ++k) before_[k].options = cases_[k].options;
}

TEST_F(OptimizerStepManyErrors, BadOptionsNameTheEntry) {
  std::vector<StepBatchEntry> entries = EntriesOf(cases_, 2, Backend::kAuto);
  entries[6].options.lr = -1.0;
  const Status s = Run(entries);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("entries[6]: ", 0), 0u) << s.message();
  EXPECT_NE(s.message().find("lr = -1"), std::string::npos) << s.message();
}

TEST_F(OptimizerStepManyErrors, TheSameTableTwice) {
  std::vector<StepBatchEntry> entries = EntriesOf(cases_, 2, Backend::kAuto);
  entries.push_back(entries[1]);
  const Status s = Run(entries);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("entries[1].table and entries[9].table share memory"), std::string::npos)
      << s.message();
}

TEST_F(OptimizerStepManyErrors, OneEntrysGradientIsAnotherEntrysState) {
  // Entry 0 (SGD, float32, one column) reads as its gradient the memory in
  // which entry 2 (row-wise Adagrad) keeps its float32 sums.
  ASSERT_EQ(cases_[0].table.cols, 1);
  ASSERT_EQ(cases_[2].options.kind, OptimizerKind::kRowWiseAdagrad);
  cases_[0].indices.resize(40);
  std::vector<StepBatchEntry> entries = EntriesOf(cases_, 2, Backend::kAuto);
  const Table sum = entries[2].state.sum;
  ASSERT_GE(sum.rows, 40);
  entries[0].values = ConstTable(sum.data, DType::kFloat32, 40, 1, sum.row_stride);
  const Status s = Run(entries);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
  EXPECT_NE(s.message().find("entries[0].values and entries[2].state.sum share memory"), std::string::npos)
      << s.message();
}

TEST_F(OptimizerStepManyErrors, ReadOnlyMemoryMayBeShared) {
  // Two entries reading the same gradient and indices is fine: compare with
  // separate calls rather than refusing.
  std::vector<StepCase> two(cases_.begin(), cases_.begin() + 2);
  two[1] = two[0];
  std::vector<StepBatchEntry> entries = EntriesOf(two, 2, Backend::kAuto);
  entries[1].values = entries[0].values;
  entries[1].indices = entries[0].indices;
  ASSERT_TRUE(Run(entries).ok());
  EXPECT_TRUE(SameBytes(two[0].table, two[1].table));
  EXPECT_FALSE(SameBytes(two[0].table, cases_[0].table));
}

TEST_F(OptimizerStepManyErrors, ThreadCountsAndBackendsMustAgree) {
  std::vector<StepBatchEntry> entries = EntriesOf(cases_, 2, Backend::kAuto);
  entries[2].options.num_threads = 1;
  Status s = Run(entries);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("entries[2].options has num_threads = 1"), std::string::npos) << s.message();
  entries[2].options.num_threads = 2;
  entries[2].options.backend = Backend::kReference;
  s = Run(entries);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST_F(OptimizerStepManyErrors, StatsOfTheWrongLength) {
  std::vector<RowStats> stats(3);
  const Status s = Run(EntriesOf(cases_, 2, Backend::kAuto), stats);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("stats has 3 elements but there are 9 entries"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace sparsenorm
