// Every error path of the row operator: the status code, a message that
// names the offending value and where it is, and a table left byte for byte
// as it was.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sparsenorm/rows.h"
#include "test_util.h"

namespace sparsenorm {
namespace {

using testing::TestTable;

class RowsErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(21);
    table_ = TestTable(DType::kFloat32, 100, 16);
    testing::FillRandom(&table_, rng, 2.0);
    pristine_ = table_;
  }

  // Runs the call on the fixture's table (in place) and checks the outcome.
  void ExpectRejected(const std::vector<std::int64_t>& list, const NormalizeOptions& o,
                      StatusCode code, const std::vector<std::string>& fragments) {
    for (Backend backend : {Backend::kAuto, Backend::kReference}) {
      NormalizeOptions ob = o;
      if (ob.backend == Backend::kAuto) ob.backend = backend;
      RowStats stats;
      stats.indices_seen = -42;
      const Status s = NormalizeRows(table_.view(), Indices(std::span<const std::int64_t>(list)), ob, &stats);
      ExpectStatus(s, code, fragments);
      EXPECT_EQ(stats.indices_seen, -42) << "stats written by a rejected call";
    }
  }

  void ExpectStatus(const Status& s, StatusCode code, const std::vector<std::string>& fragments) {
    EXPECT_EQ(s.code(), code) << s.message();
    for (const std::string& f : fragments) {
      EXPECT_NE(s.message().find(f), std::string::npos)
          << "message \"" << s.message() << "\" lacks \"" << f << "\"";
    }
    EXPECT_EQ(table_.bytes, pristine_.bytes) << "a rejected call modified the table";
  }

  TestTable table_;
  TestTable pristine_;
};

TEST_F(RowsErrors, IndexTooLargeNamesPositionValueAndRowCount) {
  ExpectRejected({1, 2, 100, 3}, {}, StatusCode::kOutOfRange,
                 {"indices[2] = 100", "100 table rows", "0 to 99"});
}

TEST_F(RowsErrors, NegativeIndex) {
  ExpectRejected({5, -1}, {}, StatusCode::kOutOfRange, {"indices[1] = -1"});
}

TEST_F(RowsErrors, FirstBadPositionIsReportedWhateverTheThreads) {
  for (std::int64_t size : {100000, 600000}) {  // the longer list is marked in parallel
    std::vector<std::int64_t> list(static_cast<std::size_t>(size), 7);
    list[static_cast<std::size_t>(size * 6 / 10)] = 1000;
    list[static_cast<std::size_t>(size * 9 / 10)] = -5;
    for (int threads : {1, 2, 5}) {
      NormalizeOptions o;
      o.num_threads = threads;
      ExpectRejected(list, o, StatusCode::kOutOfRange,
                     {"indices[" + std::to_string(size * 6 / 10) + "] = 1000"});
    }
  }
}

TEST_F(RowsErrors, BadIndexInInt32List) {
  const std::vector<std::int32_t> list = {0, 99, 100};
  const Status s = NormalizeRows(table_.view(), Indices(std::span<const std::int32_t>(list)));
  ExpectStatus(s, StatusCode::kOutOfRange, {"indices[2] = 100"});
}

TEST_F(RowsErrors, BadIndexOnTheHashSetPath) {
  // 4M rows, few indices: the claim-set path validates separately.
  TestTable big(DType::kFloat32, std::int64_t{1} << 22, 1);
  const std::vector<std::int64_t> list = {3, std::int64_t{1} << 22};
  const auto before = big.bytes;
  const Status s = NormalizeRows(big.view(), Indices(std::span<const std::int64_t>(list)));
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("indices[1] = 4194304"), std::string::npos) << s.message();
  EXPECT_EQ(big.bytes, before);
}

TEST_F(RowsErrors, AnyIndexIntoAnEmptyTable) {
  TestTable empty(DType::kFloat32, 0, 4);
  const std::vector<std::int64_t> list = {0};
  const Status s = NormalizeRows(empty.view(), Indices(std::span<const std::int64_t>(list)));
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("no index is valid"), std::string::npos) << s.message();
}

TEST_F(RowsErrors, BadTargets) {
  for (double t : {-1.0, std::nan(""), HUGE_VAL}) {
    NormalizeOptions o;
    o.target = t;
    ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.target = "});
  }
  NormalizeOptions o;
  o.target = -0.5;
  ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.target = -0.5"});
}

TEST_F(RowsErrors, BadEps) {
  for (double e : {-1e-3, std::nan(""), HUGE_VAL}) {
    NormalizeOptions o;
    o.eps = e;
    ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.eps = "});
  }
}

TEST_F(RowsErrors, BadNormOrder) {
  for (double p : {0.0, -2.0, std::nan(""), -HUGE_VAL}) {
    NormalizeOptions o;
    o.p = p;
    ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.p = "});
  }
}

TEST_F(RowsErrors, BadEnumsAndThreads) {
  NormalizeOptions o;
  o.mode = static_cast<NormMode>(9);
  ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.mode = 9"});
  o = {};
  o.non_finite = static_cast<NonFinitePolicy>(3);
  ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.non_finite = 3"});
  o = {};
  o.num_threads = -1;
  ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.num_threads = -1"});
  o = {};
  o.backend = static_cast<Backend>(5);
  const Status s = NormalizeRows(table_.view(), Indices(), o);
  ExpectStatus(s, StatusCode::kInvalidArgument, {"options.backend = 5"});
}

TEST_F(RowsErrors, BadLayouts) {
  Table t = table_.view();
  t.row_stride = 15;
  ExpectStatus(NormalizeRows(t, Indices()), StatusCode::kInvalidArgument,
               {"table.row_stride = 15", "table.cols = 16"});
  t = table_.view();
  t.rows = -1;
  ExpectStatus(NormalizeRows(t, Indices()), StatusCode::kInvalidArgument, {"table.rows = -1"});
  t = table_.view();
  t.cols = -3;
  ExpectStatus(NormalizeRows(t, Indices()), StatusCode::kInvalidArgument, {"table.cols = -3"});
  t = table_.view();
  t.row_stride = -20;
  ExpectStatus(NormalizeRows(t, Indices()), StatusCode::kInvalidArgument, {"table.row_stride = -20"});
  t = table_.view();
  t.data = nullptr;
  ExpectStatus(NormalizeRows(t, Indices()), StatusCode::kInvalidArgument,
               {"table.data is null", "100 x 16"});
  t = table_.view();
  t.dtype = static_cast<DType>(7);
  ExpectStatus(NormalizeRows(t, Indices()), StatusCode::kUnsupported, {"table.dtype = 7"});
}

TEST_F(RowsErrors, ByteSizeOverflow) {
  Table t = table_.view();
  t.rows = std::int64_t{1} << 40;
  t.cols = std::int64_t{1} << 22;
  ExpectStatus(NormalizeRows(t, Indices()), StatusCode::kInvalidArgument, {"64-bit offset"});
  t = table_.view();
  t.rows = 3;
  t.cols = std::numeric_limits<std::int64_t>::max() / 2;
  ExpectStatus(NormalizeRows(t, Indices()), StatusCode::kInvalidArgument, {"64-bit offset"});
}

TEST_F(RowsErrors, BadIndexLists) {
  ExpectStatus(NormalizeRows(table_.view(), Indices(nullptr, IndexType::kInt64, 3)),
               StatusCode::kInvalidArgument, {"indices.data is null", "indices.size = 3"});
  const std::int64_t one = 1;
  ExpectStatus(NormalizeRows(table_.view(), Indices(&one, IndexType::kInt64, -1)),
               StatusCode::kInvalidArgument, {"indices.size = -1"});
  ExpectStatus(NormalizeRows(table_.view(), Indices(&one, static_cast<IndexType>(4), 1)),
               StatusCode::kUnsupported, {"index type code 4"});
}

TEST_F(RowsErrors, NonFiniteRowUnderErrorPolicy) {
  table_.Set(42, 15, std::nan(""));
  pristine_ = table_;
  NormalizeOptions o;
  o.non_finite = NonFinitePolicy::kError;
  ExpectRejected({1, 2, 42, 2}, o, StatusCode::kNonFinite, {"row 42 (indices[2])"});
}

TEST_F(RowsErrors, OutOfPlaceMismatchesAndOverlap) {
  TestTable out(DType::kFloat32, 100, 15);
  const auto out_before = out.bytes;
  const std::vector<std::int64_t> list = {1};
  Status s = NormalizeRows(table_.const_view(), out.view(), Indices(std::span<const std::int64_t>(list)));
  ExpectStatus(s, StatusCode::kInvalidArgument, {"input is 100 x 16 float32", "output is 100 x 15 float32"});
  EXPECT_EQ(out.bytes, out_before);

  TestTable out64(DType::kFloat64, 100, 16);
  s = NormalizeRows(table_.const_view(), out64.view(), Indices(std::span<const std::int64_t>(list)));
  ExpectStatus(s, StatusCode::kInvalidArgument, {"float64"});

  // Output shifted by one row into the input: overlapping, not identical.
  Table shifted = table_.view();
  shifted.data = static_cast<float*>(table_.data()) + 16;
  shifted.rows = 99;
  ConstTable in = table_.const_view();
  in.rows = 99;
  s = NormalizeRows(in, shifted, Indices(std::span<const std::int64_t>(list)));
  ExpectStatus(s, StatusCode::kInvalidArgument, {"overlap"});

  // A bad index in out-of-place use leaves the output alone too.
  TestTable out_ok(DType::kFloat32, 100, 16);
  const auto ok_before = out_ok.bytes;
  const std::vector<std::int64_t> bad = {0, 500};
  s = NormalizeRows(table_.const_view(), out_ok.view(), Indices(std::span<const std::int64_t>(bad)));
  ExpectStatus(s, StatusCode::kOutOfRange, {"indices[1] = 500"});
  EXPECT_EQ(out_ok.bytes, ok_before);
}

TEST_F(RowsErrors, OutOfPlaceNonFiniteLeavesOutputAlone) {
  table_.Set(10, 0, HUGE_VAL);
  pristine_ = table_;
  TestTable out(DType::kFloat32, 100, 16);
  const auto before = out.bytes;
  NormalizeOptions o;
  o.non_finite = NonFinitePolicy::kError;
  const std::vector<std::int64_t> list = {3, 10};
  const Status s = NormalizeRows(table_.const_view(), out.view(), Indices(std::span<const std::int64_t>(list)), o);
  ExpectStatus(s, StatusCode::kNonFinite, {"row 10 (indices[1])"});
  EXPECT_EQ(out.bytes, before);
}

TEST(RowsErrorsText, StatusCodeNames) {
  EXPECT_STREQ(StatusCodeName(StatusCode::kOutOfRange), "out of range");
  EXPECT_STREQ(DTypeName(static_cast<DType>(9)), "unknown");
  EXPECT_EQ(DTypeSize(static_cast<DType>(9)), 0u);
}

}  // namespace
}  // namespace sparsenorm
