// The row operator on the device (needs a GPU; skipped without one): against
// the host replay of the kernels bit for bit, the CPU path and the reference
// within the documented tolerance, and every error path with the device
// data left byte for byte unchanged.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gpu_test_util.h"
#include "sparsenorm/cuda.h"
#include "sparsenorm/rows.h"

namespace sparsenorm {
namespace {

using testing::DeviceBuffer;
using testing::DeviceTable;
using testing::GpuTest;
using testing::TestTable;

std::vector<std::int64_t> Distinct(const std::vector<std::int64_t>& list) {
  std::set<std::int64_t> s(list.begin(), list.end());
  return {s.begin(), s.end()};
}

// One in-place device call on `base` with `list` (converted to `itype`);
// returns the device table afterwards.
Status DeviceCall(DeviceTable* t, const std::vector<std::int64_t>& list, IndexType itype,
                  const NormalizeOptions& o, RowStats* stats) {
  if (itype == IndexType::kInt32) {
    DeviceBuffer idx(std::vector<std::int32_t>(list.begin(), list.end()));
    return cuda::NormalizeRows(t->view(), Indices(idx.get(), itype, static_cast<std::int64_t>(list.size())), o,
                               stats);
  }
  DeviceBuffer idx(list);
  return cuda::NormalizeRows(t->view(), Indices(idx.get(), itype, static_cast<std::int64_t>(list.size())), o, stats);
}

void CompareAll(const TestTable& base, const std::vector<std::int64_t>& list, IndexType itype,
                const NormalizeOptions& o, const std::string& what) {
  DeviceTable dev(base);
  RowStats ds;
  ASSERT_TRUE(DeviceCall(&dev, list, itype, o, &ds).ok()) << what;
  const TestTable got = dev.Fetch();
  ASSERT_TRUE(got.SentinelsIntact()) << what;

  TestTable cpu = base;
  RowStats cs;
  ASSERT_TRUE(NormalizeRows(cpu.view(), Indices(std::span<const std::int64_t>(list)), o, &cs).ok()) << what;
  EXPECT_EQ(ds.indices_seen, static_cast<std::int64_t>(list.size())) << what;
  EXPECT_EQ(ds.distinct_rows, cs.distinct_rows) << what;
  EXPECT_EQ(ds.rows_scaled, cs.rows_scaled) << what;
  EXPECT_EQ(ds.nonfinite_rows, cs.nonfinite_rows) << what;

  TestTable emu = base;
  const bool vec = testing::Vectorized(dev.dev.get(), base.stride, base.cols, base.dtype);
  testing::EmulateRows(&emu, Distinct(list), vec, o);
  const bool exact = o.p == 1.0 || o.p == 2.0 || std::isinf(o.p);
  const double tol = testing::DeviceUlpTolerance(base.dtype, o.p);
  for (std::int64_t r = 0; r < base.rows; ++r) {
    for (std::int64_t k = 0; k < base.cols; ++k) {
      if (exact) {
        ASSERT_EQ(got.Bits(r, k), emu.Bits(r, k)) << what << ": row " << r << " col " << k
                                                  << " device " << got.Get(r, k) << " emulated " << emu.Get(r, k);
      } else {
        ASSERT_LE(testing::UlpDistance(base.dtype, got.Get(r, k), emu.Get(r, k)), tol) << what;
      }
      ASSERT_LE(testing::UlpDistance(base.dtype, got.Get(r, k), cpu.Get(r, k)), 2 * tol)
          << what << ": row " << r << " col " << k << " device " << got.Get(r, k) << " cpu " << cpu.Get(r, k);
    }
  }
}

class CudaRows : public GpuTest {};

TEST_F(CudaRows, MatchesEmulationAndCpuOverTheGrid) {
  std::mt19937_64 rng(201);
  const std::int64_t widths[] = {0, 1, 3, 4, 8, 16, 17, 32, 33, 64, 100, 128, 129, 256, 512, 513, 1024, 2048};
  int cases = 0;
  for (DType dtype : testing::kAllDTypes) {
    for (std::int64_t cols : widths) {
      for (std::int64_t extra : {0, 3, 8}) {
        const std::int64_t rows = 40;
        TestTable base(dtype, rows, cols, cols + extra);
        testing::FillRandom(&base, rng);
        std::vector<std::vector<std::int64_t>> lists;
        lists.push_back(testing::RandomIndices<std::int64_t>(rows, rows, rng));
        lists.push_back({});
        lists.push_back(std::vector<std::int64_t>(50, rows / 2));
        std::vector<std::int64_t> every(static_cast<std::size_t>(rows));
        std::iota(every.begin(), every.end(), 0);
        std::shuffle(every.begin(), every.end(), rng);
        lists.push_back(every);
        for (const auto& list : lists) {
          for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
            for (NormMode mode : {NormMode::kMaxNorm, NormMode::kConstantNorm}) {
              for (double p : {2.0, 1.0, kInfinity, 3.0}) {
                NormalizeOptions o;
                o.mode = mode;
                o.p = p;
                o.target = p == 2.0 ? 1.0 : 0.75;
                const std::string what = testing::Describe(dtype, rows, cols) + " stride +" + std::to_string(extra) +
                                         " list " + std::to_string(list.size()) + " " + IndexTypeName(itype) +
                                         " mode " + std::to_string(static_cast<int>(mode)) + " p " + std::to_string(p);
                CompareAll(base, list, itype, o, what);
                ++cases;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 9000);
}

// A table that starts 4 bytes past an aligned address cannot be moved 16
// bytes at a time: the scalar kernels run, and must agree too.
TEST_F(CudaRows, MisalignedTablesTakeTheScalarPath) {
  std::mt19937_64 rng(202);
  TestTable base(DType::kFloat32, 64, 128);
  testing::FillRandom(&base, rng);
  DeviceBuffer buf(base.bytes.size() + 16);
  ASSERT_TRUE(buf.ok());
  buf.Upload(base.bytes.data(), base.bytes.size(), 4);
  const std::vector<std::int64_t> list = testing::RandomIndices<std::int64_t>(100, 64, rng);
  DeviceBuffer idx(list);
  Table t{buf.as<char>() + 4, DType::kFloat32, 64, 128, 0};
  NormalizeOptions o;
  ASSERT_TRUE(cuda::NormalizeRows(t, Indices(idx.get(), IndexType::kInt64, 100), o).ok());
  std::vector<unsigned char> all = buf.Download();
  TestTable got = base;
  std::copy(all.begin() + 4, all.begin() + 4 + static_cast<std::ptrdiff_t>(base.bytes.size()), got.bytes.begin());
  TestTable emu = base;
  testing::EmulateRows(&emu, Distinct(list), /*vectorized=*/false, o);
  EXPECT_EQ(got.bytes, emu.bytes);
}

// Each distinct row is processed exactly once: constant-norm rescales again
// on a second pass (the norm after one pass is target / (1 + eps / n), not
// target), so repeats or a race would show in the bits. The result must
// not depend on the order of the list either.
TEST_F(CudaRows, BitIdenticalForAnyOrderAndRepeats) {
  std::mt19937_64 rng(203);
  for (DType dtype : testing::kAllDTypes) {
    TestTable base(dtype, 20000, 64);
    testing::FillRandom(&base, rng);
    std::vector<std::int64_t> list = testing::RandomIndices<std::int64_t>(300000, 20000, rng);
    for (int i = 0; i < 50000; ++i) list.push_back(7);  // a hot row
    NormalizeOptions o;
    o.mode = NormMode::kConstantNorm;
    o.eps = 1e-3;
    DeviceTable a(base), b(base), once(base);
    ASSERT_TRUE(DeviceCall(&a, list, IndexType::kInt64, o, nullptr).ok());
    std::shuffle(list.begin(), list.end(), rng);
    ASSERT_TRUE(DeviceCall(&b, list, IndexType::kInt32, o, nullptr).ok());
    const std::vector<std::int64_t> distinct = Distinct(list);
    RowStats s;
    ASSERT_TRUE(DeviceCall(&once, distinct, IndexType::kInt64, o, &s).ok());
    EXPECT_EQ(s.distinct_rows, static_cast<std::int64_t>(distinct.size()));
    const TestTable ta = a.Fetch();
    EXPECT_EQ(ta.bytes, b.Fetch().bytes) << DTypeName(dtype);
    EXPECT_EQ(ta.bytes, once.Fetch().bytes) << DTypeName(dtype);
    TestTable emu = base;
    testing::EmulateRows(&emu, distinct, testing::Vectorized(a.dev.get(), 64, 64, dtype), o);
    EXPECT_EQ(ta.bytes, emu.bytes) << DTypeName(dtype);
  }
}

TEST_F(CudaRows, OutOfPlaceEqualsInPlaceAndLeavesInputAlone) {
  std::mt19937_64 rng(204);
  for (DType dtype : testing::kAllDTypes) {
    for (std::int64_t cols : {5, 16, 128, 3000}) {
      TestTable base(dtype, 300, cols, cols + 1);
      testing::FillRandom(&base, rng);
      TestTable out_host(dtype, 300, cols, cols + 4);  // another stride
      const std::vector<std::int64_t> list = testing::RandomIndices<std::int64_t>(200, 300, rng);
      DeviceTable in(base), out(out_host), inplace(base);
      DeviceBuffer idx(list);
      NormalizeOptions o;
      o.target = 0.5;
      RowStats so, si;
      ASSERT_TRUE(cuda::NormalizeRows(in.const_view(), out.view(), Indices(idx.get(), IndexType::kInt64, 200), o, &so).ok());
      ASSERT_TRUE(cuda::NormalizeRows(inplace.view(), Indices(idx.get(), IndexType::kInt64, 200), o, &si).ok());
      EXPECT_EQ(in.Fetch().bytes, base.bytes) << "the input changed";
      const TestTable got = out.Fetch(), want = inplace.Fetch();
      ASSERT_TRUE(got.SentinelsIntact());
      for (std::int64_t r = 0; r < base.rows; ++r) {
        for (std::int64_t k = 0; k < cols; ++k) ASSERT_EQ(got.Bits(r, k), want.Bits(r, k)) << DTypeName(dtype);
      }
      EXPECT_EQ(so.distinct_rows, si.distinct_rows);
      EXPECT_EQ(so.rows_scaled, si.rows_scaled);
    }
  }
}

TEST_F(CudaRows, AsyncOnAStreamWithReusedScratch) {
  std::mt19937_64 rng(205);
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  TestTable base(DType::kBFloat16, 5000, 48);
  testing::FillRandom(&base, rng);
  DeviceTable dev(base);
  TestTable emu = base;
  DeviceBuffer scratch(cuda::RowsScratchBytes(5000, 4000) + 1000);
  NormalizeOptions o = TorchEmbeddingRenormOptions(0.3);
  for (int call = 0; call < 3; ++call) {
    const std::vector<std::int64_t> list = testing::RandomIndices<std::int64_t>(4000, 5000, rng);
    DeviceBuffer idx(list);
    ASSERT_TRUE(cuda::NormalizeRowsAsync(dev.view(), Indices(idx.get(), IndexType::kInt64, 4000), o, scratch.get(),
                                         scratch.bytes(), stream)
                    .ok());
    RowStats s;
    const Status r = cuda::RowsResult(scratch.get(), stream, &s);
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ(s.indices_seen, 4000);
    EXPECT_EQ(s.distinct_rows, static_cast<std::int64_t>(Distinct(list).size()));
    testing::EmulateRows(&emu, Distinct(list), true, o);
    o.target *= 0.9;
  }
  EXPECT_EQ(dev.Fetch().bytes, emu.bytes);
  cudaStreamDestroy(stream);
}

TEST_F(CudaRows, NonFiniteRowsAreSkippedAndCounted) {
  for (DType dtype : testing::kAllDTypes) {
    TestTable base(dtype, 10, 33);
    for (std::int64_t r = 0; r < 10; ++r) {
      for (std::int64_t k = 0; k < 33; ++k) base.Set(r, k, 3.0 + static_cast<double>(k));
    }
    base.Set(2, 5, std::nan(""));
    base.Set(4, 32, HUGE_VAL);
    DeviceTable dev(base);
    RowStats s;
    ASSERT_TRUE(DeviceCall(&dev, {1, 2, 3, 4, 2}, IndexType::kInt64, {}, &s).ok());
    EXPECT_EQ(s.nonfinite_rows, 2);
    EXPECT_EQ(s.rows_scaled, 2);
    const TestTable got = dev.Fetch();
    for (std::int64_t k = 0; k < 33; ++k) {
      EXPECT_EQ(got.Bits(2, k), base.Bits(2, k));
      EXPECT_EQ(got.Bits(4, k), base.Bits(4, k));
    }
  }
}

TEST_F(CudaRows, ExtremeMagnitudes) {
  for (DType dtype : testing::kAllDTypes) {
    const double huge = dtype == DType::kFloat64 ? 1e300 : dtype == DType::kFloat16 ? 6e4 : 3e38;
    const double tiny = dtype == DType::kFloat64 ? 1e-310 : dtype == DType::kFloat16 ? 1e-7 : 1e-41;
    TestTable base(dtype, 2, 100);
    for (std::int64_t k = 0; k < 100; ++k) {
      base.Set(0, k, huge * (k % 2 ? -1 : 1));
      base.Set(1, k, tiny * (1 + k % 3));
    }
    for (double eps : {0.0, 1e-12}) {
      NormalizeOptions o;
      o.mode = NormMode::kConstantNorm;
      o.eps = eps;
      CompareAll(base, {0, 1}, IndexType::kInt64, o, std::string("extreme ") + DTypeName(dtype));
    }
  }
}

// 17,000,000 x 128 float32 is 2.18e9 elements, past 2^31: offsets must be
// 64-bit all the way (torch.embedding_renorm_ on CUDA fails there).
TEST_F(CudaRows, TablesBeyond2To31Elements) {
  const std::int64_t rows = 17000000, cols = 128;
  DeviceBuffer table(static_cast<std::size_t>(rows * cols) * 4);
  if (!table.ok()) GTEST_SKIP() << "cannot allocate 8.7 GB of device memory";
  ASSERT_EQ(cudaMemset(table.get(), 0, table.bytes()), cudaSuccess);
  std::mt19937_64 rng(206);
  TestTable rows_host(DType::kFloat32, 4, cols);
  testing::FillRandom(&rows_host, rng);
  const std::vector<std::int64_t> picked = {0, 8388608, rows - 2, rows - 1};
  for (std::size_t i = 0; i < picked.size(); ++i) {
    table.Upload(rows_host.bytes.data() + i * cols * 4, cols * 4, static_cast<std::size_t>(picked[i] * cols * 4));
  }
  NormalizeOptions o;
  o.mode = NormMode::kConstantNorm;
  for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
    Status s;
    if (itype == IndexType::kInt32) {
      DeviceBuffer idx(std::vector<std::int32_t>(picked.begin(), picked.end()));
      s = cuda::NormalizeRows(Table{table.get(), DType::kFloat32, rows, cols, 0}, Indices(idx.get(), itype, 4), o);
    } else {
      DeviceBuffer idx(picked);
      s = cuda::NormalizeRows(Table{table.get(), DType::kFloat32, rows, cols, 0}, Indices(idx.get(), itype, 4), o);
    }
    ASSERT_TRUE(s.ok()) << s.message();
  }
  TestTable emu = rows_host;
  testing::EmulateRows(&emu, {0, 1, 2, 3}, true, o);
  testing::EmulateRows(&emu, {0, 1, 2, 3}, true, o);  // two calls
  for (std::size_t i = 0; i < picked.size(); ++i) {
    std::vector<unsigned char> got(cols * 4);
    ASSERT_EQ(cudaMemcpy(got.data(), table.as<char>() + picked[i] * cols * 4, cols * 4, cudaMemcpyDeviceToHost),
              cudaSuccess);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), emu.bytes.begin() + static_cast<std::ptrdiff_t>(i * cols * 4)))
        << "row " << picked[i];
  }
}

// ---------------------------------------------------------------------------
// Errors: status, message, and the device data unchanged.

class CudaRowsErrors : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped()) return;
    std::mt19937_64 rng(207);
    TestTable t(DType::kFloat32, 100, 16);
    testing::FillRandom(&t, rng, 2.0);
    table_ = std::make_unique<DeviceTable>(t);
  }

  void ExpectStatus(const Status& s, StatusCode code, const std::vector<std::string>& fragments) {
    EXPECT_EQ(s.code(), code) << s.message();
    for (const std::string& f : fragments) {
      EXPECT_NE(s.message().find(f), std::string::npos) << "message \"" << s.message() << "\" lacks \"" << f << "\"";
    }
    EXPECT_EQ(table_->Fetch().bytes, table_->host.bytes) << "a rejected call modified the table";
  }

  void ExpectRejected(const std::vector<std::int64_t>& list, const NormalizeOptions& o, StatusCode code,
                      const std::vector<std::string>& fragments) {
    DeviceBuffer idx(list);
    RowStats stats;
    stats.indices_seen = -42;
    ExpectStatus(cuda::NormalizeRows(table_->view(), Indices(idx.get(), IndexType::kInt64,
                                                            static_cast<std::int64_t>(list.size())),
                                     o, &stats),
                 code, fragments);
    EXPECT_EQ(stats.indices_seen, -42) << "stats written by a rejected call";
    // The same through the asynchronous entry points.
    DeviceBuffer scratch(cuda::RowsScratchBytes(100, static_cast<std::int64_t>(list.size())));
    const Status enq = cuda::NormalizeRowsAsync(
        table_->view(), Indices(idx.get(), IndexType::kInt64, static_cast<std::int64_t>(list.size())), o,
        scratch.get(), scratch.bytes(), nullptr);
    ExpectStatus(enq.ok() ? cuda::RowsResult(scratch.get(), nullptr, &stats) : enq, code, fragments);
  }

  std::unique_ptr<DeviceTable> table_;
};

TEST_F(CudaRowsErrors, IndexTooLargeNamesPositionValueAndRowCount) {
  ExpectRejected({1, 2, 100, 3}, {}, StatusCode::kOutOfRange, {"indices[2] = 100", "100 table rows", "0 to 99"});
}

TEST_F(CudaRowsErrors, NegativeIndex) {
  ExpectRejected({0, -1}, {}, StatusCode::kOutOfRange, {"indices[1] = -1"});
}

TEST_F(CudaRowsErrors, FirstBadPositionIsReportedWhateverTheScheduling) {
  std::vector<std::int64_t> list(2000000, 5);
  list[1999999] = -7;
  list[1234567] = 100;
  list[777777] = 1000;
  ExpectRejected(list, {}, StatusCode::kOutOfRange, {"indices[777777] = 1000"});
}

TEST_F(CudaRowsErrors, BadIndexInInt32List) {
  DeviceBuffer idx(std::vector<std::int32_t>{3, 4, 250});
  ExpectStatus(cuda::NormalizeRows(table_->view(), Indices(idx.get(), IndexType::kInt32, 3)),
               StatusCode::kOutOfRange, {"indices[2] = 250"});
}

TEST_F(CudaRowsErrors, AnyIndexIntoAnEmptyTable) {
  DeviceBuffer idx(std::vector<std::int64_t>{0});
  const Status s = cuda::NormalizeRows(Table{table_->dev.get(), DType::kFloat32, 0, 16, 0},
                                       Indices(idx.get(), IndexType::kInt64, 1));
  ExpectStatus(s, StatusCode::kOutOfRange, {"indices[0] = 0", "count is 0"});
}

TEST_F(CudaRowsErrors, BadOptions) {
  NormalizeOptions o;
  o.target = -1;
  ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.target = -1"});
  o = {};
  o.eps = std::nan("");
  ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.eps = nan"});
  o = {};
  o.p = 0;
  ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.p = 0"});
  o = {};
  o.mode = static_cast<NormMode>(9);
  ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.mode = 9"});
  o = {};
  o.non_finite = static_cast<NonFinitePolicy>(5);
  ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.non_finite = 5"});
  o = {};
  o.backend = Backend::kReference;
  ExpectRejected({1}, o, StatusCode::kUnsupported, {"kReference"});
  o = {};
  o.num_threads = -2;
  ExpectRejected({1}, o, StatusCode::kInvalidArgument, {"options.num_threads = -2"});
}

TEST_F(CudaRowsErrors, BadLayoutsAndLists) {
  DeviceBuffer idx(std::vector<std::int64_t>{1});
  const Indices one(idx.get(), IndexType::kInt64, 1);
  void* d = table_->dev.get();
  ExpectStatus(cuda::NormalizeRows(Table{d, DType::kFloat32, -1, 16, 0}, one), StatusCode::kInvalidArgument,
               {"table.rows = -1"});
  ExpectStatus(cuda::NormalizeRows(Table{d, DType::kFloat32, 100, 16, 8}, one), StatusCode::kInvalidArgument,
               {"table.row_stride = 8"});
  ExpectStatus(cuda::NormalizeRows(Table{nullptr, DType::kFloat32, 100, 16, 0}, one), StatusCode::kInvalidArgument,
               {"table.data is null"});
  ExpectStatus(cuda::NormalizeRows(Table{d, static_cast<DType>(7), 100, 16, 0}, one), StatusCode::kUnsupported,
               {"table.dtype = 7"});
  ExpectStatus(cuda::NormalizeRows(Table{d, DType::kFloat32, std::int64_t{1} << 62, 16, 0}, one),
               StatusCode::kInvalidArgument, {"64-bit"});
  ExpectStatus(cuda::NormalizeRows(table_->view(), Indices(nullptr, IndexType::kInt64, 3)),
               StatusCode::kInvalidArgument, {"indices.data is null"});
  ExpectStatus(cuda::NormalizeRows(table_->view(), Indices(idx.get(), static_cast<IndexType>(4), 1)),
               StatusCode::kUnsupported, {"index type code 4"});
}

TEST_F(CudaRowsErrors, HostPointersAreRejected) {
  std::vector<std::int64_t> host_list = {1, 2};
  ExpectStatus(cuda::NormalizeRows(table_->view(), Indices(std::span<const std::int64_t>(host_list))),
               StatusCode::kInvalidArgument, {"indices.data", "host memory"});
  TestTable host = table_->host;
  DeviceBuffer idx(host_list);
  ExpectStatus(cuda::NormalizeRows(host.view(), Indices(idx.get(), IndexType::kInt64, 2)),
               StatusCode::kInvalidArgument, {"table.data", "host memory"});
}

TEST_F(CudaRowsErrors, BadScratch) {
  DeviceBuffer idx(std::vector<std::int64_t>{1, 2});
  const Indices two(idx.get(), IndexType::kInt64, 2);
  const std::size_t need = cuda::RowsScratchBytes(100, 2);
  DeviceBuffer scratch(need + 64);
  ExpectStatus(cuda::NormalizeRowsAsync(table_->view(), two, {}, nullptr, need, nullptr),
               StatusCode::kInvalidArgument, {"scratch is null"});
  ExpectStatus(cuda::NormalizeRowsAsync(table_->view(), two, {}, scratch.get(), need - 1, nullptr),
               StatusCode::kInvalidArgument, {"too small"});
  ExpectStatus(cuda::NormalizeRowsAsync(table_->view(), two, {}, scratch.as<char>() + 8, need, nullptr),
               StatusCode::kInvalidArgument, {"16-byte aligned"});
  ExpectStatus(cuda::NormalizeRowsAsync(table_->view(), two, {}, table_->dev.get(), need, nullptr),
               StatusCode::kInvalidArgument, {"overlaps"});
  std::vector<unsigned char> host_scratch(need);
  ExpectStatus(cuda::NormalizeRowsAsync(table_->view(), two, {}, host_scratch.data(), need, nullptr),
               StatusCode::kInvalidArgument, {"host memory"});
  DeviceBuffer fresh(need);
  ASSERT_EQ(cudaMemset(fresh.get(), 0, need), cudaSuccess);
  ExpectStatus(cuda::RowsResult(fresh.get(), nullptr), StatusCode::kInvalidArgument, {"does not hold"});
}

TEST_F(CudaRowsErrors, NonFiniteRowUnderErrorPolicyReportsTheFirstPosition) {
  TestTable t = table_->host;
  t.Set(7, 3, std::nan(""));
  t.Set(5, 0, HUGE_VAL);
  table_ = std::make_unique<DeviceTable>(t);
  NormalizeOptions o;
  o.non_finite = NonFinitePolicy::kError;
  ExpectRejected({3, 7, 5, 7}, o, StatusCode::kNonFinite, {"row 7 (indices[1])", "nothing was modified"});
  // An out-of-range index is reported first, as on the CPU.
  ExpectRejected({3, 7, 500}, o, StatusCode::kOutOfRange, {"indices[2] = 500"});
}

TEST_F(CudaRowsErrors, OutOfPlaceMismatchesAndOverlap) {
  DeviceBuffer idx(std::vector<std::int64_t>{1});
  const Indices one(idx.get(), IndexType::kInt64, 1);
  DeviceBuffer other(100 * 16 * 4);
  ExpectStatus(cuda::NormalizeRows(table_->const_view(), Table{other.get(), DType::kFloat32, 99, 16, 0}, one),
               StatusCode::kInvalidArgument, {"same shape and dtype"});
  ExpectStatus(cuda::NormalizeRows(table_->const_view(),
                                   Table{table_->dev.as<float>() + 16, DType::kFloat32, 100, 16, 0}, one),
               StatusCode::kInvalidArgument, {"overlap"});
}

TEST_F(CudaRowsErrors, OutOfPlaceNonFiniteLeavesOutputAlone) {
  TestTable t = table_->host;
  t.Set(4, 4, std::nan(""));
  table_ = std::make_unique<DeviceTable>(t);
  TestTable out_host(DType::kFloat32, 100, 16);
  DeviceTable out(out_host);
  DeviceBuffer idx(std::vector<std::int64_t>{1, 4});
  NormalizeOptions o;
  o.non_finite = NonFinitePolicy::kError;
  ExpectStatus(cuda::NormalizeRows(table_->const_view(), out.view(), Indices(idx.get(), IndexType::kInt64, 2), o),
               StatusCode::kNonFinite, {"row 4 (indices[1])"});
  EXPECT_EQ(out.Fetch().bytes, out_host.bytes) << "the output was written";
}

}  // namespace
}  // namespace sparsenorm

// ---------------------------------------------------------------------------
// The host side of the front end: runs everywhere, GPU or not. Everything
// the host can check is checked before the first CUDA call, so these errors
// come back the same with or without a device; a valid call without a
// device is a clean kDeviceError, not a crash.

namespace sparsenorm {
namespace {

TEST(CudaFrontEnd, HostChecksComeFirstAndNeedNoDevice) {
  float fake_device_table[16];
  std::int64_t fake_list[1] = {0};
  Table t{fake_device_table, DType::kFloat32, 4, 4, 0};
  const Indices one(fake_list, IndexType::kInt64, 1);
  NormalizeOptions o;
  o.target = -1;
  Status s = cuda::NormalizeRows(t, one, o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("options.target = -1"), std::string::npos) << s.message();
  o = {};
  o.backend = Backend::kReference;
  EXPECT_EQ(cuda::NormalizeRows(t, one, o).code(), StatusCode::kUnsupported);
  s = cuda::NormalizeRows(Table{fake_device_table, DType::kFloat32, 4, 4, 2}, one);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("table.row_stride = 2"), std::string::npos) << s.message();
  s = cuda::NormalizeRows(t, Indices(nullptr, IndexType::kInt64, 2));
  EXPECT_NE(s.message().find("indices.data is null"), std::string::npos) << s.message();
  MatrixOptions mo;
  mo.axis = 3;
  s = cuda::NormalizeMatrix(t, mo);
  EXPECT_NE(s.message().find("options.axis = 3"), std::string::npos) << s.message();
  SparseMatrix sm;
  sm.nnz = -1;
  s = cuda::NormalizeMatrix(&sm, {});
  EXPECT_NE(s.message().find("matrix.nnz = -1"), std::string::npos) << s.message();
  EXPECT_EQ(cuda::NormalizeMatrix(nullptr, {}).code(), StatusCode::kInvalidArgument);
}

TEST(CudaFrontEnd, WithoutADeviceAValidCallIsADeviceError) {
  if (cuda::DeviceCount() > 0) GTEST_SKIP() << "a device is present";
  float fake_device_table[16] = {};
  std::int64_t fake_list[1] = {0};
  const Status s = cuda::NormalizeRows(Table{fake_device_table, DType::kFloat32, 4, 4, 0},
                                       Indices(fake_list, IndexType::kInt64, 1));
  EXPECT_EQ(s.code(), StatusCode::kDeviceError) << s.message();
  EXPECT_NE(s.message().find("CUDA error"), std::string::npos) << s.message();
  EXPECT_EQ(fake_device_table[0], 0.0f);
}

TEST(CudaFrontEnd, ScratchSizes) {
  EXPECT_EQ(cuda::RowsScratchBytes(0, 0), 512u);
  EXPECT_EQ(cuda::RowsScratchBytes(1, 1), 512u + 256u + 256u);
  // One bit per row and one byte per index, each rounded up to 256 bytes.
  EXPECT_EQ(cuda::RowsScratchBytes(10000000, 1000000), 512u + 1250048u + 1000192u);
  EXPECT_EQ(cuda::RowsScratchBytes(-5, -5), cuda::RowsScratchBytes(0, 0));
}

}  // namespace
}  // namespace sparsenorm
