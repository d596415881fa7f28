// Every error path of the matrix normalization: the status code, a message
// that names the offending value and where it is, and a matrix left byte for
// byte as it was (values, indices, indptr, row, col and the nnz field), on
// both backends.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "matrix_test_util.h"
#include "sparsenorm/matrix.h"
#include "test_util.h"

namespace sparsenorm {
namespace {

using testing::BuildSparse;
using testing::Order;
using testing::TestSparse;
using testing::TestTable;

const SparseFormat kFormats[] = {SparseFormat::kCSR, SparseFormat::kCSC, SparseFormat::kCOO};

void ExpectStatus(const Status& s, StatusCode code, const std::vector<std::string>& fragments,
                  const std::string& what) {
  EXPECT_EQ(s.code(), code) << what << ": " << s.message();
  for (const std::string& f : fragments) {
    EXPECT_NE(s.message().find(f), std::string::npos)
        << what << ": message \"" << s.message() << "\" lacks \"" << f << "\"";
  }
  EXPECT_FALSE(s.message().empty());
  EXPECT_EQ(s.message().back(), '.') << "messages are full sentences: " << s.message();
}

class MatrixErrors : public ::testing::Test {
 protected:
  TestSparse Make(SparseFormat format, DType dtype = DType::kFloat32, IndexType itype = IndexType::kInt32) {
    std::mt19937_64 rng(61);
    testing::RandomSpec spec;
    spec.duplicate_fraction = 0.05;
    return BuildSparse(format, 37, 53, testing::RandomTriplets(37, 53, spec, rng), dtype, itype,
                       Order::kShuffled, rng);
  }

  // Runs the call on both backends; each must fail the same way and leave
  // the matrix (and the stats) alone.
  void ExpectSparseRejected(const TestSparse& bad, const MatrixOptions& o, StatusCode code,
                            const std::vector<std::string>& fragments) {
    for (Backend backend : {Backend::kAuto, Backend::kReference}) {
      TestSparse s = bad;
      MatrixOptions ob = o;
      if (ob.norm.backend == Backend::kAuto) ob.norm.backend = backend;
      MatrixStats stats;
      stats.vectors = -42;
      SparseMatrix* view = s.view();
      const Status st = testing::Normalize(view, ob, &stats);
      const std::string what = std::string(testing::FormatName(bad.format)) + " backend " +
                               std::to_string(static_cast<int>(backend));
      ExpectStatus(st, code, fragments, what);
      EXPECT_EQ(view->nnz, bad.nnz) << what << ": nnz written by a rejected call";
      EXPECT_TRUE(s.SameBytes(bad)) << what << ": a rejected call modified the matrix";
      EXPECT_EQ(stats.vectors, -42) << what << ": stats written by a rejected call";
    }
  }

  void ExpectDenseRejected(TestTable* table, const Table& view, const MatrixOptions& o, StatusCode code,
                           const std::vector<std::string>& fragments) {
    const std::vector<unsigned char> before = table->bytes;
    for (Backend backend : {Backend::kAuto, Backend::kReference}) {
      MatrixOptions ob = o;
      if (ob.norm.backend == Backend::kAuto) ob.norm.backend = backend;
      MatrixStats stats;
      stats.vectors = -42;
      ExpectStatus(testing::Normalize(view, ob, &stats), code, fragments, "dense");
      EXPECT_EQ(table->bytes, before) << "a rejected call modified the matrix";
      EXPECT_EQ(stats.vectors, -42);
    }
  }
};

TEST_F(MatrixErrors, BadOptions) {
  struct Case {
    MatrixOptions o;
    std::string fragment;
  };
  std::vector<Case> cases;
  auto add = [&](auto edit, std::string fragment) {
    MatrixOptions o;
    edit(o);
    cases.push_back({o, std::move(fragment)});
  };
  add([](MatrixOptions& o) { o.axis = 2; }, "options.axis = 2");
  add([](MatrixOptions& o) { o.axis = -1; }, "options.axis = -1");
  add([](MatrixOptions& o) { o.prune_below = -0.5; }, "options.prune_below = -0.5");
  add([](MatrixOptions& o) { o.prune_below = std::nan(""); }, "options.prune_below = nan");
  add([](MatrixOptions& o) { o.norm.target = -1; }, "options.target = -1");
  add([](MatrixOptions& o) { o.norm.target = HUGE_VAL; }, "options.target = inf");
  add([](MatrixOptions& o) { o.norm.p = 0; }, "options.p = 0");
  add([](MatrixOptions& o) { o.norm.p = std::nan(""); }, "options.p = nan");
  add([](MatrixOptions& o) { o.norm.eps = -1e-3; }, "options.eps = -0.001");
  add([](MatrixOptions& o) { o.norm.mode = static_cast<NormMode>(9); }, "options.mode = 9");
  add([](MatrixOptions& o) { o.norm.non_finite = static_cast<NonFinitePolicy>(3); }, "options.non_finite = 3");
  add([](MatrixOptions& o) { o.norm.num_threads = -1; }, "options.num_threads = -1");
  add([](MatrixOptions& o) { o.norm.backend = static_cast<Backend>(5); }, "options.backend = 5");
  for (const Case& c : cases) {
    for (SparseFormat format : kFormats) {
      ExpectSparseRejected(Make(format), c.o, StatusCode::kInvalidArgument, {c.fragment});
    }
    TestTable t(DType::kFloat32, 10, 12);
    ExpectDenseRejected(&t, t.view(), c.o, StatusCode::kInvalidArgument, {c.fragment});
  }
}

TEST_F(MatrixErrors, BadSubsets) {
  const std::vector<std::int64_t> big = {1, 2, 53, 4};
  const std::vector<std::int32_t> negative = {0, -3};
  for (SparseFormat format : kFormats) {
    const TestSparse s = Make(format);
    MatrixOptions o;
    o.subset = Indices(std::span<const std::int64_t>(big));
    ExpectSparseRejected(s, o, StatusCode::kOutOfRange, {"options.subset[2] = 53", "53 columns", "0 to 52"});
    o.axis = 1;
    ExpectSparseRejected(s, o, StatusCode::kOutOfRange, {"options.subset[2] = 53", "37 rows"});
    o.subset = Indices(std::span<const std::int32_t>(negative));
    ExpectSparseRejected(s, o, StatusCode::kOutOfRange, {"options.subset[1] = -3"});
    o.subset = Indices(nullptr, IndexType::kInt64, 3);
    ExpectSparseRejected(s, o, StatusCode::kInvalidArgument, {"options.subset.data is null", "size = 3"});
    o.subset = Indices(big.data(), IndexType::kInt64, -1);
    ExpectSparseRejected(s, o, StatusCode::kInvalidArgument, {"options.subset.size = -1"});
    o.subset = Indices(big.data(), static_cast<IndexType>(4), 1);
    ExpectSparseRejected(s, o, StatusCode::kUnsupported, {"index type code 4"});
  }
  TestTable t(DType::kFloat64, 10, 12);
  MatrixOptions o;
  o.subset = Indices(std::span<const std::int64_t>(big));
  ExpectDenseRejected(&t, t.view(), o, StatusCode::kOutOfRange, {"options.subset[2] = 53", "12 columns"});
}

TEST_F(MatrixErrors, BadDenseLayouts) {
  TestTable t(DType::kFloat32, 10, 12, 14);
  Table v = t.view();
  v.row_stride = 11;
  ExpectDenseRejected(&t, v, {}, StatusCode::kInvalidArgument, {"matrix.row_stride = 11", "matrix.cols = 12"});
  v = t.view();
  v.rows = -1;
  ExpectDenseRejected(&t, v, {}, StatusCode::kInvalidArgument, {"matrix.rows = -1"});
  v = t.view();
  v.cols = -2;
  ExpectDenseRejected(&t, v, {}, StatusCode::kInvalidArgument, {"matrix.cols = -2"});
  v = t.view();
  v.data = nullptr;
  ExpectDenseRejected(&t, v, {}, StatusCode::kInvalidArgument, {"matrix.data is null", "10 x 12"});
  v = t.view();
  v.dtype = static_cast<DType>(7);
  ExpectDenseRejected(&t, v, {}, StatusCode::kUnsupported, {"matrix.dtype = 7"});
  v = t.view();
  v.rows = std::int64_t{1} << 40;
  v.cols = std::int64_t{1} << 22;
  v.row_stride = 0;
  ExpectDenseRejected(&t, v, {}, StatusCode::kInvalidArgument, {"64-bit offset"});
}

TEST_F(MatrixErrors, BadSparseShapesAndPointers) {
  EXPECT_EQ(testing::Normalize(static_cast<SparseMatrix*>(nullptr)).code(), StatusCode::kInvalidArgument);
  for (SparseFormat format : kFormats) {
    const TestSparse base = Make(format);
    auto expect = [&](auto edit, StatusCode code, std::vector<std::string> fragments) {
      // The edit applies to the view only: the arrays stay as they are.
      for (Backend backend : {Backend::kAuto, Backend::kReference}) {
        TestSparse s = base;
        SparseMatrix* view = s.view();
        edit(view);
        const SparseMatrix edited = *view;
        MatrixOptions o;
        o.norm.backend = backend;
        ExpectStatus(testing::Normalize(view, o), code, fragments, testing::FormatName(format));
        EXPECT_TRUE(s.SameBytes(base)) << testing::FormatName(format);
        EXPECT_EQ(view->nnz, edited.nnz);
      }
    };
    expect([](SparseMatrix* m) { m->format = static_cast<SparseFormat>(7); }, StatusCode::kUnsupported,
           {"matrix.format = 7"});
    expect([](SparseMatrix* m) { m->dtype = static_cast<DType>(9); }, StatusCode::kUnsupported, {"matrix.dtype = 9"});
    expect([](SparseMatrix* m) { m->index_type = static_cast<IndexType>(3); }, StatusCode::kUnsupported,
           {"matrix.index_type = 3"});
    expect([](SparseMatrix* m) { m->rows = -1; }, StatusCode::kInvalidArgument, {"matrix.rows = -1"});
    expect([](SparseMatrix* m) { m->cols = -4; }, StatusCode::kInvalidArgument, {"matrix.cols = -4"});
    expect([](SparseMatrix* m) { m->nnz = -2; }, StatusCode::kInvalidArgument, {"matrix.nnz = -2"});
    expect([](SparseMatrix* m) { m->values = nullptr; }, StatusCode::kInvalidArgument, {"matrix.values is null"});
    expect([](SparseMatrix* m) { m->nnz = std::int64_t{1} << 62; }, StatusCode::kInvalidArgument,
           {"matrix.values", "64-bit offset"});
    if (format == SparseFormat::kCOO) {
      expect([](SparseMatrix* m) { m->row = nullptr; }, StatusCode::kInvalidArgument, {"matrix.row is null"});
      expect([](SparseMatrix* m) { m->col = nullptr; }, StatusCode::kInvalidArgument, {"matrix.col is null"});
    } else {
      expect([](SparseMatrix* m) { m->indptr = nullptr; }, StatusCode::kInvalidArgument,
             {"matrix.indptr is null"});
      expect([](SparseMatrix* m) { m->indices = nullptr; }, StatusCode::kInvalidArgument,
             {"matrix.indices is null"});
      // A different nnz than the index pointers end at: a length mismatch.
      expect([](SparseMatrix* m) { m->nnz -= 1; }, StatusCode::kInvalidArgument,
             {"but matrix.nnz = ", "must equal the number of stored entries"});
      expect([](SparseMatrix* m) { m->rows = std::numeric_limits<std::int64_t>::max(); m->cols = m->rows; },
             StatusCode::kInvalidArgument, {"matrix."});
    }
  }
}

TEST_F(MatrixErrors, BadIndexPointers) {
  for (SparseFormat format : {SparseFormat::kCSR, SparseFormat::kCSC}) {
    for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
      const TestSparse base = Make(format, DType::kFloat64, itype);
      const std::size_t segments = static_cast<std::size_t>(format == SparseFormat::kCSR ? base.rows : base.cols);
      {
        TestSparse s = base;
        s.indptr.Set(0, 1);
        ExpectSparseRejected(s, {}, StatusCode::kInvalidArgument,
                             {"matrix.indptr[0] = 1", "must start at 0"});
      }
      {
        TestSparse s = base;
        const std::int64_t v4 = s.indptr.Get(4);
        s.indptr.Set(5, v4 - 1);
        ExpectSparseRejected(s, {}, StatusCode::kInvalidArgument,
                             {"matrix.indptr[5] = " + std::to_string(v4 - 1),
                              "less than matrix.indptr[4] = " + std::to_string(v4), "must not decrease"});
      }
      {
        TestSparse s = base;
        s.indptr.Set(segments, base.nnz + 3);
        ExpectSparseRejected(s, {}, StatusCode::kInvalidArgument,
                             {"matrix.indptr[" + std::to_string(segments) + "] = " + std::to_string(base.nnz + 3),
                              "matrix.nnz = " + std::to_string(base.nnz)});
      }
      {
        // The first decrease is reported, whatever the threads.
        TestSparse s = base;
        s.indptr.Set(30, 0);
        s.indptr.Set(10, 0);
        for (int threads : {1, 2, 7}) {
          MatrixOptions o;
          o.norm.num_threads = threads;
          ExpectSparseRejected(s, o, StatusCode::kInvalidArgument, {"matrix.indptr[10] = 0"});
        }
      }
    }
  }
}

TEST_F(MatrixErrors, StoredIndicesOutOfRange) {
  for (SparseFormat format : {SparseFormat::kCSR, SparseFormat::kCSC}) {
    for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
      const TestSparse base = Make(format, DType::kBFloat16, itype);
      const bool csr = format == SparseFormat::kCSR;
      const std::int64_t limit = csr ? base.cols : base.rows;
      const std::int64_t k = base.indptr.Get(6) + 1;  // second entry of segment 6
      ASSERT_LT(k, base.indptr.Get(7));
      for (std::int64_t bad : {limit, std::int64_t{-1}, limit + 1000}) {
        TestSparse s = base;
        s.indices.Set(static_cast<std::size_t>(k), bad);
        for (int axis : {0, 1}) {
          MatrixOptions o;
          o.axis = axis;
          ExpectSparseRejected(s, o, StatusCode::kOutOfRange,
                               {"matrix.indices[" + std::to_string(k) + "] = " + std::to_string(bad),
                                std::string("an entry of ") + (csr ? "row 6" : "column 6"),
                                std::to_string(limit) + (csr ? " columns" : " rows")});
        }
      }
    }
  }
}

TEST_F(MatrixErrors, FirstBadIndexWhateverTheThreads) {
  std::mt19937_64 rng(62);
  testing::RandomSpec spec;
  spec.density = 0.05;
  const auto t = testing::RandomTriplets(2000, 900, spec, rng);
  for (SparseFormat format : kFormats) {
    TestSparse s = BuildSparse(format, 2000, 900, t, DType::kFloat32, IndexType::kInt64, Order::kSorted, rng);
    const std::int64_t k1 = s.nnz * 6 / 10, k2 = s.nnz * 9 / 10;
    testing::IndexArray& arr = format == SparseFormat::kCOO ? s.col : s.indices;
    arr.Set(static_cast<std::size_t>(k2), -5);
    arr.Set(static_cast<std::size_t>(k1), 5000);
    const std::string name = format == SparseFormat::kCOO ? "matrix.col[" : "matrix.indices[";
    for (int threads : {1, 2, 7}) {
      for (int axis : {0, 1}) {
        MatrixOptions o;
        o.axis = axis;
        o.norm.num_threads = threads;
        ExpectSparseRejected(s, o, StatusCode::kOutOfRange, {name + std::to_string(k1) + "] = 5000"});
      }
    }
  }
}

TEST_F(MatrixErrors, CooCoordinatesOutOfRange) {
  for (Order order : {Order::kByRow, Order::kShuffled}) {
    std::mt19937_64 rng(63);
    const TestSparse base = BuildSparse(SparseFormat::kCOO, 37, 53,
                                        testing::RandomTriplets(37, 53, {}, rng), DType::kFloat16,
                                        IndexType::kInt32, order, rng);
    {
      TestSparse s = base;
      s.row.Set(9, 37);
      ExpectSparseRejected(s, {}, StatusCode::kOutOfRange, {"matrix.row[9] = 37", "37 rows", "0 to 36"});
    }
    {
      TestSparse s = base;
      s.col.Set(4, -1);
      s.row.Set(9, 40);
      ExpectSparseRejected(s, {}, StatusCode::kOutOfRange, {"matrix.col[4] = -1", "53 columns"});
    }
    {
      // At the same position, the row is reported first.
      TestSparse s = base;
      s.col.Set(4, 99);
      s.row.Set(4, 99);
      ExpectSparseRejected(s, {}, StatusCode::kOutOfRange, {"matrix.row[4] = 99"});
    }
  }
}

TEST_F(MatrixErrors, NothingIsValidInAnEmptyDimension) {
  std::mt19937_64 rng(64);
  for (SparseFormat format : kFormats) {
    TestSparse s = BuildSparse(format, 3, 4, {{0, 1, 1.0}, {2, 3, 2.0}}, DType::kFloat32, IndexType::kInt32,
                               Order::kSorted, rng);
    // Declare zero columns: every stored column index is now out of range.
    s.cols = 0;
    if (format == SparseFormat::kCSC) continue;  // its indptr would need 1 entry: a different error
    ExpectSparseRejected(s, {}, StatusCode::kOutOfRange, {"] = 1 ", "is out of range"});
  }
}

TEST_F(MatrixErrors, NonFiniteUnderErrorPolicy) {
  for (SparseFormat format : kFormats) {
    TestSparse s = Make(format, DType::kFloat16);
    // Entry 10 of storage: NaN.
    reference::StoreRounded(s.values.data(), s.dtype, 10, std::nan(""));
    const auto [r, c] = s.Coord(10);
    for (int axis : {0, 1}) {
      MatrixOptions o;
      o.axis = axis;
      o.norm.non_finite = NonFinitePolicy::kError;
      const std::string where = axis == 0 ? "column " + std::to_string(c) : "row " + std::to_string(r);
      // Lower vectors may hold a NaN too only if they share it: the reported
      // one is the lowest index holding NaN, here the only one.
      ExpectSparseRejected(s, o, StatusCode::kNonFinite, {where + " holds NaN or infinity", "nothing was modified"});
    }
  }
}

}  // namespace
}  // namespace sparsenorm
