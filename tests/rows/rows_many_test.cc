// NormalizeRowsMany: many tables in one call give what one call per table
// gives, bit for bit, on every thread count; a bad entry anywhere leaves
// every table unchanged and is named in the message.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/entry.h"
#include "sparsenorm/rows.h"
#include "test_util.h"

namespace sparsenorm {
namespace {

using testing::TestTable;

struct Case {
  std::vector<TestTable> tables;
  std::vector<std::vector<std::int64_t>> lists64;
  std::vector<std::vector<std::int32_t>> lists32;
  std::vector<NormalizeOptions> options;

  std::vector<RowsBatchEntry> Entries() {
    std::vector<RowsBatchEntry> e;
    for (std::size_t k = 0; k < tables.size(); ++k) {
      const Indices idx = k % 2 ? Indices(std::span<const std::int32_t>(lists32[k]))
                                : Indices(std::span<const std::int64_t>(lists64[k]));
      e.push_back(RowsBatchEntry{tables[k].view(), idx, options[k]});
    }
    return e;
  }
};

// Tables of every dtype and several shapes, lists with repeats (one empty,
// one past the hash-set threshold), max-norm and constant-norm.
Case MakeCase(std::mt19937_64& rng, int tables) {
  Case c;
  for (int k = 0; k < tables; ++k) {
    const DType dtype = testing::kAllDTypes[k % 4];
    const std::int64_t rows = 50 + 97 * k, cols = 1 + (k * 7) % 40;
    TestTable t(dtype, rows, cols, k % 3 == 0 ? cols + 2 : 0);
    testing::FillRandom(&t, rng);
    const std::int64_t count = k == 3 ? 0 : (k * 131) % 400 + 1;
    std::vector<std::int64_t> list = testing::RandomIndices<std::int64_t>(count, rows, rng);
    c.lists64.push_back(list);
    c.lists32.emplace_back(list.begin(), list.end());
    NormalizeOptions o;
    o.mode = k % 3 == 1 ? NormMode::kConstantNorm : NormMode::kMaxNorm;
    o.target = 0.5 + 0.1 * k;
    o.p = k % 4 == 2 ? 1.0 : 2.0;
    c.options.push_back(o);
    c.tables.push_back(std::move(t));
  }
  return c;
}

TEST(RowsMany, SameBitsAsOneCallPerTable) {
  std::mt19937_64 rng(21);
  for (int threads : {1, 2, 3}) {
    for (Backend backend : {Backend::kAuto, Backend::kReference}) {
      Case c = MakeCase(rng, 9);
      for (auto& o : c.options) {
        o.num_threads = threads;
        o.backend = backend;
      }
      Case separate = c;
      std::vector<RowStats> expected(c.tables.size());
      for (std::size_t k = 0; k < c.tables.size(); ++k) {
        const RowsBatchEntry e = separate.Entries()[k];
        ASSERT_TRUE(NormalizeRows(e.table, e.indices, e.options, &expected[k]).ok());
      }
      std::vector<RowStats> stats(c.tables.size());
      Tuning many;
      many.bytes_per_thread = 1;
      const std::vector<RowsBatchEntry> entries = c.Entries();
      const Status s = detail::NormalizeRowsMany(entries, stats, many);
      ASSERT_TRUE(s.ok()) << s.message();
      for (std::size_t k = 0; k < c.tables.size(); ++k) {
        EXPECT_EQ(c.tables[k].bytes, separate.tables[k].bytes) << "table " << k << " threads " << threads;
        EXPECT_EQ(stats[k].indices_seen, expected[k].indices_seen) << k;
        EXPECT_EQ(stats[k].distinct_rows, expected[k].distinct_rows) << k;
        EXPECT_EQ(stats[k].rows_scaled, expected[k].rows_scaled) << k;
        EXPECT_EQ(stats[k].nonfinite_rows, expected[k].nonfinite_rows) << k;
      }
    }
  }
}

// Any bad entry: its message, named, and no table changed.
void ExpectRefused(Case c, StatusCode code, const std::string& message) {
  const Case before = c;
  std::vector<RowStats> stats(c.tables.size());
  stats[0].rows_scaled = -3;
  for (Backend backend : {Backend::kAuto, Backend::kReference}) {
    for (auto& o : c.options) o.backend = backend;
    const std::vector<RowsBatchEntry> entries = c.Entries();
    const Status s = NormalizeRowsMany(entries, stats);
    EXPECT_EQ(s.code(), code) << s.message();
    EXPECT_NE(s.message().find(message), std::string::npos) << "message: " << s.message();
    EXPECT_EQ(stats[0].rows_scaled, -3);
    for (std::size_t k = 0; k < c.tables.size(); ++k) {
      EXPECT_EQ(c.tables[k].bytes, before.tables[k].bytes) << "table " << k << " changed";
    }
  }
}

TEST(RowsMany, BadIndexInOneTableChangesNoTable) {
  std::mt19937_64 rng(22);
  Case c = MakeCase(rng, 8);
  c.lists64[6][2] = c.tables[6].rows;
  ExpectRefused(c, StatusCode::kOutOfRange, "entries[6]: indices[2] = ");
}

TEST(RowsMany, NonFiniteRowUnderErrorPolicy) {
  std::mt19937_64 rng(23);
  Case c = MakeCase(rng, 6);
  c.options[4].non_finite = NonFinitePolicy::kError;
  c.tables[4].Set(c.lists64[4][0], 0, std::nan(""));
  ExpectRefused(c, StatusCode::kNonFinite, "entries[4]: row ");
}

TEST(RowsMany, BadOptionsOrLayoutNameTheEntry) {
  std::mt19937_64 rng(24);
  Case c = MakeCase(rng, 5);
  c.options[2].target = -1.0;
  ExpectRefused(c, StatusCode::kInvalidArgument, "entries[2]: options.target = -1");
  Case d = MakeCase(rng, 5);
  d.options[3].num_threads = 7;
  ExpectRefused(d, StatusCode::kInvalidArgument, "entries[3].options has num_threads = 7");
}

TEST(RowsMany, TablesSharingMemoryAreRefused) {
  std::mt19937_64 rng(25);
  Case c = MakeCase(rng, 4);
  std::vector<float> shared(100 * 8, 1.0f);
  std::vector<std::int64_t> list = {1, 2};
  std::vector<RowsBatchEntry> entries = c.Entries();
  entries[1] = RowsBatchEntry{MakeTable(shared.data(), 100, 8), Indices(std::span<const std::int64_t>(list)), {}};
  // The same table again, and a view of its lower half.
  entries.push_back(RowsBatchEntry{MakeTable(shared.data() + 400, 50, 8),
                                   Indices(std::span<const std::int64_t>(list)), {}});
  const std::vector<float> before = shared;
  const Status s = NormalizeRowsMany(entries);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("entries[1].table and entries[4].table share memory"), std::string::npos)
      << s.message();
  EXPECT_EQ(shared, before);
  entries.pop_back();
  entries.push_back(entries[1]);
  EXPECT_EQ(NormalizeRowsMany(entries).code(), StatusCode::kInvalidArgument);
}

TEST(RowsMany, EmptyListAndStatsShape) {
  EXPECT_TRUE(NormalizeRowsMany({}).ok());
  std::mt19937_64 rng(26);
  Case c = MakeCase(rng, 3);
  std::vector<RowStats> two(2);
  const std::vector<RowsBatchEntry> entries = c.Entries();
  const Status s = NormalizeRowsMany(entries, two);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("stats has 2 elements but there are 3 entries"), std::string::npos);
}

}  // namespace
}  // namespace sparsenorm
