// The row operator against the reference implementation, on random inputs
// over every dtype, index type, width, mode, norm order, list shape and
// thread count; plus determinism, statistics, strides, non-finite rows,
// out-of-place use, the hash-set path and tables past 2^31 elements.

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/entry.h"
#include "core/plan.h"
#include "core/validate.h"
#include "cpu/row_set.h"
#include "sparsenorm/rows.h"
#include "test_util.h"

namespace sparsenorm {
namespace {

using testing::TestTable;

enum class ListKind { kRandom, kEmpty, kAllSame, kSorted, kReversed, kEveryRow };

const char* ListName(ListKind k) {
  switch (k) {
    case ListKind::kRandom:
      return "random";
    case ListKind::kEmpty:
      return "empty";
    case ListKind::kAllSame:
      return "all-duplicates";
    case ListKind::kSorted:
      return "sorted";
    case ListKind::kReversed:
      return "reversed";
    case ListKind::kEveryRow:
      return "every-row";
  }
  return "?";
}

std::vector<std::int64_t> MakeList(ListKind kind, std::int64_t rows, std::mt19937_64& rng) {
  std::vector<std::int64_t> v;
  switch (kind) {
    case ListKind::kEmpty:
      break;
    case ListKind::kAllSame:
      v.assign(50, rows / 2);
      break;
    case ListKind::kEveryRow:
      v.resize(static_cast<std::size_t>(rows));
      std::iota(v.begin(), v.end(), 0);
      std::shuffle(v.begin(), v.end(), rng);
      break;
    default:
      v = testing::RandomIndices<std::int64_t>(rows, rows, rng);  // repeats likely
      if (kind == ListKind::kSorted) std::sort(v.begin(), v.end());
      if (kind == ListKind::kReversed) std::sort(v.rbegin(), v.rend());
  }
  return v;
}

// Calls NormalizeRows with the list converted to `itype`.
Status CallRows(TestTable* t, const std::vector<std::int64_t>& list, IndexType itype,
                const NormalizeOptions& o, RowStats* stats) {
  if (itype == IndexType::kInt32) {
    std::vector<std::int32_t> l32(list.begin(), list.end());
    return NormalizeRows(t->view(), Indices(std::span<const std::int32_t>(l32)), o, stats);
  }
  return NormalizeRows(t->view(), Indices(std::span<const std::int64_t>(list)), o, stats);
}

// Tunings that force each way of finding the distinct rows, the row bitmap
// and the hash set of the indices, so that a test covers both whatever the
// planner picks for its sizes.
struct DedupCase {
  const char* name;
  Tuning tuning;
};

std::vector<DedupCase> DedupCases() {
  Tuning bitmap;
  bitmap.bitmap_bytes_per_index = bitmap.large_bitmap_bytes_per_index = std::int64_t{1} << 30;
  Tuning hash;
  hash.bitmap_bytes_per_index = hash.large_bitmap_bytes_per_index = hash.bitmap_slack_bytes = 0;
  return {{"bitmap", bitmap}, {"hash set", hash}};
}

// In place through the front end with a given tuning.
Status CallRowsTuned(TestTable* t, const std::vector<std::int64_t>& list, IndexType itype,
                     const NormalizeOptions& o, const Tuning& tuning, RowStats* stats) {
  std::vector<std::int32_t> l32(list.begin(), list.end());
  const Indices indices = itype == IndexType::kInt32 ? Indices(std::span<const std::int32_t>(l32))
                                                     : Indices(std::span<const std::int64_t>(list));
  return detail::NormalizeRows(ConstTable(t->view()), t->view(), indices, o, false, tuning, stats);
}

// One deduplication's run against the reference's result.
void CompareOneWithReference(const TestTable& base, const TestTable& ref, const RowStats& rs,
                             const std::vector<std::int64_t>& list, IndexType itype,
                             const NormalizeOptions& o, const DedupCase& dedup,
                             const std::string& what) {
  TestTable fast = base;
  RowStats fs;
  ASSERT_TRUE(CallRowsTuned(&fast, list, itype, o, dedup.tuning, &fs).ok()) << what;
  EXPECT_EQ(fs.indices_seen, static_cast<std::int64_t>(list.size())) << what;
  EXPECT_EQ(fs.distinct_rows, rs.distinct_rows) << what;
  EXPECT_EQ(fs.rows_scaled, rs.rows_scaled) << what;
  EXPECT_EQ(fs.nonfinite_rows, rs.nonfinite_rows) << what;
  ASSERT_TRUE(fast.SentinelsIntact()) << what;

  std::vector<bool> indexed(static_cast<std::size_t>(base.rows), false);
  for (std::int64_t r : list) indexed[static_cast<std::size_t>(r)] = true;
  const double tol = testing::NormUlpTolerance(base.dtype, o.p);
  for (std::int64_t r = 0; r < base.rows; ++r) {
    for (std::int64_t k = 0; k < base.cols; ++k) {
      if (!indexed[static_cast<std::size_t>(r)]) {
        ASSERT_EQ(fast.Bits(r, k), base.Bits(r, k)) << what << ": unindexed row " << r << " changed";
        continue;
      }
      ASSERT_LE(testing::UlpDistance(base.dtype, fast.Get(r, k), ref.Get(r, k)), tol)
          << what << ": row " << r << " col " << k << " fast " << fast.Get(r, k) << " reference "
          << ref.Get(r, k);
    }
  }
}

// Runs the fast path, through each deduplication, and the reference on
// copies of `base` and compares.
void CompareWithReference(const TestTable& base, const std::vector<std::int64_t>& list,
                          IndexType itype, NormalizeOptions o, const std::string& what) {
  TestTable ref = base;
  RowStats rs;
  NormalizeOptions ro = o;
  ro.backend = Backend::kReference;
  ASSERT_TRUE(CallRows(&ref, list, itype, ro, &rs).ok()) << what;
  for (const DedupCase& dedup : DedupCases()) {
    CompareOneWithReference(base, ref, rs, list, itype, o, dedup, what + " " + dedup.name);
  }
}

// Independent of the reference: the norms the result should have.
void CheckResultNorms(const TestTable& before, const TestTable& after,
                      const std::vector<std::int64_t>& list, const NormalizeOptions& o,
                      const std::string& what) {
  const double rel = before.dtype == DType::kFloat64   ? 1e-12
                     : before.dtype == DType::kFloat32 ? 1e-5
                                                       : 2e-2;
  std::vector<double> x(static_cast<std::size_t>(before.cols)), y(x.size());
  for (std::int64_t r : list) {
    for (std::int64_t k = 0; k < before.cols; ++k) {
      x[k] = before.Get(r, k);
      y[k] = after.Get(r, k);
    }
    const double n0 = reference::Norm(x, o.p);
    const double n1 = reference::Norm(y, o.p);
    if (n0 == 0.0) {
      EXPECT_EQ(n1, 0.0) << what;
    } else if (o.mode == NormMode::kMaxNorm && n0 <= o.target) {
      EXPECT_EQ(n1, n0) << what << ": row " << r << " within the max norm changed";
    } else {
      const double want = o.target * n0 / (n0 + o.eps);
      EXPECT_NEAR(n1, want, rel * want + 1e-30) << what << ": row " << r;
    }
  }
}

TEST(Rows, MatchesReferenceOverTheGrid) {
  std::mt19937_64 rng(11);
  const std::int64_t widths[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 257};
  const ListKind lists[] = {ListKind::kRandom, ListKind::kEmpty, ListKind::kAllSame,
                            ListKind::kSorted, ListKind::kReversed, ListKind::kEveryRow};
  int cases = 0;
  for (DType dtype : testing::kAllDTypes) {
    for (std::int64_t cols : widths) {
      const std::int64_t rows = 40;
      TestTable base(dtype, rows, cols, cols + (cols % 3));  // some strided
      testing::FillRandom(&base, rng);
      for (ListKind lk : lists) {
        const std::vector<std::int64_t> list = MakeList(lk, rows, rng);
        for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
          for (NormMode mode : {NormMode::kMaxNorm, NormMode::kConstantNorm}) {
            for (double p : {2.0, 1.0, kInfinity, 3.0, 0.5}) {
              // Thread counts only matter to the splitting, which is the same
              // for every p: vary them on p = 2.
              for (int threads : p == 2.0 ? std::vector<int>{1, 2, 7} : std::vector<int>{1}) {
                NormalizeOptions o;
                o.mode = mode;
                o.p = p;
                o.target = p == 2.0 ? 1.0 : 0.75;
                o.num_threads = threads;
                const std::string what = testing::Describe(dtype, rows, cols) + " list " +
                                         ListName(lk) + " " + IndexTypeName(itype) + " mode " +
                                         std::to_string(static_cast<int>(mode)) + " p " +
                                         std::to_string(p) + " threads " + std::to_string(threads);
                CompareWithReference(base, list, itype, o, what);
                ++cases;
                if (threads == 1 && itype == IndexType::kInt64) {
                  TestTable after = base;
                  ASSERT_TRUE(CallRows(&after, list, itype, o, nullptr).ok());
                  CheckResultNorms(base, after, list, o, what);
                }
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 5000);
}

// The same function on every SIMD target the library carries.
class RowsPerTarget : public testing::PerTarget {};

TEST_P(RowsPerTarget, MatchesReference) {
  std::mt19937_64 rng(12);
  for (DType dtype : testing::kAllDTypes) {
    for (std::int64_t cols : {5, 16, 33, 128, 300}) {
      TestTable base(dtype, 200, cols);
      testing::FillRandom(&base, rng);
      const auto list = MakeList(ListKind::kRandom, base.rows, rng);
      for (double p : {2.0, 1.0, kInfinity}) {
        NormalizeOptions o;
        o.p = p;
        o.num_threads = 2;
        CompareWithReference(base, list, IndexType::kInt64, o,
                             std::string(hwy::TargetName(GetParam())) + " " +
                                 testing::Describe(dtype, base.rows, cols));
      }
    }
  }
}

// Short rows are decided a batch at a time in place (src/cpu/rows_kernels.cc,
// ProcessBatch) and one at a time out of place: the two must store the same
// bits, on every target (1 to 8 float64 lanes), for the rows the batch
// hands back to the one-row path (zero, tiny and huge sums, NaN) as well as
// the common ones, and for rows exactly at the max norm.
TEST_P(RowsPerTarget, ShortRowsBatchedEqualOneAtATime) {
  std::mt19937_64 rng(21);
  for (DType dtype : testing::kAllDTypes) {
    for (std::int64_t cols : {1, 3, 8, 16, 17, 32, 64}) {
      TestTable base(dtype, 300, cols);
      testing::FillRandom(&base, rng, 6.0);
      for (std::int64_t k = 0; k < cols; ++k) {
        base.Set(0, k, 0.0);                                     // zero row
        base.Set(1, k, 1e-30);                                   // sum below the trusted range
        base.Set(2, k, dtype == DType::kFloat16 ? 6e4 : 3e38);   // sum overflows float32
        base.Set(3, k, k == 0 ? std::nan("") : 1.0);             // not finite
        base.Set(4, k, k == 0 ? 1.0 : 0.0);                      // norm exactly 1 for every p
        base.Set(5, k, k == 0 ? 2.0 : 0.0);                      // norm exactly 2
      }
      std::vector<std::int64_t> list = testing::RandomIndices<std::int64_t>(250, base.rows, rng);
      for (std::int64_t r = 0; r < 6; ++r) list.push_back(r);
      for (NormMode mode : {NormMode::kMaxNorm, NormMode::kConstantNorm}) {
        for (double p : {2.0, 1.0}) {
          for (double target : {0.0, 1.0, 2.0}) {
            for (double eps : {0.0, 1e-7}) {
              NormalizeOptions o;
              o.mode = mode;
              o.p = p;
              o.target = target;
              o.eps = eps;
              o.num_threads = 1;
              const std::string what = std::string(hwy::TargetName(GetParam())) + " " +
                                       testing::Describe(dtype, base.rows, cols) + " mode " +
                                       std::to_string(static_cast<int>(mode)) + " p " +
                                       std::to_string(p) + " target " + std::to_string(target) +
                                       " eps " + std::to_string(eps);
              TestTable one_at_a_time(dtype, base.rows, cols);
              RowStats so;
              const Indices indices{std::span<const std::int64_t>(list)};
              ASSERT_TRUE(NormalizeRows(base.const_view(), one_at_a_time.view(), indices, o, &so).ok());
              // In place, through each deduplication.
              for (const DedupCase& dedup : DedupCases()) {
                TestTable batched = base;
                RowStats si;
                ASSERT_TRUE(CallRowsTuned(&batched, list, IndexType::kInt64, o, dedup.tuning, &si).ok());
                EXPECT_EQ(so.rows_scaled, si.rows_scaled) << what << " " << dedup.name;
                EXPECT_EQ(so.nonfinite_rows, si.nonfinite_rows) << what << " " << dedup.name;
                for (std::int64_t r = 0; r < base.rows; ++r) {
                  for (std::int64_t k = 0; k < cols; ++k) {
                    ASSERT_EQ(one_at_a_time.Bits(r, k), batched.Bits(r, k))
                        << what << " " << dedup.name << " row " << r << " col " << k;
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, RowsPerTarget,
                         ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         testing::TargetParamName);

TEST(Rows, BitIdenticalForAnyOrderRepeatsAndThreadCount) {
  std::mt19937_64 rng(13);
  for (DType dtype : testing::kAllDTypes) {
    for (std::int64_t cols : {3, 64, 130}) {
      TestTable base(dtype, 3000, cols);
      testing::FillRandom(&base, rng);
      std::vector<std::int64_t> list = testing::RandomIndices<std::int64_t>(2000, base.rows, rng);
      for (NormMode mode : {NormMode::kMaxNorm, NormMode::kConstantNorm}) {
        NormalizeOptions o;
        o.mode = mode;
        o.num_threads = 1;
        TestTable first = base;
        ASSERT_TRUE(CallRows(&first, list, IndexType::kInt64, o, nullptr).ok());

        std::vector<std::int64_t> sorted = list, reversed = list, shuffled = list, tripled = list;
        std::sort(sorted.begin(), sorted.end());
        std::sort(reversed.rbegin(), reversed.rend());
        std::shuffle(shuffled.begin(), shuffled.end(), rng);
        tripled.insert(tripled.end(), list.begin(), list.end());
        tripled.insert(tripled.end(), list.begin(), list.end());
        std::shuffle(tripled.begin(), tripled.end(), rng);
        const std::vector<std::int64_t>* variants[] = {&list, &sorted, &reversed, &shuffled, &tripled};
        for (const auto* v : variants) {
          for (int threads : {1, 2, 3, 8}) {
            o.num_threads = threads;
            for (const DedupCase& dedup : DedupCases()) {
              TestTable t = base;
              ASSERT_TRUE(CallRowsTuned(&t, *v, IndexType::kInt32, o, dedup.tuning, nullptr).ok());
              ASSERT_EQ(t.bytes, first.bytes)
                  << testing::Describe(dtype, base.rows, cols) << " threads " << threads << " "
                  << dedup.name;
            }
          }
        }
      }
    }
  }
}

// The row bitmap's memory is kept between calls (cpu/row_set.h) and must
// come back with every bit clear, whichever way it was marked (one thread,
// private bitmaps merged, shared atomic words) and whether or not the
// marking failed half way; a bit left set would make the next call on a
// table of that size touch a row nobody named.
TEST(Rows, PooledBitmapComesBackClearFromEveryMarking) {
  std::mt19937_64 rng(61);
  struct Case {
    std::int64_t rows, size;
    int threads;
    bool bad_index;
  };
  const Case cases[] = {
      {100000, 300, 1, false},        // one thread
      {100000, 20000, 2, false},      // private bitmaps, merged
      {100000, 20000, 3, true},       // the same, failing at the last index
      {5000000, 20000, 2, false},     // a sparse bitmap: one thread
      {1000000, 300000, 4, false},    // shared words, atomic
      {1000000, 300000, 4, true},     // the same, failing
      {64 * 4096 + 5, 70000, 2, true}, // a partial last summary word
  };
  for (const Case& c : cases) {
    std::vector<std::int64_t> list = testing::RandomIndices<std::int64_t>(c.size, c.rows, rng);
    if (c.bad_index) list.back() = c.rows;
    const std::uint64_t* memory = nullptr;
    {
      cpu::RowBitmap bitmap;
      ASSERT_TRUE(bitmap.Init(c.rows));
      memory = bitmap.words();
      EXPECT_EQ(bitmap.MarkAll(list.data(), IndexType::kInt64, c.size, c.threads),
                c.bad_index ? c.size - 1 : -1);
      // Every marked row's bit, and its word's summary bit.
      for (std::int64_t i = 0; i + (c.bad_index ? 1 : 0) < c.size; ++i) {
        const std::int64_t w = list[i] >> 6;
        ASSERT_TRUE(bitmap.Test(list[i]));
        ASSERT_TRUE((bitmap.summary()[w >> 6] >> (w & 63)) & 1u) << "row " << list[i];
      }
    }
    cpu::RowBitmap again;
    ASSERT_TRUE(again.Init(c.rows));
    EXPECT_EQ(again.words(), memory) << "the pool should hand back the same memory";
    for (std::int64_t w = 0; w < again.word_count(); ++w) {
      ASSERT_EQ(again.words()[w], 0u) << "rows " << c.rows << " word " << w;
    }
    for (std::int64_t s = 0; s < again.summary_count(); ++s) ASSERT_EQ(again.summary()[s], 0u);
  }
}

// The same through the operator: calls on tables of one size, in place and
// out of place, one of them failing, each touch only the rows of its own
// list.
TEST(Rows, CallsSharingThePooledBitmapTouchOnlyTheirRows) {
  std::mt19937_64 rng(62);
  const std::int64_t rows = 200000;
  TestTable base(DType::kFloat32, rows, 4);
  testing::FillRandom(&base, rng);
  NormalizeOptions o;
  o.mode = NormMode::kConstantNorm;
  for (int round = 0; round < 3; ++round) {
    for (int threads : {1, 2, 3}) {
      o.num_threads = threads;
      const auto first = testing::RandomIndices<std::int64_t>(30000, rows, rng);
      auto failing = testing::RandomIndices<std::int64_t>(30000, rows, rng);
      failing[20000] = -1;
      const auto second = testing::RandomIndices<std::int64_t>(30000, rows, rng);
      TestTable a = base, b = base;
      ASSERT_TRUE(CallRows(&a, first, IndexType::kInt64, o, nullptr).ok());
      if (round == 1) {  // out of place: reads the words, leaves them to the release
        TestTable out = base;
        ASSERT_TRUE(detail::NormalizeRows(ConstTable(base.view()), out.view(),
                                          Indices(std::span<const std::int64_t>(first)), o, true, Tuning{},
                                          nullptr)
                        .ok());
        ASSERT_EQ(out.bytes, a.bytes);
      }
      ASSERT_FALSE(CallRows(&b, failing, IndexType::kInt64, o, nullptr).ok());
      ASSERT_EQ(b.bytes, base.bytes);
      RowStats stats;
      ASSERT_TRUE(CallRows(&b, second, IndexType::kInt64, o, &stats).ok());
      // Rows outside the second list as they were; its own rows changed
      // (constant-norm: every row is rescaled), and no others counted.
      std::vector<char> named(static_cast<std::size_t>(rows), 0);
      for (std::int64_t r : second) named[static_cast<std::size_t>(r)] = 1;
      const std::int64_t row_bytes = 4 * 4;
      std::int64_t distinct = 0;
      for (std::int64_t r = 0; r < rows; ++r) {
        const bool same = std::equal(b.bytes.begin() + r * row_bytes, b.bytes.begin() + (r + 1) * row_bytes,
                                     base.bytes.begin() + r * row_bytes);
        distinct += named[static_cast<std::size_t>(r)];
        ASSERT_EQ(same, !named[static_cast<std::size_t>(r)])
            << "row " << r << " round " << round << " threads " << threads;
      }
      EXPECT_EQ(stats.distinct_rows, distinct);
    }
  }
}

TEST(Rows, LongListsGiveTheSameResultOnAnyThreadCount) {
  // Lists of 256k indices and more are marked in parallel from 4 threads on.
  std::mt19937_64 rng(19);
  TestTable base(DType::kFloat32, 50000, 4);
  testing::FillRandom(&base, rng);
  const auto list = testing::RandomIndices<std::int64_t>(400000, base.rows, rng);
  TestTable first = base;
  RowStats s1;
  NormalizeOptions o;
  o.num_threads = 1;
  ASSERT_TRUE(CallRows(&first, list, IndexType::kInt64, o, &s1).ok());
  for (int threads : {4, 8}) {
    TestTable t = base;
    RowStats s;
    o.num_threads = threads;
    ASSERT_TRUE(CallRows(&t, list, IndexType::kInt32, o, &s).ok());
    EXPECT_EQ(t.bytes, first.bytes) << threads << " threads";
    EXPECT_EQ(s.distinct_rows, s1.distinct_rows);
  }
  CompareWithReference(base, list, IndexType::kInt64, o, "400k indices, 8 threads");
}

TEST(Rows, StatisticsCountDistinctScaledAndNonFinite) {
  TestTable t(DType::kFloat32, 10, 4);
  for (std::int64_t r = 0; r < 10; ++r) {
    for (std::int64_t k = 0; k < 4; ++k) t.Set(r, k, r < 5 ? 0.1 : 3.0);  // norms 0.2 and 6
  }
  t.Set(7, 2, std::nan(""));
  t.Set(8, 0, -HUGE_VAL);
  const std::vector<std::int64_t> list = {0, 1, 1, 6, 6, 6, 7, 8, 9, 0};
  const TestTable before = t;
  RowStats s;
  ASSERT_TRUE(NormalizeRows(t.view(), Indices(std::span<const std::int64_t>(list)), {}, &s).ok());
  EXPECT_EQ(s.indices_seen, 10);
  EXPECT_EQ(s.distinct_rows, 6);   // 0 1 6 7 8 9
  EXPECT_EQ(s.rows_scaled, 2);     // 6 and 9
  EXPECT_EQ(s.nonfinite_rows, 2);  // 7 and 8
  for (std::int64_t k = 0; k < 4; ++k) {
    EXPECT_EQ(t.Bits(7, k), before.Bits(7, k));
    EXPECT_EQ(t.Bits(8, k), before.Bits(8, k));
    EXPECT_EQ(t.Bits(0, k), before.Bits(0, k));
    EXPECT_NEAR(t.Get(6, k), 0.5, 1e-6);
  }
}

TEST(Rows, Caffe2ReferenceRule) {
  // Caffe2's own test oracle: n = ||x|| + 1e-12; scale by norm / n when
  // n > norm or when max-norm is off.
  std::mt19937_64 rng(14);
  for (bool use_max_norm : {true, false}) {
    for (double norm : {1.0, 0.3, 5.0}) {
      TestTable t(DType::kFloat32, 100, 24);
      testing::FillRandom(&t, rng, 1.5);
      const TestTable before = t;
      const auto list = testing::RandomIndices<std::int64_t>(60, t.rows, rng);
      ASSERT_TRUE(NormalizeRows(t.view(), Indices(std::span<const std::int64_t>(list)),
                                Caffe2Options(use_max_norm, norm))
                      .ok());
      for (std::int64_t r : list) {
        double sq = 0;
        for (std::int64_t k = 0; k < t.cols; ++k) sq += before.Get(r, k) * before.Get(r, k);
        const double param_norm = std::sqrt(sq) + 1e-12;
        const bool scale = (use_max_norm && param_norm > norm) || !use_max_norm;
        for (std::int64_t k = 0; k < t.cols; ++k) {
          const double want = scale ? before.Get(r, k) * norm / param_norm : before.Get(r, k);
          EXPECT_NEAR(t.Get(r, k), want, 4e-7 * std::fabs(want) + 1e-30)
              << "use_max_norm " << use_max_norm << " norm " << norm << " row " << r;
        }
      }
    }
  }
}

TEST(Rows, TorchSettingAppliesStrictComparisonAndEps) {
  // torch.embedding_renorm_: scale = max_norm / (norm + 1e-7) when norm > max_norm.
  TestTable t(DType::kFloat64, 3, 2);
  t.Set(0, 0, 3.0);
  t.Set(0, 1, 4.0);  // norm 5
  t.Set(1, 0, 0.6);
  t.Set(1, 1, 0.8);  // norm 1: at the limit, left
  t.Set(2, 0, 0.0);
  t.Set(2, 1, 0.0);
  const std::vector<std::int64_t> list = {0, 1, 2};
  ASSERT_TRUE(NormalizeRows(t.view(), Indices(std::span<const std::int64_t>(list)),
                            TorchEmbeddingRenormOptions(1.0))
                  .ok());
  EXPECT_DOUBLE_EQ(t.Get(0, 0), 3.0 * (1.0 / (5.0 + 1e-7)));
  EXPECT_DOUBLE_EQ(t.Get(0, 1), 4.0 * (1.0 / (5.0 + 1e-7)));
  EXPECT_EQ(t.Get(1, 0), 0.6);
  EXPECT_EQ(t.Get(2, 1), 0.0);
}

TEST(Rows, NonFiniteRowsAreSkippedOrRejected) {
  std::mt19937_64 rng(15);
  for (DType dtype : testing::kAllDTypes) {
    TestTable t(dtype, 50, 37);
    testing::FillRandom(&t, rng);
    t.Set(3, 36, std::nan(""));  // in a tail lane
    t.Set(9, 0, HUGE_VAL);
    t.Set(11, 20, -HUGE_VAL);
    const std::vector<std::int64_t> list = {1, 3, 5, 9, 11, 3, 40};
    {
      TestTable copy = t;
      RowStats s;
      ASSERT_TRUE(NormalizeRows(copy.view(), Indices(std::span<const std::int64_t>(list)), {}, &s).ok());
      EXPECT_EQ(s.nonfinite_rows, 3) << DTypeName(dtype);
      for (std::int64_t r : {3, 9, 11}) {
        for (std::int64_t k = 0; k < t.cols; ++k) ASSERT_EQ(copy.Bits(r, k), t.Bits(r, k));
      }
    }
    for (Backend backend : {Backend::kAuto, Backend::kReference}) {
      TestTable copy = t;
      NormalizeOptions o;
      o.non_finite = NonFinitePolicy::kError;
      o.backend = backend;
      const Status s = NormalizeRows(copy.view(), Indices(std::span<const std::int64_t>(list)), o);
      EXPECT_EQ(s.code(), StatusCode::kNonFinite);
      EXPECT_NE(s.message().find("row 3 (indices[1])"), std::string::npos) << s.message();
      EXPECT_EQ(copy.bytes, t.bytes) << "a rejected call modified the table";
    }
  }
}

TEST(Rows, ExtremeMagnitudesAreNormalizedCorrectly) {
  for (DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kFloat64, DType::kFloat16}) {
    const double huge = dtype == DType::kFloat64 ? 1e300 : dtype == DType::kFloat16 ? 6e4 : 3e38;
    // Subnormal in every type (bfloat16's subnormal step is 2^-133 ~ 9e-41).
    const double tiny = dtype == DType::kFloat64    ? 1e-310
                        : dtype == DType::kFloat16  ? 1e-7
                        : dtype == DType::kBFloat16 ? 1e-39
                                                    : 1e-41;
    TestTable t(dtype, 2, 64);
    for (std::int64_t k = 0; k < 64; ++k) {
      t.Set(0, k, k % 2 ? huge : -huge);
      t.Set(1, k, tiny);
    }
    for (double eps : {1e-12, 0.0}) {
      NormalizeOptions o;
      o.mode = NormMode::kConstantNorm;
      o.eps = eps;
      const std::vector<std::int64_t> list = {0, 1};
      CompareWithReference(t, list, IndexType::kInt64, o, std::string("extreme ") + DTypeName(dtype));
      TestTable after = t;
      ASSERT_TRUE(NormalizeRows(after.view(), Indices(std::span<const std::int64_t>(list)), o).ok());
      // Row 0 has norm 8 * huge: each element becomes +-1/8.
      EXPECT_NEAR(std::fabs(after.Get(0, 5)), 0.125, 0.125 * 1e-2) << DTypeName(dtype);
      if (eps == 0.0) {
        // Row 1, all equal: each element becomes 1/8 whatever its size.
        EXPECT_NEAR(after.Get(1, 5), 0.125, 0.125 * 2e-2) << DTypeName(dtype);
      }
    }
  }
}

TEST(Rows, OutOfPlaceEqualsInPlaceAndLeavesInputAlone) {
  std::mt19937_64 rng(16);
  for (DType dtype : testing::kAllDTypes) {
    for (auto [cols, in_stride, out_stride] :
         {std::tuple{5, 5, 5}, std::tuple{5, 7, 9}, std::tuple{64, 64, 70}, std::tuple{33, 40, 33}}) {
      TestTable in(dtype, 5000, cols, in_stride);
      testing::FillRandom(&in, rng);
      const TestTable in_copy = in;
      const auto list = testing::RandomIndices<std::int64_t>(700, in.rows, rng);
      for (int threads : {1, 2}) {
        NormalizeOptions o;
        o.num_threads = threads;
        TestTable out(dtype, in.rows, cols, out_stride);
        RowStats so, si;
        ASSERT_TRUE(NormalizeRows(in.const_view(), out.view(),
                                  Indices(std::span<const std::int64_t>(list)), o, &so)
                        .ok());
        EXPECT_EQ(in.bytes, in_copy.bytes) << "the input was written";
        EXPECT_TRUE(out.SentinelsIntact());
        TestTable inplace = in;
        ASSERT_TRUE(NormalizeRows(inplace.view(), Indices(std::span<const std::int64_t>(list)), o, &si).ok());
        EXPECT_EQ(so.distinct_rows, si.distinct_rows);
        EXPECT_EQ(so.rows_scaled, si.rows_scaled);
        for (std::int64_t r = 0; r < in.rows; ++r) {
          for (std::int64_t k = 0; k < cols; ++k) {
            ASSERT_EQ(out.Bits(r, k), inplace.Bits(r, k)) << DTypeName(dtype) << " row " << r;
          }
        }
      }
    }
  }
}

TEST(Rows, OutOfPlaceWithEmptyListCopiesTheTable) {
  TestTable in(DType::kBFloat16, 100, 9);
  std::mt19937_64 rng(17);
  testing::FillRandom(&in, rng);
  TestTable out(DType::kBFloat16, 100, 9);
  ASSERT_TRUE(NormalizeRows(in.const_view(), out.view(), Indices()).ok());
  EXPECT_EQ(out.bytes, in.bytes);
}

TEST(Rows, OutOfPlaceOnTheSameMemoryIsInPlace) {
  TestTable t(DType::kFloat32, 10, 3);
  for (std::int64_t r = 0; r < 10; ++r) {
    for (std::int64_t k = 0; k < 3; ++k) t.Set(r, k, 2.0);
  }
  const std::vector<std::int64_t> list = {4};
  ASSERT_TRUE(NormalizeRows(t.const_view(), t.view(), Indices(std::span<const std::int64_t>(list))).ok());
  EXPECT_NEAR(t.Get(4, 0), 1.0 / std::sqrt(3.0), 1e-6);
  EXPECT_EQ(t.Get(5, 0), 2.0);
}

TEST(Rows, EmptyShapesAreValid) {
  RowStats s;
  TestTable none(DType::kFloat32, 0, 8);
  EXPECT_TRUE(NormalizeRows(none.view(), Indices(), {}, &s).ok());
  EXPECT_EQ(s.distinct_rows, 0);
  Table null_table{nullptr, DType::kFloat32, 0, 0, 0};
  EXPECT_TRUE(NormalizeRows(null_table, Indices()).ok());
  TestTable zero_cols(DType::kFloat16, 4, 0);
  const std::vector<std::int64_t> list = {0, 3, 3};
  EXPECT_TRUE(NormalizeRows(zero_cols.view(), Indices(std::span<const std::int64_t>(list)), {}, &s).ok());
  EXPECT_EQ(s.distinct_rows, 2);
  EXPECT_EQ(s.rows_scaled, 0);
}

TEST(Rows, HashSetPathForTablesMuchLargerThanTheList) {
  // 4M rows and 300 indices: the bitmap would be 512 KiB, the claim set a few
  // KiB, so the claim set is used; results must be the same.
  const std::int64_t rows = std::int64_t{1} << 22;
  TestTable t(DType::kFloat32, rows, 2);
  std::mt19937_64 rng(18);
  std::vector<std::int64_t> list = testing::RandomIndices<std::int64_t>(200, rows, rng);
  list.insert(list.end(), list.begin(), list.begin() + 100);  // repeats
  {  // the plan the calls get
    RowsProblem problem;
    ASSERT_TRUE(detail::PrepareRows(ConstTable(t.view()), t.view(), Indices(std::span<const std::int64_t>(list)),
                                    {}, false, &problem, nullptr)
                    .ok());
    ASSERT_FALSE(detail::PlanRows(problem, 0, Tuning{}).use_bitmap);
  }
  for (std::int64_t r : list) {
    t.Set(r, 0, 3.0);
    t.Set(r, 1, 4.0);
  }
  for (int threads : {1, 2, 4}) {
    TestTable copy = t;
    NormalizeOptions o;
    o.num_threads = threads;
    RowStats s;
    ASSERT_TRUE(NormalizeRows(copy.view(), Indices(std::span<const std::int64_t>(list)), o, &s).ok());
    std::vector<std::int64_t> distinct = list;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    EXPECT_EQ(s.distinct_rows, static_cast<std::int64_t>(distinct.size()));
    EXPECT_EQ(s.rows_scaled, s.distinct_rows);
    for (std::int64_t r : distinct) {
      ASSERT_NEAR(copy.Get(r, 0), 0.6, 1e-7);
      ASSERT_NEAR(copy.Get(r, 1), 0.8, 1e-7);
    }
  }
}

TEST(Rows, TablesBeyond2To31Elements) {
  // 2^21 + 3 rows of 1024 float32: 2^31 + 3072 elements (8 GiB of address
  // space). Only the touched pages are ever backed by memory.
  const std::int64_t rows = (std::int64_t{1} << 21) + 3;
  const std::int64_t cols = 1024;
  const std::size_t bytes = static_cast<std::size_t>(rows * cols) * sizeof(float);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) GTEST_SKIP() << "cannot reserve 8 GiB of address space";
  auto* data = static_cast<float*>(mem);
  const std::vector<std::int32_t> list = {static_cast<std::int32_t>(rows - 1),
                                          static_cast<std::int32_t>(rows - 2), 1 << 21, 7};
  for (std::int32_t r : list) {
    for (std::int64_t k = 0; k < cols; ++k) data[r * cols + k] = 2.0f;  // norm 64
  }
  RowStats s;
  const Status st = NormalizeRows(MakeTable(data, rows, cols), Indices(std::span<const std::int32_t>(list)), {}, &s);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(s.rows_scaled, 4);
  for (std::int32_t r : list) {
    EXPECT_FLOAT_EQ(data[r * cols], 2.0f / 64.0f);
    EXPECT_FLOAT_EQ(data[r * cols + cols - 1], 2.0f / 64.0f);
  }
  EXPECT_EQ(data[((std::int64_t{1} << 21) - 1) * cols], 0.0f);  // untouched neighbour
  munmap(mem, bytes);
}

}  // namespace
}  // namespace sparsenorm
