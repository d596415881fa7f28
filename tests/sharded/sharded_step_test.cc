// The split phases of the column-sharded optimizer step
// (sparsenorm/sharded_step.h) in one process: a table, its state and its
// gradient are cut into column slices, every shard runs each phase in
// turn, the gathers are simulated, and the slices put back together are
// compared with OptimizerStep on the whole table.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "optim/optim_test_util.h"
#include "sparsenorm/optim.h"
#include "sparsenorm/sharded_step.h"
#include "test_util.h"

namespace sparsenorm {
namespace {

using testing::ArithmeticOf;
using testing::kAllDTypes;
using testing::kAllOptimizers;
using testing::MakeStepCase;
using testing::OptimizerName;
using testing::OptionsFor;
using testing::StepCase;
using testing::TestTable;

// Columns [c0, c1) of `t` (every column when `whole`, as row-wise Adagrad's
// replicated sum), with a padded stride.
TestTable CopyColumns(const TestTable& t, std::int64_t c0, std::int64_t c1) {
  TestTable s(t.dtype, t.rows, c1 - c0, c1 - c0 + 2);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    std::memcpy(s.bytes.data() + static_cast<std::size_t>(r * s.stride) * s.element_size(),
                t.bytes.data() + static_cast<std::size_t>(r * t.stride + c0) * t.element_size(),
                static_cast<std::size_t>(c1 - c0) * t.element_size());
  }
  return s;
}

// Writes `s` back into columns [c0, c0 + s.cols) of `t`.
void PutColumns(const TestTable& s, std::int64_t c0, TestTable* t) {
  for (std::int64_t r = 0; r < t->rows; ++r) {
    std::memcpy(t->bytes.data() + static_cast<std::size_t>(r * t->stride + c0) * t->element_size(),
                s.bytes.data() + static_cast<std::size_t>(r * s.stride) * s.element_size(),
                static_cast<std::size_t>(s.cols) * s.element_size());
  }
}

bool RowWise(const OptimizerOptions& o) { return o.kind == OptimizerKind::kRowWiseAdagrad; }

// One shard's slice of a StepCase: its columns of the table, the gradient
// and the elementwise state, and a copy of row-wise Adagrad's sum.
struct Shard {
  StepCase slice;
  ColumnSlice columns;
  Status status;
  RowStats stats;
};

std::vector<Shard> Split(const StepCase& whole, const std::vector<std::int64_t>& cuts) {
  std::vector<Shard> shards(cuts.size() - 1);
  for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
    Shard& s = shards[k];
    const std::int64_t c0 = cuts[k], c1 = cuts[k + 1];
    s.columns = ColumnSlice{c0, whole.table.cols};
    s.slice.options = whole.options;
    s.slice.indices = whole.indices;
    s.slice.table = CopyColumns(whole.table, c0, c1);
    s.slice.grad = CopyColumns(whole.grad, c0, c1);
    for (int i = 0; i < 2; ++i) {
      const TestTable& st = whole.state[i];
      if (st.rows == 0 && st.cols == 0) continue;
      s.slice.state[i] = RowWise(whole.options) ? CopyColumns(st, 0, st.cols) : CopyColumns(st, c0, c1);
    }
  }
  return shards;
}

// The slices put back into a copy of `whole` (row-wise Adagrad's sum from
// shard 0; every shard's copy is compared with it).
StepCase Gather(const StepCase& whole, const std::vector<Shard>& shards, const std::vector<std::int64_t>& cuts) {
  StepCase g = whole;
  for (std::size_t k = 0; k < shards.size(); ++k) {
    PutColumns(shards[k].slice.table, cuts[k], &g.table);
    for (int i = 0; i < 2; ++i) {
      if (g.state[i].rows == 0 && g.state[i].cols == 0) continue;
      if (RowWise(whole.options)) {
        EXPECT_EQ(std::memcmp(shards[k].slice.state[i].bytes.data(), shards[0].slice.state[i].bytes.data(),
                              shards[0].slice.state[i].bytes.size()),
                  0)
            << "row-wise Adagrad's sum differs between shard " << k << " and shard 0";
        if (k == 0) PutColumns(shards[0].slice.state[i], 0, &g.state[i]);
      } else {
        PutColumns(shards[k].slice.state[i], cuts[k], &g.state[i]);
      }
    }
  }
  return g;
}

Indices IndexView(const StepCase& c) { return Indices(std::span<const std::int64_t>(c.indices)); }

// The protocol, every shard in turn, as a transport would run it: the first
// phase's statuses agreed (any failure stops every shard), each gather in
// shard order, each shard combining on its own (the combined bits compared).
void RunProtocol(std::vector<Shard>* shards) {
  const int world = static_cast<int>(shards->size());
  const OptimizerOptions& o = (*shards)[0].slice.options;
  std::vector<std::vector<std::int64_t>> rows(shards->size());
  std::vector<double> squares;
  bool failed = false;
  if (RowWise(o)) {
    std::vector<double> gathered;
    for (Shard& s : *shards) {
      std::vector<std::int64_t> r;
      std::vector<double> q;
      s.status = ColumnShardedStepSquares(s.slice.table.view(), s.slice.StateView(), IndexView(s.slice),
                                          s.slice.grad.const_view(), s.slice.options, s.columns, &r, &q);
      failed |= !s.status.ok();
      gathered.insert(gathered.end(), q.begin(), q.end());
    }
    if (failed) return;
    for (int k = 0; k < world; ++k) {
      std::vector<double> combined;
      ASSERT_TRUE(CombineGatheredSquares(gathered, world, &combined).ok());
      if (k == 0) squares = combined;
      ASSERT_TRUE(combined.empty() || std::memcmp(combined.data(), squares.data(), squares.size() * sizeof(double)) == 0);
    }
  }
  std::vector<NormPart> gathered;
  for (Shard& s : *shards) {
    std::vector<NormPart> parts;
    std::vector<std::int64_t> r;
    s.status = ColumnShardedStepParts(s.slice.table.view(), s.slice.StateView(), IndexView(s.slice),
                                      s.slice.grad.const_view(), s.slice.options, s.columns, squares, &r, &parts);
    failed |= !s.status.ok();
    // Row-wise Adagrad's phase 2 fails only where its phase 1 did.
    if (RowWise(o)) {
      EXPECT_TRUE(s.status.ok()) << s.status.message();
    }
    gathered.insert(gathered.end(), parts.begin(), parts.end());
  }
  if (failed) return;
  std::vector<NormPart> combined;
  ASSERT_TRUE(CombineGatheredParts(gathered, world, o.constraint.p, &combined).ok());
  for (Shard& s : *shards) {
    s.status = ApplyColumnShardedStep(s.slice.table.view(), s.slice.StateView(), IndexView(s.slice),
                                      s.slice.grad.const_view(), s.slice.options, s.columns, squares, combined,
                                      &s.stats);
    ASSERT_TRUE(s.status.ok()) << s.status.message();
  }
}

// Indices with repeats, one row named more than kRepeatGroup times (its
// repeat groups summed apart), and rows never named.
std::vector<std::int64_t> IndicesFor(std::int64_t rows, std::mt19937_64& rng) {
  std::vector<std::int64_t> v = testing::RandomIndices<std::int64_t>(3 * rows, rows - 4, rng);
  for (int i = 0; i < 150; ++i) v.insert(v.begin() + static_cast<std::ptrdiff_t>(rng() % v.size()), 1);
  return v;
}

void ExpectSameBytes(const StepCase& got, const StepCase& want, const std::string& what) {
  EXPECT_TRUE(testing::SameBytes(got.table, want.table)) << what << ": table";
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(testing::SameBytes(got.state[i], want.state[i])) << what << ": state " << i;
}

// Within a few units of the dtype's precision of the row's largest
// magnitude: the combined sums and norms move a row's multiplier or scale by
// a few ulps, which moves each element by as many ulps of the row's scale
// (more of its own where c * w - m * g cancels); a 16-bit element may round
// to the neighbouring value.
void ExpectClose(const TestTable& got, const TestTable& want, const std::string& what) {
  const bool narrow = want.dtype == DType::kFloat16 || want.dtype == DType::kBFloat16;
  const double unit = want.dtype == DType::kFloat64   ? 0x1p-52
                      : want.dtype == DType::kFloat32 ? 0x1p-23
                      : want.dtype == DType::kFloat16 ? 0x1p-10
                                                      : 0x1p-7;
  const double ulps = narrow ? 2 : 16;
  for (std::int64_t r = 0; r < want.rows; ++r) {
    double m = 0.0;
    for (std::int64_t c = 0; c < want.cols; ++c) m = std::max(m, std::fabs(want.Get(r, c)));
    for (std::int64_t c = 0; c < want.cols; ++c) {
      const double a = got.Get(r, c), b = want.Get(r, c);
      ASSERT_LE(std::fabs(a - b), ulps * unit * m) << what << " row " << r << " col " << c << ": " << a << " vs " << b;
    }
  }
}

struct Variant {
  const char* name;
  ConstraintKind constraint;
  double p;
  Rounding rounding;
};

constexpr Variant kVariants[] = {
    {"plain", ConstraintKind::kNone, 2.0, Rounding::kNearestEven},
    {"max-norm", ConstraintKind::kMaxNorm, 2.0, Rounding::kNearestEven},
    {"constant-norm-l1", ConstraintKind::kConstantNorm, 1.0, Rounding::kNearestEven},
    {"max-norm-linf", ConstraintKind::kMaxNorm, kInfinity, Rounding::kNearestEven},
    {"stochastic", ConstraintKind::kNone, 2.0, Rounding::kStochastic},
    {"max-norm-stochastic", ConstraintKind::kMaxNorm, 2.0, Rounding::kStochastic},
};

OptimizerOptions VariantOptions(OptimizerKind kind, WeightDecayMode mode, const Variant& v, std::mt19937_64& rng) {
  OptimizerOptions o = OptionsFor(kind, mode, rng);
  o.constraint.kind = v.constraint;
  o.constraint.p = v.p;
  o.constraint.target = 0.5;
  o.rounding = v.rounding;
  o.seed = rng();
  return o;
}

bool Applies(const Variant& v, DType dtype) {
  return v.rounding == Rounding::kNearestEven || dtype == DType::kFloat16 || dtype == DType::kBFloat16;
}

// With one shard every stored bit, table and state, is OptimizerStep's.
TEST(ShardedStep, OneShardIsTheSingleProcessStepBitForBit) {
  std::mt19937_64 rng(501);
  int cases = 0;
  for (OptimizerKind kind : kAllOptimizers) {
    for (DType dtype : kAllDTypes) {
      for (const Variant& v : kVariants) {
        if (!Applies(v, dtype)) continue;
        for (WeightDecayMode mode : {WeightDecayMode::kNone, WeightDecayMode::kL2, WeightDecayMode::kDecoupled}) {
          const OptimizerOptions o = VariantOptions(kind, mode, v, rng);
          const std::int64_t cols = 37;
          StepCase whole = MakeStepCase(o, dtype, dtype, 24, cols, IndicesFor(24, rng), false, rng);
          std::vector<Shard> shards = Split(whole, {0, cols});
          RunProtocol(&shards);
          StepCase want = whole;
          RowStats want_stats;
          ASSERT_TRUE(want.Run(IndexType::kInt64, &want_stats).ok());
          const std::string what = std::string(OptimizerName(kind)) + " " + DTypeName(dtype) + " " + v.name +
                                   " decay " + std::to_string(static_cast<int>(mode));
          ExpectSameBytes(Gather(whole, shards, {0, cols}), want, what);
          EXPECT_EQ(shards[0].stats.rows_scaled, want_stats.rows_scaled) << what;
          EXPECT_EQ(shards[0].stats.distinct_rows, want_stats.distinct_rows) << what;
          EXPECT_EQ(shards[0].stats.indices_seen, want_stats.indices_seen) << what;
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, 4 * (4 * 4 + 2 * 2) * 3);
}

// Cuts of `cols` into `world` slices, uneven, one of them empty.
std::vector<std::int64_t> UnevenCuts(std::int64_t cols, int world, std::mt19937_64& rng) {
  std::vector<std::int64_t> c = {0, cols};
  for (int k = 1; k < world; ++k) c.push_back(static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(cols + 1)));
  c.push_back(c[1]);  // a zero-width slice
  std::sort(c.begin(), c.end());
  return c;
}

// SGD, Adagrad and Adam without a constraint are per element: any split
// stores the single-process bits, stochastic rounding included (its bits
// are keyed on the global column).
TEST(ShardedStep, ElementwiseKindsStoreTheSameBitsOnAnySplit) {
  std::mt19937_64 rng(502);
  for (OptimizerKind kind : {OptimizerKind::kSGD, OptimizerKind::kAdagrad, OptimizerKind::kAdam}) {
    for (DType dtype : kAllDTypes) {
      for (const Variant& v : kVariants) {
        if (!Applies(v, dtype) || v.constraint != ConstraintKind::kNone) continue;
        const OptimizerOptions o = VariantOptions(kind, WeightDecayMode::kL2, v, rng);
        const std::int64_t cols = 45;
        StepCase whole = MakeStepCase(o, dtype, dtype, 20, cols, IndicesFor(20, rng), false, rng);
        const std::vector<std::int64_t> cuts = UnevenCuts(cols, 3, rng);
        std::vector<Shard> shards = Split(whole, cuts);
        RunProtocol(&shards);
        StepCase want = whole;
        RowStats want_stats;
        ASSERT_TRUE(want.Run(IndexType::kInt64, &want_stats).ok());
        const std::string what = std::string(OptimizerName(kind)) + " " + DTypeName(dtype) + " " + v.name;
        ExpectSameBytes(Gather(whole, shards, cuts), want, what);
        for (const Shard& s : shards) EXPECT_EQ(s.stats.distinct_rows, want_stats.distinct_rows) << what;
      }
    }
  }
}

// Row-wise Adagrad and the constraint combine row statistics: within the
// bound on several shards, bit-for-bit the same on a second run, the same
// statistics on every shard, and row-wise Adagrad's sum the same on every
// shard (Gather checks it).
TEST(ShardedStep, CombinedKindsStayWithinTheBoundAndRepeatExactly) {
  std::mt19937_64 rng(503);
  for (OptimizerKind kind : kAllOptimizers) {
    for (DType dtype : kAllDTypes) {
      for (const Variant& v : kVariants) {
        if (!Applies(v, dtype)) continue;
        if (kind != OptimizerKind::kRowWiseAdagrad && v.constraint == ConstraintKind::kNone) continue;
        const OptimizerOptions o = VariantOptions(kind, WeightDecayMode::kL2, v, rng);
        const std::int64_t cols = 53;
        StepCase whole = MakeStepCase(o, dtype, dtype, 20, cols, IndicesFor(20, rng), false, rng);
        for (int world : {2, 4}) {
          const std::vector<std::int64_t> cuts = UnevenCuts(cols, world, rng);
          std::vector<Shard> first = Split(whole, cuts);
          std::vector<Shard> second = Split(whole, cuts);
          RunProtocol(&first);
          RunProtocol(&second);
          const std::string what = std::string(OptimizerName(kind)) + " " + DTypeName(dtype) + " " + v.name +
                                   " on " + std::to_string(cuts.size() - 1) + " shards";
          const StepCase got = Gather(whole, first, cuts);
          ExpectSameBytes(Gather(whole, second, cuts), got, what + ", run twice");
          StepCase want = whole;
          RowStats want_stats;
          ASSERT_TRUE(want.Run(IndexType::kInt64, &want_stats).ok());
          ExpectClose(got.table, want.table, what);
          for (int i = 0; i < 2; ++i) ExpectClose(got.state[i], want.state[i], what + " state");
          for (const Shard& s : first) {
            EXPECT_EQ(s.stats.rows_scaled, first[0].stats.rows_scaled) << what;
            EXPECT_EQ(s.stats.nonfinite_rows, 0) << what;
          }
        }
      }
    }
  }
}

// NaN in one shard's columns of one gradient row leaves that table row,
// and its state, on every shard (kSkip), and every shard counts it.
TEST(ShardedStep, NonFiniteGradientInOneSliceLeavesTheRowOnEveryShard) {
  std::mt19937_64 rng(504);
  for (OptimizerKind kind : kAllOptimizers) {
    for (ConstraintKind constraint : {ConstraintKind::kNone, ConstraintKind::kMaxNorm}) {
      OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kNone, rng);
      o.constraint.kind = constraint;
      StepCase whole = MakeStepCase(o, DType::kFloat32, DType::kFloat32, 12, 30, {3, 5, 3, 7}, false, rng);
      whole.grad.Set(2, 25, std::numeric_limits<double>::quiet_NaN());  // row 3's second occurrence
      const std::vector<std::int64_t> cuts = {0, 10, 20, 30};
      std::vector<Shard> shards = Split(whole, cuts);
      RunProtocol(&shards);
      const StepCase got = Gather(whole, shards, cuts);
      StepCase want = whole;
      RowStats want_stats;
      ASSERT_TRUE(want.Run(IndexType::kInt64, &want_stats).ok());
      ASSERT_EQ(want_stats.nonfinite_rows, 1);
      const std::string what = std::string(OptimizerName(kind)) + (constraint == ConstraintKind::kNone ? "" : " max-norm");
      for (std::int64_t c = 0; c < 30; ++c) {
        EXPECT_EQ(got.table.Bits(3, c), whole.table.Bits(3, c)) << what << " col " << c;
      }
      for (int i = 0; i < 2; ++i) {
        for (std::int64_t c = 0; c < got.state[i].cols; ++c) {
          EXPECT_EQ(got.state[i].Bits(3, c), whole.state[i].Bits(3, c)) << what << " state " << i;
        }
      }
      for (const Shard& s : shards) EXPECT_EQ(s.stats.nonfinite_rows, 1) << what;
      if (kind != OptimizerKind::kRowWiseAdagrad && constraint == ConstraintKind::kNone) {
        ExpectSameBytes(got, want, what);  // per element: the other rows too
      }
    }
  }
}

// Under kError the shard holding NaN fails its first phase (kNonFinite)
// with nothing written; a transport then fails every shard.
TEST(ShardedStep, NonFiniteGradientUnderErrorFailsTheFirstPhase) {
  std::mt19937_64 rng(505);
  for (OptimizerKind kind : kAllOptimizers) {
    OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kNone, rng);
    o.non_finite = NonFinitePolicy::kError;
    StepCase whole = MakeStepCase(o, DType::kFloat32, DType::kFloat32, 12, 30, {3, 5, 3, 7}, false, rng);
    whole.grad.Set(1, 12, std::numeric_limits<double>::infinity());
    const std::vector<std::int64_t> cuts = {0, 10, 20, 30};
    std::vector<Shard> shards = Split(whole, cuts);
    RunProtocol(&shards);
    for (std::size_t k = 0; k < shards.size(); ++k) {
      EXPECT_EQ(shards[k].status.code(), k == 1 ? StatusCode::kNonFinite : StatusCode::kOk)
          << OptimizerName(kind) << " shard " << k << ": " << shards[k].status.message();
    }
    ExpectSameBytes(Gather(whole, shards, cuts), whole, OptimizerName(kind));
  }
}

// An empty index list, and slices that are all empty (no global columns):
// nothing written, as OptimizerStep on the whole table.
TEST(ShardedStep, EmptyListAndNoColumnsWriteNothing) {
  std::mt19937_64 rng(506);
  for (OptimizerKind kind : kAllOptimizers) {
    const OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kL2, rng);
    StepCase empty_list = MakeStepCase(o, DType::kBFloat16, DType::kBFloat16, 8, 9, {}, false, rng);
    std::vector<Shard> shards = Split(empty_list, {0, 4, 9});
    RunProtocol(&shards);
    ExpectSameBytes(Gather(empty_list, shards, {0, 4, 9}), empty_list, OptimizerName(kind));
    for (const Shard& s : shards) EXPECT_EQ(s.stats.distinct_rows, 0);

    StepCase no_columns = MakeStepCase(o, DType::kFloat32, DType::kFloat32, 8, 0, {1, 2, 1}, false, rng);
    std::vector<Shard> empty = Split(no_columns, {0, 0, 0});
    RunProtocol(&empty);
    ExpectSameBytes(Gather(no_columns, empty, {0, 0, 0}), no_columns, OptimizerName(kind));
    for (const Shard& s : empty) EXPECT_EQ(s.stats.distinct_rows, 2);
  }
}

// Bad arguments fail with nothing written: a slice outside the global
// columns, combined inputs of the wrong count, a part that is not a
// combined norm, the reference backend, a bad index.
TEST(ShardedStep, BadArgumentsWriteNothing) {
  std::mt19937_64 rng(507);
  const OptimizerOptions o = OptionsFor(OptimizerKind::kRowWiseAdagrad, WeightDecayMode::kNone, rng);
  StepCase c = MakeStepCase(o, DType::kFloat32, DType::kFloat32, 8, 6, {1, 2, 1}, false, rng);
  const StepCase before = c;
  const OptimizerState state = c.StateView();
  const Indices idx = IndexView(c);
  std::vector<std::int64_t> rows;
  std::vector<double> squares;
  std::vector<NormPart> parts;
  Status s = ColumnShardedStepSquares(c.table.view(), state, idx, c.grad.const_view(), o, ColumnSlice{3, 8}, &rows,
                                      &squares);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("columns.col_offset = 3"), std::string::npos) << s.message();
  const std::vector<double> one = {1.0};
  const std::vector<NormPart> one_part = {NormPart{1.0, 1.0}};
  s = ApplyColumnShardedStep(c.table.view(), state, idx, c.grad.const_view(), o, ColumnSlice{0, 6}, one, one_part);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("2 distinct rows"), std::string::npos) << s.message();
  const std::vector<double> two = {1.0, 2.0};
  const std::vector<NormPart> bad = {NormPart{1.0, 1.0}, NormPart{-1.0, 1.0}};
  s = ApplyColumnShardedStep(c.table.view(), state, idx, c.grad.const_view(), o, ColumnSlice{0, 6}, two, bad);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("combined[1]"), std::string::npos) << s.message();
  OptimizerOptions reference = o;
  reference.backend = Backend::kReference;
  s = ColumnShardedStepParts(c.table.view(), state, idx, c.grad.const_view(), reference, ColumnSlice{0, 6}, two,
                             &rows, &parts);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  const std::vector<std::int64_t> out_of_range = {1, 8, 1};
  s = ApplyColumnShardedStep(c.table.view(), state, Indices(std::span<const std::int64_t>(out_of_range)),
                             c.grad.const_view(), o, ColumnSlice{0, 6}, two, std::vector<NormPart>(2));
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  ExpectSameBytes(c, before, "after the rejected calls");
}

TEST(ShardedStep, OptionsDigestSeesEveryDecidingOption) {
  const OptimizerOptions base = RowWiseAdagradOptions(0.05);
  const std::uint64_t d = OptionsDigest(base);
  auto differs = [&](auto change) {
    OptimizerOptions o = base;
    change(o);
    return OptionsDigest(o) != d;
  };
  EXPECT_TRUE(differs([](OptimizerOptions& o) { o.step = 2; }));
  EXPECT_TRUE(differs([](OptimizerOptions& o) { o.lr = 0.06; }));
  EXPECT_TRUE(differs([](OptimizerOptions& o) { o.kind = OptimizerKind::kAdagrad; }));
  EXPECT_TRUE(differs([](OptimizerOptions& o) { o.constraint.kind = ConstraintKind::kMaxNorm; }));
  EXPECT_TRUE(differs([](OptimizerOptions& o) { o.constraint.target = 2.0; }));
  EXPECT_TRUE(differs([](OptimizerOptions& o) { o.rounding = Rounding::kStochastic; }));
  EXPECT_TRUE(differs([](OptimizerOptions& o) { o.seed = 9; }));
  EXPECT_TRUE(differs([](OptimizerOptions& o) { o.non_finite = NonFinitePolicy::kError; }));
  EXPECT_FALSE(differs([](OptimizerOptions& o) { o.num_threads = 3; }));
}

}  // namespace
}  // namespace sparsenorm
