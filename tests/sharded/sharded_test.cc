// The split-phase primitives (sparsenorm/sharded.h) in one process: shards
// are simulated by splitting a table, and the result, put back together, is
// compared with the single-process NormalizeRows on the whole table.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sparsenorm/rows.h"
#include "sparsenorm/sharded.h"
#include "matrix/matrix_test_util.h"
#include "test_util.h"

namespace sparsenorm {
namespace {

using testing::FillRandom;
using testing::kAllDTypes;
using testing::TestTable;
using testing::UlpDistance;

// Cut points 0 = c[0] <= c[1] <= ... <= c[shards] = n, zero-width pieces
// allowed.
std::vector<std::int64_t> RandomCuts(std::int64_t n, int shards, std::mt19937_64& rng) {
  std::uniform_int_distribution<std::int64_t> pick(0, n);
  std::vector<std::int64_t> c(static_cast<std::size_t>(shards + 1));
  c.front() = 0;
  c.back() = n;
  for (int k = 1; k < shards; ++k) c[static_cast<std::size_t>(k)] = pick(rng);
  std::sort(c.begin(), c.end());
  return c;
}

// Columns [c0, c1) of `t`, with a padded stride when `pad`.
TestTable ColumnSlice(const TestTable& t, std::int64_t c0, std::int64_t c1, bool pad) {
  TestTable s(t.dtype, t.rows, c1 - c0, pad ? c1 - c0 + 3 : 0);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    for (std::int64_t k = c0; k < c1; ++k) {
      std::memcpy(s.bytes.data() + static_cast<std::size_t>(r * s.stride + k - c0) * s.element_size(),
                  t.bytes.data() + static_cast<std::size_t>(r * t.stride + k) * t.element_size(),
                  t.element_size());
    }
  }
  return s;
}

struct ShardedRun {
  std::vector<Status> statuses;  // one per shard
  std::vector<RowStats> stats;
};

// The protocol of a column-sharded call, every shard in turn: parts, the
// gather in shard order, each shard combining on its own, apply.
ShardedRun RunColumnSharded(std::vector<TestTable>* shards, Indices indices,
                            const NormalizeOptions& options) {
  const int world = static_cast<int>(shards->size());
  std::vector<std::vector<std::int64_t>> rows(shards->size());
  std::vector<std::vector<NormPart>> parts(shards->size());
  ShardedRun run;
  for (int k = 0; k < world; ++k) {
    Status s = RowNormParts((*shards)[k].const_view(), indices, options, &rows[k], &parts[k]);
    EXPECT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(rows[k], rows[0]);
  }
  std::vector<NormPart> gathered;
  for (int k = 0; k < world; ++k) gathered.insert(gathered.end(), parts[k].begin(), parts[k].end());
  std::vector<NormPart> first;
  for (int k = 0; k < world; ++k) {
    std::vector<NormPart> combined;
    EXPECT_TRUE(CombineGatheredParts(gathered, world, options.p, &combined).ok());
    if (k == 0) first = combined;
    // Every shard holds the same bits.
    for (std::size_t i = 0; i < combined.size(); ++i) {
      EXPECT_EQ(std::memcmp(&combined[i], &first[i], sizeof(NormPart)), 0);
    }
    RowStats st;
    run.statuses.push_back(ApplyRowNorms((*shards)[k].view(), rows[k], combined, options, &st));
    run.stats.push_back(st);
  }
  return run;
}

TestTable Gather(const TestTable& like, const std::vector<TestTable>& shards,
                 const std::vector<std::int64_t>& cuts) {
  TestTable t(like.dtype, like.rows, like.cols, like.stride);
  t.bytes = like.bytes;
  for (std::size_t k = 0; k < shards.size(); ++k) {
    for (std::int64_t r = 0; r < t.rows; ++r) {
      for (std::int64_t c = cuts[k]; c < cuts[k + 1]; ++c) {
        std::memcpy(t.bytes.data() + static_cast<std::size_t>(r * t.stride + c) * t.element_size(),
                    shards[k].bytes.data() +
                        static_cast<std::size_t>(r * shards[k].stride + c - cuts[k]) * t.element_size(),
                    t.element_size());
      }
    }
  }
  return t;
}

// How far a column-sharded result may be from the single-process one: the
// norms differ by the float32 (float64) summation error of both, a few ulps
// of the sum's type, which moves a 16-bit result by at most one ulp. Near
// the bound the decision may differ, but then the scale is 1 within the
// same error, so the elements still agree within it.
double ShardedUlpTolerance(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64 ? 16 : 1;
}

void ExpectClose(const TestTable& got, const TestTable& want, double ulps, const std::string& what) {
  for (std::int64_t r = 0; r < want.rows; ++r) {
    for (std::int64_t c = 0; c < want.cols; ++c) {
      const double a = got.Get(r, c);
      const double b = want.Get(r, c);
      if (std::isnan(a) && std::isnan(b)) continue;
      ASSERT_LE(UlpDistance(want.dtype, a, b), ulps)
          << what << " row " << r << " col " << c << ": " << a << " vs " << b;
    }
  }
}

TEST(ShardedRows, RandomColumnSplitsMatchTheSingleProcessCall) {
  std::mt19937_64 rng(20261207);
  const double ps[] = {2.0, 1.0, kInfinity, 3.0};
  int trials = 0;
  for (DType dtype : kAllDTypes) {
    for (int trial = 0; trial < 40; ++trial, ++trials) {
      const std::int64_t rows = std::uniform_int_distribution<std::int64_t>(1, 40)(rng);
      const std::int64_t cols = std::uniform_int_distribution<std::int64_t>(0, 70)(rng);
      const int world = std::uniform_int_distribution<int>(1, 5)(rng);
      TestTable whole(dtype, rows, cols, trial % 3 == 0 ? cols + 5 : 0);
      FillRandom(&whole, rng, 2.0);
      const std::int64_t count = trial % 7 == 0 ? 0 : std::uniform_int_distribution<std::int64_t>(1, 60)(rng);
      const auto indices = testing::RandomIndices<std::int64_t>(count, rows, rng);
      NormalizeOptions options;
      options.p = ps[trial % 4];
      options.target = std::uniform_real_distribution<double>(0.1, 3.0)(rng);
      options.mode = trial % 5 == 0 ? NormMode::kConstantNorm : NormMode::kMaxNorm;
      const std::string what = testing::Describe(dtype, rows, cols) + " in " + std::to_string(world) +
                               " shards, p = " + std::to_string(options.p);

      const std::vector<std::int64_t> cuts = RandomCuts(cols, world, rng);
      std::vector<TestTable> shards;
      for (int k = 0; k < world; ++k) shards.push_back(ColumnSlice(whole, cuts[k], cuts[k + 1], k % 2 == 1));
      const ShardedRun run = RunColumnSharded(&shards, std::span<const std::int64_t>(indices), options);

      TestTable want = whole;
      RowStats want_stats;
      ASSERT_TRUE(NormalizeRows(want.view(), std::span<const std::int64_t>(indices), options, &want_stats).ok());
      for (int k = 0; k < world; ++k) {
        ASSERT_TRUE(run.statuses[k].ok()) << what << ": " << run.statuses[k].message();
        EXPECT_EQ(run.stats[k].distinct_rows, want_stats.distinct_rows) << what;
        EXPECT_TRUE(shards[k].SentinelsIntact()) << what << " shard " << k;
      }
      const TestTable got = Gather(whole, shards, cuts);
      // One shard: the single-process norm, bit for bit.
      ExpectClose(got, want, world == 1 ? 0 : ShardedUlpTolerance(dtype), what);
    }
  }
  EXPECT_EQ(trials, 160);
}

TEST(ShardedRows, NormsNearTheEndsOfTheFloatRangeStayRight) {
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    const double big = dtype == DType::kFloat32 ? 1e37 : 1e306;
    const double tiny = dtype == DType::kFloat32 ? 1e-42 : 1e-310;  // subnormal
    for (double v : {big, tiny}) {
      TestTable whole(dtype, 2, 8);
      for (std::int64_t c = 0; c < 8; ++c) {
        whole.Set(0, c, v * (c + 1));
        whole.Set(1, c, -v);
      }
      std::vector<TestTable> shards = {ColumnSlice(whole, 0, 3, false), ColumnSlice(whole, 3, 8, false)};
      std::vector<std::int64_t> rows;
      std::vector<NormPart> p0, p1;
      const std::vector<std::int64_t> idx = {0, 1};
      ASSERT_TRUE(RowNormParts(shards[0].const_view(), std::span<const std::int64_t>(idx), {}, &rows, &p0).ok());
      ASSERT_TRUE(RowNormParts(shards[1].const_view(), std::span<const std::int64_t>(idx), {}, &rows, &p1).ok());
      for (std::size_t i = 0; i < 2; ++i) {
        const NormPart pair[2] = {p0[i], p1[i]};
        const double n = NormOfPart(CombineNormParts(pair, 2.0), 2.0);
        std::vector<double> x;
        for (std::int64_t c = 0; c < 8; ++c) x.push_back(whole.Get(static_cast<std::int64_t>(i), c));
        const double want = reference::Norm(x, 2.0);
        ASSERT_TRUE(std::isfinite(n) && n > 0);
        // A subnormal float64 norm (and part) holds fewer bits: about 2^-40
        // relative at 1e-310, in the single-process norm as much as here.
        const double tolerance = dtype == DType::kFloat32 ? 1e-6 : v == tiny ? 1e-11 : 1e-14;
        EXPECT_NEAR(n / want, 1.0, tolerance) << v;
      }
      TestTable want = whole;
      ASSERT_TRUE(NormalizeRows(want.view(), std::span<const std::int64_t>(idx), {}).ok());
      for (const Status& st : RunColumnSharded(&shards, std::span<const std::int64_t>(idx), {}).statuses) {
        ASSERT_TRUE(st.ok()) << st.message();
      }
      ExpectClose(Gather(whole, shards, {0, 3, 8}), want, 16, "extreme values");
    }
  }
}

// A row whose norm is exactly the bound is left by every shard, as by the
// single-process call; one ulp below the bound, every shard scales it.
TEST(ShardedRows, DecisionsAtANormExactlyAtTheBoundAreIdentical) {
  struct Case {
    std::vector<double> row;
    std::vector<std::int64_t> cuts;
    double norm;
  };
  const Case cases[] = {
      {{3.0, 4.0}, {0, 1, 2}, 5.0},
      {{1.0, 1.0, 1.0, 1.0}, {0, 1, 2, 3, 4}, 2.0},
      {{2.0, 0.0, 2.0, 1.0}, {0, 0, 2, 3, 4}, 3.0},
      {{0.75, 1.0}, {0, 1, 2}, 1.25},
  };
  for (DType dtype : kAllDTypes) {
    for (const Case& c : cases) {
      for (double target : {c.norm, std::nextafter(c.norm, 0.0)}) {
        const auto cols = static_cast<std::int64_t>(c.row.size());
        TestTable whole(dtype, 3, cols);
        for (std::int64_t r = 0; r < 3; ++r) {
          for (std::int64_t k = 0; k < cols; ++k) whole.Set(r, k, c.row[static_cast<std::size_t>(k)]);
        }
        const int world = static_cast<int>(c.cuts.size()) - 1;
        std::vector<TestTable> shards;
        for (int k = 0; k < world; ++k) shards.push_back(ColumnSlice(whole, c.cuts[k], c.cuts[k + 1], false));
        const std::vector<std::int64_t> idx = {2, 0};
        NormalizeOptions options;
        options.target = target;
        const ShardedRun run = RunColumnSharded(&shards, std::span<const std::int64_t>(idx), options);
        TestTable want = whole;
        RowStats want_stats;
        ASSERT_TRUE(NormalizeRows(want.view(), std::span<const std::int64_t>(idx), options, &want_stats).ok());
        const bool at_bound = target == c.norm;
        EXPECT_EQ(want_stats.rows_scaled, at_bound ? 0 : 2);
        for (int k = 0; k < world; ++k) EXPECT_EQ(run.stats[k].rows_scaled, want_stats.rows_scaled);
        const TestTable got = Gather(whole, shards, c.cuts);
        EXPECT_EQ(got.bytes, want.bytes) << DTypeName(dtype) << " target " << target;
      }
    }
  }
}

TEST(ShardedRows, NonFiniteRowsAreSkippedOrFailEveryShardBeforeAnyWrite) {
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    std::mt19937_64 rng(7);
    TestTable whole(DType::kFloat32, 6, 10);
    FillRandom(&whole, rng, 2.0);
    whole.Set(4, 8, bad);  // in the last shard only
    const std::vector<std::int64_t> cuts = {0, 4, 4, 10};
    const std::vector<std::int64_t> idx = {1, 4, 5, 4};
    for (NonFinitePolicy policy : {NonFinitePolicy::kSkip, NonFinitePolicy::kError}) {
      std::vector<TestTable> shards;
      for (int k = 0; k < 3; ++k) shards.push_back(ColumnSlice(whole, cuts[k], cuts[k + 1], false));
      const std::vector<TestTable> before = shards;
      NormalizeOptions options;
      options.target = 1e-3;  // every finite row is scaled
      options.non_finite = policy;
      const ShardedRun run = RunColumnSharded(&shards, std::span<const std::int64_t>(idx), options);
      TestTable want = whole;
      const Status want_status = NormalizeRows(want.view(), std::span<const std::int64_t>(idx), options);
      for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(run.statuses[k].code(), want_status.code());
        if (policy == NonFinitePolicy::kError) {
          EXPECT_NE(run.statuses[k].message().find("row 4 "), std::string::npos) << run.statuses[k].message();
          EXPECT_EQ(shards[k].bytes, before[k].bytes) << "shard " << k;
        } else {
          EXPECT_EQ(run.stats[k].nonfinite_rows, 1);
          EXPECT_EQ(run.stats[k].rows_scaled, 2);
        }
      }
      if (policy == NonFinitePolicy::kSkip) ExpectClose(Gather(whole, shards, cuts), want, 16, "skip");
    }
  }
}

TEST(ShardedRows, BadInputIsRejectedAndLeavesTheSliceUnchanged) {
  std::mt19937_64 rng(3);
  TestTable t(DType::kFloat32, 5, 4, 6);
  FillRandom(&t, rng);
  const std::vector<unsigned char> before = t.bytes;
  std::vector<std::int64_t> rows;
  std::vector<NormPart> parts;

  const std::vector<std::int64_t> bad_index = {0, 2, 5};
  Status s = RowNormParts(t.const_view(), std::span<const std::int64_t>(bad_index), {}, &rows, &parts);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("indices[2] = 5"), std::string::npos) << s.message();
  const std::vector<std::int32_t> negative = {-1};
  s = RowNormParts(t.const_view(), std::span<const std::int32_t>(negative), {}, &rows, &parts);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  NormalizeOptions nan_target;
  nan_target.target = std::nan("");
  const std::vector<std::int64_t> good = {1, 3};
  EXPECT_EQ(RowNormParts(t.const_view(), std::span<const std::int64_t>(good), nan_target, &rows, &parts).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RowNormParts(t.const_view(), std::span<const std::int64_t>(good), {}, nullptr, &parts).code(),
            StatusCode::kInvalidArgument);

  ASSERT_TRUE(RowNormParts(t.const_view(), std::span<const std::int64_t>(good), {}, &rows, &parts).ok());
  NormalizeOptions tiny;
  tiny.target = 1e-6;
  const NormPart ok_part{2.0, 1.0};
  struct Bad {
    std::vector<std::int64_t> rows;
    std::vector<NormPart> combined;
    NormalizeOptions options;
    StatusCode code;
    const char* words;
  };
  const Bad bads[] = {
      {{1, 3}, {ok_part}, tiny, StatusCode::kInvalidArgument, "combined has 1"},
      {{1, 5}, {ok_part, ok_part}, tiny, StatusCode::kOutOfRange, "rows[1] = 5"},
      {{3, 1}, {ok_part, ok_part}, tiny, StatusCode::kInvalidArgument, "rows[1] = 1 does not exceed"},
      {{1, 1}, {ok_part, ok_part}, tiny, StatusCode::kInvalidArgument, "strictly ascending"},
      {{1, 3}, {ok_part, NormPart{-1.0, 1.0}}, tiny, StatusCode::kInvalidArgument, "combined[1]"},
      {{1, 3}, {ok_part, NormPart{kInfinity, 1.0}}, tiny, StatusCode::kInvalidArgument, "combined[1]"},
      {{1, 3}, {ok_part, NormPart{1.0, -2.0}}, tiny, StatusCode::kInvalidArgument, "combined[1]"},
      {{1, 3}, {ok_part, ok_part}, nan_target, StatusCode::kInvalidArgument, "target"},
  };
  for (const Bad& b : bads) {
    const Status st = ApplyRowNorms(t.view(), b.rows, b.combined, b.options);
    EXPECT_EQ(st.code(), b.code) << b.words;
    EXPECT_NE(st.message().find(b.words), std::string::npos) << st.message();
    EXPECT_EQ(t.bytes, before);
  }
  // And the same call with good arguments does write.
  ASSERT_TRUE(ApplyRowNorms(t.view(), good, std::vector<NormPart>{ok_part, ok_part}, tiny).ok());
  EXPECT_NE(t.bytes, before);
}

TEST(ShardedRows, CombineNormParts) {
  EXPECT_EQ(NormOfPart(CombineNormParts({}, 2.0), 2.0), 0.0);
  const NormPart zero{0.0, 0.0};
  const NormPart three{3.0, 1.0};
  const NormPart four{4.0, 1.0};
  const NormPart nan{std::nan(""), 0.0};
  EXPECT_EQ(NormOfPart(CombineNormParts(std::vector<NormPart>{zero, three, zero, four}, 2.0), 2.0), 5.0);
  EXPECT_EQ(NormOfPart(CombineNormParts(std::vector<NormPart>{three, four}, 1.0), 1.0), 7.0);
  EXPECT_EQ(NormOfPart(CombineNormParts(std::vector<NormPart>{three, four}, kInfinity), kInfinity), 4.0);
  EXPECT_NEAR(NormOfPart(CombineNormParts(std::vector<NormPart>{three, four}, 3.0), 3.0), std::cbrt(91.0), 1e-14);
  EXPECT_TRUE(std::isnan(NormOfPart(CombineNormParts(std::vector<NormPart>{three, nan, four}, 2.0), 2.0)));
  EXPECT_TRUE(std::isnan(NormOfPart(CombineNormParts(std::vector<NormPart>{three, {kInfinity, 1.0}}, 2.0), 2.0)));
  // Parts near the ends of float64 combine without overflow or underflow.
  EXPECT_NEAR(NormOfPart(CombineNormParts(std::vector<NormPart>{{3e307, 1.0}, {4e307, 1.0}}, 2.0), 2.0) / 5e307,
              1.0, 1e-15);
  EXPECT_NEAR(NormOfPart(CombineNormParts(std::vector<NormPart>{{3e-310, 1.0}, {4e-310, 1.0}}, 2.0), 2.0) / 5e-310,
              1.0, 1e-9);

  std::vector<NormPart> combined;
  const std::vector<NormPart> gathered = {three, zero, four, three};  // 2 shards x 2 rows
  ASSERT_TRUE(CombineGatheredParts(gathered, 2, 2.0, &combined).ok());
  ASSERT_EQ(combined.size(), 2u);
  EXPECT_EQ(NormOfPart(combined[0], 2.0), 5.0);
  EXPECT_EQ(NormOfPart(combined[1], 2.0), 3.0);
  EXPECT_EQ(CombineGatheredParts(gathered, 3, 2.0, &combined).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CombineGatheredParts(gathered, 0, 2.0, &combined).code(), StatusCode::kInvalidArgument);
}

TEST(ShardedRows, DigestsTellListsAndOptionsApart) {
  const std::vector<std::int64_t> a64 = {1, 2, 3};
  const std::vector<std::int32_t> a32 = {1, 2, 3};
  const std::vector<std::int64_t> b = {1, 3, 2};
  const std::vector<std::int64_t> c = {1, 2};
  EXPECT_EQ(IndexListDigest(std::span<const std::int64_t>(a64)), IndexListDigest(std::span<const std::int32_t>(a32)));
  EXPECT_NE(IndexListDigest(std::span<const std::int64_t>(a64)), IndexListDigest(std::span<const std::int64_t>(b)));
  EXPECT_NE(IndexListDigest(std::span<const std::int64_t>(a64)), IndexListDigest(std::span<const std::int64_t>(c)));
  NormalizeOptions o1, o2;
  o2.num_threads = 3;  // may differ per shard
  EXPECT_EQ(OptionsDigest(o1), OptionsDigest(o2));
  o2.eps = 1e-7;
  EXPECT_NE(OptionsDigest(o1), OptionsDigest(o2));
  o2 = o1;
  o2.non_finite = NonFinitePolicy::kError;
  EXPECT_NE(OptionsDigest(o1), OptionsDigest(o2));
}

// Row-sharded tables: each shard normalizes the rows it owns; put back
// together, the table is the single-process result bit for bit (whole rows
// never combine anything).
TEST(ShardedRows, RowShardsNormalizeTheRowsTheyOwn) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 60; ++trial) {
    const DType dtype = kAllDTypes[trial % 4];
    const bool cyclic = trial % 2 == 1;
    const std::int64_t global = std::uniform_int_distribution<std::int64_t>(0, 30)(rng);
    const int world = std::uniform_int_distribution<int>(1, 5)(rng);
    TestTable whole(dtype, global, 6);
    FillRandom(&whole, rng);
    const std::int64_t count = global == 0 || trial % 9 == 0 ? 0 : std::uniform_int_distribution<std::int64_t>(1, 40)(rng);
    const auto indices = testing::RandomIndices<std::int32_t>(count, std::max<std::int64_t>(global, 1), rng);
    std::vector<std::int64_t> cuts = RandomCuts(global, world, rng);
    TestTable want = whole;
    ASSERT_TRUE(NormalizeRows(want.view(), std::span<const std::int32_t>(indices), {}).ok());
    TestTable got = whole;
    for (int k = 0; k < world; ++k) {
      RowOwnership o;
      o.global_rows = global;
      o.cyclic = cyclic;
      o.rank = k;
      o.world = world;
      std::vector<std::int64_t> members;  // the global rows of shard k, in local order
      for (std::int64_t g = 0; g < global; ++g) {
        if (cyclic ? g % world == k : (g >= cuts[k] && g < cuts[k + 1])) members.push_back(g);
      }
      o.local_rows = static_cast<std::int64_t>(members.size());
      o.row_offset = cyclic ? 0 : cuts[k];
      TestTable shard(dtype, o.local_rows, 6);
      for (std::size_t i = 0; i < members.size(); ++i) {
        for (std::int64_t c = 0; c < 6; ++c) shard.Set(static_cast<std::int64_t>(i), c, whole.Get(members[i], c));
      }
      std::vector<std::int64_t> local;
      ASSERT_TRUE(OwnedRowIndices(std::span<const std::int32_t>(indices), o, &local).ok());
      for (std::int64_t l : local) {
        ASSERT_GE(l, 0);
        ASSERT_LT(l, o.local_rows);
      }
      ASSERT_TRUE(NormalizeRows(shard.view(), std::span<const std::int64_t>(local), {}).ok());
      for (std::size_t i = 0; i < members.size(); ++i) {
        for (std::int64_t c = 0; c < 6; ++c) got.Set(members[i], c, shard.Get(static_cast<std::int64_t>(i), c));
      }
    }
    EXPECT_EQ(got.bytes, want.bytes) << "trial " << trial;
  }
}

TEST(ShardedRows, OwnershipIsChecked) {
  const std::vector<std::int64_t> idx = {0, 9, 10};
  std::vector<std::int64_t> local = {42};
  RowOwnership o;
  o.global_rows = 10;
  o.local_rows = 5;
  o.row_offset = 5;
  // Every shard rejects the same bad index, whether it owns it or not.
  Status s = OwnedRowIndices(std::span<const std::int64_t>(idx), o, &local);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("indices[2] = 10"), std::string::npos) << s.message();
  EXPECT_EQ(local, std::vector<std::int64_t>{42});
  o.row_offset = 6;
  EXPECT_EQ(OwnedRowIndices({}, o, &local).code(), StatusCode::kInvalidArgument);
  o.row_offset = -1;
  EXPECT_EQ(OwnedRowIndices({}, o, &local).code(), StatusCode::kInvalidArgument);
  o = RowOwnership{};
  o.cyclic = true;
  o.global_rows = 10;
  o.world = 3;
  o.rank = 1;
  o.local_rows = 3;  // rows 1, 4, 7
  ASSERT_TRUE(OwnedRowIndices(std::span<const std::int64_t>(idx.data(), 2), o, &local).ok());
  EXPECT_TRUE(local.empty());
  const std::vector<std::int64_t> seven = {7, 1, 7};
  ASSERT_TRUE(OwnedRowIndices(std::span<const std::int64_t>(seven), o, &local).ok());
  EXPECT_EQ(local, (std::vector<std::int64_t>{2, 0, 2}));
  o.local_rows = 4;
  s = OwnedRowIndices({}, o, &local);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("owns 3"), std::string::npos) << s.message();
  o.local_rows = 3;
  o.rank = 3;
  EXPECT_EQ(OwnedRowIndices({}, o, &local).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sparsenorm

namespace sparsenorm {
namespace {

// Dense matrices: a row block per shard on axis 0 (the founding formula
// W[:, j] / ||W[:, j]||), a column block per shard on axis 1.
TestTable RowBlock(const TestTable& t, std::int64_t r0, std::int64_t r1) {
  TestTable s(t.dtype, r1 - r0, t.cols);
  for (std::int64_t r = r0; r < r1; ++r) {
    std::memcpy(s.bytes.data() + static_cast<std::size_t>((r - r0) * s.stride) * s.element_size(),
                t.bytes.data() + static_cast<std::size_t>(r * t.stride) * t.element_size(),
                static_cast<std::size_t>(t.cols) * t.element_size());
  }
  return s;
}

struct MatrixRun {
  std::vector<Status> statuses;
  std::vector<MatrixStats> stats;
};

MatrixRun RunShardedMatrix(std::vector<TestTable>* shards, const MatrixOptions& options) {
  const int world = static_cast<int>(shards->size());
  std::vector<NormPart> gathered;
  std::size_t n = 0;
  for (int k = 0; k < world; ++k) {
    std::vector<NormPart> parts;
    const Status s = MatrixNormParts((*shards)[k].const_view(), options, &parts);
    EXPECT_TRUE(s.ok()) << s.message();
    if (k == 0) n = parts.size();
    EXPECT_EQ(parts.size(), n);
    gathered.insert(gathered.end(), parts.begin(), parts.end());
  }
  MatrixRun run;
  for (int k = 0; k < world; ++k) {
    std::vector<NormPart> combined;
    EXPECT_TRUE(CombineGatheredParts(gathered, world, options.norm.p, &combined).ok());
    MatrixStats st;
    run.statuses.push_back(ApplyMatrixNorms((*shards)[k].view(), options, combined, &st));
    run.stats.push_back(st);
  }
  return run;
}

TEST(ShardedMatrix, RandomSplitsMatchTheSingleProcessCall) {
  std::mt19937_64 rng(424242);
  const double ps[] = {2.0, 1.0, kInfinity, 3.0};
  for (DType dtype : kAllDTypes) {
    for (int trial = 0; trial < 32; ++trial) {
      const int axis = trial % 2;
      const std::int64_t rows = std::uniform_int_distribution<std::int64_t>(0, 40)(rng);
      const std::int64_t cols = std::uniform_int_distribution<std::int64_t>(0, 30)(rng);
      const int world = std::uniform_int_distribution<int>(1, 4)(rng);
      TestTable whole(dtype, rows, cols);
      FillRandom(&whole, rng, 2.0);
      MatrixOptions options;
      options.axis = axis;
      options.norm.p = ps[(trial / 2) % 4];
      if (trial % 3 == 0) {
        options.norm.mode = NormMode::kMaxNorm;
        options.norm.target = 0.5;
      }
      if (trial % 5 == 0) options.prune_below = 0.05;
      std::vector<std::int64_t> subset;
      const std::int64_t vectors = axis == 0 ? cols : rows;
      if (trial % 4 == 3 && vectors > 0) {
        subset = testing::RandomIndices<std::int64_t>(vectors / 2 + 1, vectors, rng);
        options.subset = Indices(std::span<const std::int64_t>(subset));
      }
      const std::string what = testing::Describe(dtype, rows, cols) + " axis " + std::to_string(axis) +
                               " in " + std::to_string(world) + " shards, trial " + std::to_string(trial);
      const std::vector<std::int64_t> cuts = RandomCuts(axis == 0 ? rows : cols, world, rng);
      std::vector<TestTable> shards;
      for (int k = 0; k < world; ++k) {
        shards.push_back(axis == 0 ? RowBlock(whole, cuts[k], cuts[k + 1])
                                   : ColumnSlice(whole, cuts[k], cuts[k + 1], false));
      }
      const MatrixRun run = RunShardedMatrix(&shards, options);
      TestTable want = whole;
      MatrixStats want_stats;
      const Status ws = NormalizeMatrix(want.view(), options, &want_stats);
      ASSERT_TRUE(ws.ok()) << ws.message();
      std::int64_t pruned = 0;
      for (int k = 0; k < world; ++k) {
        ASSERT_TRUE(run.statuses[k].ok()) << what << ": " << run.statuses[k].message();
        EXPECT_EQ(run.stats[k].vectors, want_stats.vectors) << what;
        EXPECT_EQ(run.stats[k].zero_vectors, want_stats.zero_vectors) << what;
        pruned += run.stats[k].pruned;
      }
      TestTable got = whole;
      if (axis == 0) {
        for (int k = 0; k < world; ++k) {
          for (std::int64_t r = cuts[k]; r < cuts[k + 1]; ++r) {
            for (std::int64_t c = 0; c < cols; ++c) got.Set(r, c, shards[k].Get(r - cuts[k], c));
          }
        }
      } else {
        got = Gather(whole, shards, cuts);
      }
      // The parts are float64 like the single-process column sums; rows
      // (axis 1) are summed like the row operator's. Pruning at a value
      // within rounding of the threshold may differ: compare unpruned values.
      for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; ++c) {
          const double a = got.Get(r, c), b = want.Get(r, c);
          if (options.prune_below > 0 && (a == 0.0 || b == 0.0)) continue;
          ASSERT_LE(UlpDistance(dtype, a, b), ShardedUlpTolerance(dtype))
              << what << " at (" << r << ", " << c << "): " << a << " vs " << b;
        }
      }
      if (options.prune_below == 0) {
        EXPECT_EQ(pruned, 0);
      }
    }
  }
}

TEST(ShardedMatrix, FoundingFormulaOnTwoRowBlocks) {
  // W = [[3, 0], [4, 2]] split after row 0: columns (3, 4) / 5 and (0, 2) / 2.
  TestTable w(DType::kFloat64, 2, 2);
  w.Set(0, 0, 3.0);
  w.Set(0, 1, 0.0);
  w.Set(1, 0, 4.0);
  w.Set(1, 1, 2.0);
  std::vector<TestTable> shards = {RowBlock(w, 0, 1), RowBlock(w, 1, 2)};
  const MatrixRun run = RunShardedMatrix(&shards, MatrixOptions{});
  ASSERT_TRUE(run.statuses[0].ok() && run.statuses[1].ok());
  EXPECT_DOUBLE_EQ(shards[0].Get(0, 0), 0.6);
  EXPECT_EQ(shards[0].Get(0, 1), 0.0);
  EXPECT_DOUBLE_EQ(shards[1].Get(0, 0), 0.8);
  EXPECT_EQ(shards[1].Get(0, 1), 1.0);
  EXPECT_EQ(run.stats[0].vectors_scaled, 2);
  // The norms 5 and 2 are exact, so the bits are the single-process call's.
  ASSERT_TRUE(NormalizeMatrix(w.view(), MatrixOptions{}).ok());
  EXPECT_EQ(shards[0].Bits(0, 0), w.Bits(0, 0));
  EXPECT_EQ(shards[1].Bits(0, 0), w.Bits(1, 0));
  EXPECT_EQ(shards[1].Bits(0, 1), w.Bits(1, 1));
}

TEST(ShardedMatrix, NonFiniteAndBadInputChangeNothing) {
  std::mt19937_64 rng(8);
  TestTable w(DType::kFloat32, 6, 5);
  FillRandom(&w, rng);
  w.Set(4, 3, std::nan(""));
  std::vector<TestTable> shards = {RowBlock(w, 0, 2), RowBlock(w, 2, 6)};
  const std::vector<TestTable> before = shards;
  MatrixOptions options;
  options.norm.non_finite = NonFinitePolicy::kError;
  const MatrixRun run = RunShardedMatrix(&shards, options);
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(run.statuses[k].code(), StatusCode::kNonFinite);
    EXPECT_NE(run.statuses[k].message().find("column 3 "), std::string::npos) << run.statuses[k].message();
    EXPECT_EQ(shards[k].bytes, before[k].bytes);
  }
  std::vector<NormPart> parts;
  const std::vector<std::int64_t> bad_subset = {1, 5};
  MatrixOptions o;
  o.subset = Indices(std::span<const std::int64_t>(bad_subset));
  Status s = MatrixNormParts(shards[0].const_view(), o, &parts);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("options.subset[1] = 5"), std::string::npos) << s.message();
  o = MatrixOptions{};
  o.axis = 2;
  EXPECT_EQ(MatrixNormParts(shards[0].const_view(), o, &parts).code(), StatusCode::kInvalidArgument);
  const std::vector<NormPart> four(4, NormPart{1.0, 1.0});
  s = ApplyMatrixNorms(shards[0].view(), MatrixOptions{}, four);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("combined has 4"), std::string::npos) << s.message();
  std::vector<NormPart> five(5, NormPart{1.0, 1.0});
  five[2] = NormPart{-1.0, 1.0};
  EXPECT_EQ(ApplyMatrixNorms(shards[0].view(), MatrixOptions{}, five).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(shards[0].bytes, before[0].bytes);
}

}  // namespace
}  // namespace sparsenorm

// Sparse matrices: a CSR block of rows per shard on axis 0, a CSC block of
// columns per shard on axis 1, compared with NormalizeMatrix on the whole
// matrix in the same format.
namespace sparsenorm {
namespace {

using testing::BuildSparse;
using testing::Order;
using testing::RandomSpec;
using testing::TestSparse;
using testing::Triplet;

// The block of `t` with major coordinate (rows on axis 0, columns on axis 1)
// in [m0, m1), renumbered from 0, in the axis' layout.
TestSparse SparseBlock(const std::vector<Triplet>& t, std::int64_t rows, std::int64_t cols, int axis,
                       std::int64_t m0, std::int64_t m1, DType dtype, IndexType itype,
                       std::mt19937_64& rng) {
  std::vector<Triplet> mine;
  for (const Triplet& e : t) {
    const std::int64_t major = axis == 0 ? e.r : e.c;
    if (major < m0 || major >= m1) continue;
    mine.push_back(axis == 0 ? Triplet{e.r - m0, e.c, e.v} : Triplet{e.r, e.c - m0, e.v});
  }
  return BuildSparse(axis == 0 ? SparseFormat::kCSR : SparseFormat::kCSC, axis == 0 ? m1 - m0 : rows,
                     axis == 0 ? cols : m1 - m0, mine, dtype, itype, Order::kSorted, rng);
}

MatrixRun RunShardedSparse(std::vector<TestSparse>* shards, const MatrixOptions& options) {
  const int world = static_cast<int>(shards->size());
  std::vector<NormPart> gathered;
  std::size_t n = 0;
  for (int k = 0; k < world; ++k) {
    std::vector<NormPart> parts;
    const Status s = MatrixNormParts(*(*shards)[k].view(), options, &parts);
    EXPECT_TRUE(s.ok()) << s.message();
    if (k == 0) n = parts.size();
    EXPECT_EQ(parts.size(), n);
    gathered.insert(gathered.end(), parts.begin(), parts.end());
  }
  MatrixRun run;
  for (int k = 0; k < world; ++k) {
    std::vector<NormPart> combined;
    EXPECT_TRUE(CombineGatheredParts(gathered, world, options.norm.p, &combined).ok());
    MatrixStats st;
    run.statuses.push_back(ApplyMatrixNorms((*shards)[k].view(), options, combined, &st));
    (*shards)[k].Sync();
    run.stats.push_back(st);
  }
  return run;
}

// The shards put back together as a dense rows x cols matrix.
std::vector<double> GatherDense(const std::vector<TestSparse>& shards, const std::vector<std::int64_t>& cuts,
                                std::int64_t rows, std::int64_t cols, int axis) {
  std::vector<double> d(static_cast<std::size_t>(rows * cols), 0.0);
  for (std::size_t k = 0; k < shards.size(); ++k) {
    const std::vector<double> part = shards[k].Dense();
    for (std::int64_t r = 0; r < shards[k].rows; ++r) {
      for (std::int64_t c = 0; c < shards[k].cols; ++c) {
        const std::int64_t gr = axis == 0 ? r + cuts[k] : r, gc = axis == 0 ? c : c + cuts[k];
        d[static_cast<std::size_t>(gr * cols + gc)] = part[static_cast<std::size_t>(r * shards[k].cols + c)];
      }
    }
  }
  return d;
}

struct SparseCase {
  DType dtype = DType::kFloat32;
  IndexType itype = IndexType::kInt32;
  int axis = 0;
  std::int64_t rows = 0, cols = 0;
  int world = 1;
  MatrixOptions options;
  double duplicates = 0.0;
};

// One random case: the shards' result against the whole matrix's, and the
// shards' stats against its stats.
void CheckSparseCase(const SparseCase& sc, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  RandomSpec spec;
  spec.density = 0.3;
  spec.duplicate_fraction = sc.duplicates;
  std::vector<Triplet> t = testing::RandomTriplets(sc.rows, sc.cols, spec, rng);
  // Explicit zeros: stored entries that add nothing to any norm.
  for (std::int64_t r = 0; r < sc.rows; r += 3) t.push_back({r, (r * 7) % std::max<std::int64_t>(sc.cols, 1), 0.0});
  if (sc.cols == 0) t.clear();
  const SparseFormat format = sc.axis == 0 ? SparseFormat::kCSR : SparseFormat::kCSC;
  TestSparse whole = BuildSparse(format, sc.rows, sc.cols, t, sc.dtype, sc.itype, Order::kSorted, rng);
  const std::vector<std::int64_t> cuts = RandomCuts(sc.axis == 0 ? sc.rows : sc.cols, sc.world, rng);
  std::vector<TestSparse> shards;
  for (int k = 0; k < sc.world; ++k) {
    shards.push_back(SparseBlock(t, sc.rows, sc.cols, sc.axis, cuts[k], cuts[k + 1], sc.dtype, sc.itype, rng));
  }
  // Values as stored (rounded to the dtype), before anything is scaled.
  const std::vector<double> before = whole.Dense();
  std::vector<TestSparse> again = shards;
  const MatrixRun run = RunShardedSparse(&shards, sc.options);
  MatrixStats want_stats;
  const Status ws = NormalizeMatrix(whole.view(), sc.options, &want_stats);
  ASSERT_TRUE(ws.ok()) << ws.message();
  whole.Sync();
  const std::string what = testing::Describe(sc.dtype, sc.rows, sc.cols) + " " +
                           (sc.itype == IndexType::kInt32 ? "int32" : "int64") + " axis " +
                           std::to_string(sc.axis) + " in " + std::to_string(sc.world) + " shards";
  std::int64_t pruned = 0, nnz_before = 0, nnz_after = 0;
  for (int k = 0; k < sc.world; ++k) {
    ASSERT_TRUE(run.statuses[k].ok()) << what << ": " << run.statuses[k].message();
    EXPECT_EQ(run.stats[k].vectors, want_stats.vectors) << what;
    EXPECT_EQ(run.stats[k].zero_vectors, want_stats.zero_vectors) << what;
    EXPECT_EQ(run.stats[k].nonfinite_vectors, 0) << what;
    EXPECT_EQ(run.stats[k].nnz_after, shards[k].nnz) << what;
    pruned += run.stats[k].pruned;
    nnz_before += run.stats[k].nnz_before;
    nnz_after += run.stats[k].nnz_after;
  }
  EXPECT_EQ(nnz_before, want_stats.nnz_before) << what;
  EXPECT_EQ(nnz_after + pruned, nnz_before) << what;
  const std::vector<double> got = GatherDense(shards, cuts, sc.rows, sc.cols, sc.axis);
  const std::vector<double> want = whole.Dense();
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double a = got[i], b = want[i];
    // A value within rounding of the pruning threshold may be kept on one
    // side only.
    if (sc.options.prune_below > 0 && (a == 0.0 || b == 0.0)) continue;
    if (sc.duplicates > 0) {
      // Repeated coordinates: each stored value is scaled on its own and
      // the sum formed here, so compare against the coordinate's size.
      ASSERT_NEAR(a, b, 1e-5 * std::max(1.0, std::fabs(before[i]))) << what << " at " << i;
      continue;
    }
    ASSERT_LE(UlpDistance(sc.dtype, a, b), ShardedUlpTolerance(sc.dtype))
        << what << " at (" << i / static_cast<std::size_t>(std::max<std::int64_t>(sc.cols, 1)) << ", "
        << i % static_cast<std::size_t>(std::max<std::int64_t>(sc.cols, 1)) << "): " << a << " vs " << b;
  }
  if (sc.options.prune_below == 0) {
    EXPECT_EQ(pruned, 0) << what;
    EXPECT_EQ(nnz_after, want_stats.nnz_after) << what;
  }
  // Run to run: the same bits, arrays and all.
  RunShardedSparse(&again, sc.options);
  for (int k = 0; k < sc.world; ++k) EXPECT_TRUE(again[k].SameBytes(shards[k])) << what << " shard " << k;
}

TEST(ShardedSparseMatrix, RandomCsrRowBlocksOnAxis0MatchTheSingleProcessCall) {
  std::uint64_t seed = 1000;
  const double ps[] = {2.0, 1.0, kInfinity, 3.0};
  for (DType dtype : kAllDTypes) {
    for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
      for (int trial = 0; trial < 12; ++trial) {
        std::mt19937_64 rng(++seed);
        SparseCase sc;
        sc.dtype = dtype;
        sc.itype = itype;
        sc.axis = 0;
        sc.rows = std::uniform_int_distribution<std::int64_t>(0, 60)(rng);
        sc.cols = std::uniform_int_distribution<std::int64_t>(0, 40)(rng);
        sc.world = 1 + trial % 4;
        sc.options.norm.p = ps[trial % 4];
        if (trial % 3 == 1) {
          sc.options.norm.mode = NormMode::kMaxNorm;
          sc.options.norm.target = 0.5;
        }
        if (trial % 5 == 2) sc.options.prune_below = 0.05;
        std::vector<std::int64_t> subset;
        if (trial % 4 == 3 && sc.cols > 0) {
          subset = testing::RandomIndices<std::int64_t>(sc.cols / 2 + 1, sc.cols, rng);
          sc.options.subset = Indices(std::span<const std::int64_t>(subset));
        }
        SCOPED_TRACE("trial " + std::to_string(trial));
        CheckSparseCase(sc, seed * 7);
      }
    }
  }
}

TEST(ShardedSparseMatrix, RandomCscColumnBlocksOnAxis1MatchTheSingleProcessCall) {
  std::uint64_t seed = 2000;
  const double ps[] = {2.0, 1.0, kInfinity, 3.0};
  for (DType dtype : kAllDTypes) {
    for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
      for (int trial = 0; trial < 12; ++trial) {
        std::mt19937_64 rng(++seed);
        SparseCase sc;
        sc.dtype = dtype;
        sc.itype = itype;
        sc.axis = 1;
        sc.rows = std::uniform_int_distribution<std::int64_t>(0, 40)(rng);
        sc.cols = std::uniform_int_distribution<std::int64_t>(0, 60)(rng);
        sc.world = 1 + (trial + 1) % 4;
        sc.options.axis = 1;
        sc.options.norm.p = ps[trial % 4];
        if (trial % 3 == 2) sc.options.norm.eps = 1e-3;
        if (trial % 5 == 1) sc.options.prune_below = 0.05;
        std::vector<std::int64_t> subset;
        if (trial % 4 == 2 && sc.rows > 0) {
          subset = testing::RandomIndices<std::int64_t>(sc.rows / 2 + 1, sc.rows, rng);
          sc.options.subset = Indices(std::span<const std::int64_t>(subset));
        }
        SCOPED_TRACE("trial " + std::to_string(trial));
        CheckSparseCase(sc, seed * 7);
      }
    }
  }
}

TEST(ShardedSparseMatrix, RepeatedCoordinatesCountAsTheirSum) {
  for (int axis : {0, 1}) {
    SparseCase sc;
    sc.dtype = DType::kFloat64;
    sc.axis = axis;
    sc.rows = 30;
    sc.cols = 25;
    sc.world = 3;
    sc.options.axis = axis;
    sc.duplicates = 0.3;
    SCOPED_TRACE("axis " + std::to_string(axis));
    CheckSparseCase(sc, 77 + static_cast<std::uint64_t>(axis));
  }
}

TEST(ShardedSparseMatrix, FoundingFormulaOnTwoCsrRowBlocks) {
  // W = [[3, 0], [4, 2]] split after row 0: columns (3, 4) / 5 and (0, 2) / 2.
  std::mt19937_64 rng(5);
  const std::vector<Triplet> t = {{0, 0, 3.0}, {1, 0, 4.0}, {1, 1, 2.0}};
  std::vector<TestSparse> shards = {
      SparseBlock(t, 2, 2, 0, 0, 1, DType::kFloat64, IndexType::kInt32, rng),
      SparseBlock(t, 2, 2, 0, 1, 2, DType::kFloat64, IndexType::kInt64, rng)};
  const MatrixRun run = RunShardedSparse(&shards, MatrixOptions{});
  ASSERT_TRUE(run.statuses[0].ok() && run.statuses[1].ok());
  EXPECT_DOUBLE_EQ(shards[0].Value(0), 0.6);
  EXPECT_DOUBLE_EQ(shards[1].Value(0), 0.8);
  EXPECT_EQ(shards[1].Value(1), 1.0);
  EXPECT_EQ(run.stats[0].vectors_scaled, 2);
  EXPECT_EQ(run.stats[1].nnz_after, 2);
  // The norms 5 and 2 are exact, so the bits are the single-process call's.
  TestSparse whole = BuildSparse(SparseFormat::kCSR, 2, 2, t, DType::kFloat64, IndexType::kInt32,
                                 Order::kSorted, rng);
  ASSERT_TRUE(NormalizeMatrix(whole.view(), MatrixOptions{}).ok());
  EXPECT_EQ(shards[0].Bits(0), whole.Bits(0));
  EXPECT_EQ(shards[1].Bits(0), whole.Bits(1));
  EXPECT_EQ(shards[1].Bits(1), whole.Bits(2));
}

TEST(ShardedSparseMatrix, LayoutsWithWholeVectorsAndCooAreRejected) {
  std::mt19937_64 rng(6);
  const std::vector<Triplet> t = {{0, 0, 1.0}, {1, 2, 2.0}};
  TestSparse csr = BuildSparse(SparseFormat::kCSR, 2, 3, t, DType::kFloat32, IndexType::kInt32, Order::kSorted, rng);
  TestSparse csc = BuildSparse(SparseFormat::kCSC, 2, 3, t, DType::kFloat32, IndexType::kInt32, Order::kSorted, rng);
  TestSparse coo = BuildSparse(SparseFormat::kCOO, 2, 3, t, DType::kFloat32, IndexType::kInt32, Order::kSorted, rng);
  const TestSparse csr0 = csr, csc0 = csc, coo0 = coo;
  std::vector<NormPart> parts;
  MatrixOptions axis1;
  axis1.axis = 1;
  Status s = MatrixNormParts(*csr.view(), axis1, &parts);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("CSR matrix on axis 1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("NormalizeMatrix"), std::string::npos) << s.message();
  s = MatrixNormParts(*csc.view(), MatrixOptions{}, &parts);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("CSC matrix on axis 0"), std::string::npos) << s.message();
  s = MatrixNormParts(*coo.view(), MatrixOptions{}, &parts);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("COO"), std::string::npos) << s.message();
  const std::vector<NormPart> three(3, NormPart{2.0, 1.0});
  EXPECT_EQ(ApplyMatrixNorms(csr.view(), axis1, std::vector<NormPart>(2, NormPart{2.0, 1.0})).code(),
            StatusCode::kUnsupported);
  EXPECT_EQ(ApplyMatrixNorms(csc.view(), MatrixOptions{}, three).code(), StatusCode::kUnsupported);
  EXPECT_EQ(ApplyMatrixNorms(coo.view(), MatrixOptions{}, three).code(), StatusCode::kUnsupported);
  EXPECT_EQ(ApplyMatrixNorms(nullptr, MatrixOptions{}, three).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(csr.SameBytes(csr0));
  EXPECT_TRUE(csc.SameBytes(csc0));
  EXPECT_TRUE(coo.SameBytes(coo0));
}

TEST(ShardedSparseMatrix, BadSlicesAndNonFiniteNormsChangeNothing) {
  std::mt19937_64 rng(9);
  std::vector<Triplet> t = testing::RandomTriplets(12, 7, RandomSpec{}, rng);
  t.push_back({10, 3, std::nan("")});
  std::vector<TestSparse> shards = {
      SparseBlock(t, 12, 7, 0, 0, 5, DType::kFloat32, IndexType::kInt64, rng),
      SparseBlock(t, 12, 7, 0, 5, 12, DType::kFloat32, IndexType::kInt64, rng)};
  const std::vector<TestSparse> original = shards;
  MatrixOptions options;
  options.norm.non_finite = NonFinitePolicy::kError;
  options.prune_below = 0.1;
  const MatrixRun run = RunShardedSparse(&shards, options);
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(run.statuses[k].code(), StatusCode::kNonFinite);
    EXPECT_NE(run.statuses[k].message().find("column 3 "), std::string::npos) << run.statuses[k].message();
    EXPECT_TRUE(shards[k].SameBytes(original[k])) << "shard " << k;
  }

  std::vector<NormPart> parts;
  const std::vector<NormPart> seven(7, NormPart{1.0, 1.0});
  // A column index out of range in the second shard, in both calls.
  TestSparse bad = original[1];
  ASSERT_GT(bad.nnz, 2);
  bad.indices.Set(2, 7);
  const TestSparse bad0 = bad;
  Status s = MatrixNormParts(*bad.view(), MatrixOptions{}, &parts);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("indices[2] = 7"), std::string::npos) << s.message();
  s = ApplyMatrixNorms(bad.view(), options, seven);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange) << s.message();
  EXPECT_TRUE(bad.SameBytes(bad0));
  // Index pointers that do not end at nnz.
  bad = original[0];
  bad.nnz -= 1;
  s = MatrixNormParts(*bad.view(), MatrixOptions{}, &parts);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
  // A subset entry out of range, and combined norms of the wrong count or
  // not a combination.
  const std::vector<std::int64_t> bad_subset = {1, 7};
  MatrixOptions o;
  o.subset = Indices(std::span<const std::int64_t>(bad_subset));
  s = MatrixNormParts(*shards[0].view(), o, &parts);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("options.subset[1] = 7"), std::string::npos) << s.message();
  s = ApplyMatrixNorms(shards[0].view(), MatrixOptions{}, std::vector<NormPart>(4, NormPart{1.0, 1.0}));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("combined has 4"), std::string::npos) << s.message();
  std::vector<NormPart> negative = seven;
  negative[2] = NormPart{-1.0, 1.0};
  o = MatrixOptions{};
  o.prune_below = 0.5;
  EXPECT_EQ(ApplyMatrixNorms(shards[0].view(), o, negative).code(), StatusCode::kInvalidArgument);
  for (int k = 0; k < 2; ++k) EXPECT_TRUE(shards[k].SameBytes(original[k])) << "shard " << k;
}

}  // namespace
}  // namespace sparsenorm
