// The matrix normalization on the device (needs a GPU; skipped without
// one): dense, CSR, CSC and COO, both axes, subsets and pruning, against
// the host replay of the kernels (bit for bit for p in {1, 2, inf}) and a
// float64 reference; every error path with the device arrays unchanged.
//
// The CPU matrix normalization lives in another branch; once merged, a
// comparison with it belongs here too (same tolerance as the row operator).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cuda/launch.h"
#include "gpu_test_util.h"
#include "sparsenorm/cuda.h"

namespace sparsenorm {
namespace {

namespace num = cuda::num;
namespace emulate = cuda::emulate;
using testing::DeviceBuffer;
using testing::DeviceTable;
using testing::GpuTest;
using testing::TestTable;

template <class Fn>
void WithTraits(DType dtype, Fn&& fn) {
  VisitDType(dtype, [&](auto t) { fn(num::DeviceTraits<TypeOf<decltype(t)>>{}); });
}

// A sparse matrix on the host: values as raw bytes, indices as int64.
struct HostSparse {
  SparseFormat format = SparseFormat::kCSR;
  std::int64_t rows = 0, cols = 0;
  DType dtype = DType::kFloat32;
  IndexType itype = IndexType::kInt32;
  TestTable values;  // 1 x nnz
  std::vector<std::int64_t> indptr, indices, row, col;
  std::int64_t nnz() const { return values.cols; }

  // Row and column of entry k.
  std::int64_t RowOf(std::int64_t k) const {
    if (format == SparseFormat::kCOO) return row[k];
    if (format == SparseFormat::kCSC) return indices[k];
    return static_cast<std::int64_t>(std::upper_bound(indptr.begin(), indptr.end(), k) - indptr.begin()) - 1;
  }
  std::int64_t ColOf(std::int64_t k) const {
    if (format == SparseFormat::kCOO) return col[k];
    if (format == SparseFormat::kCSR) return indices[k];
    return static_cast<std::int64_t>(std::upper_bound(indptr.begin(), indptr.end(), k) - indptr.begin()) - 1;
  }
};

// Random canonical matrix: each major vector gets a sorted set of distinct
// minor indices (some vectors empty). COO entries in row-major order, or
// column-major when `col_major`.
HostSparse RandomSparse(SparseFormat format, std::int64_t rows, std::int64_t cols, DType dtype, IndexType itype,
                        double density, std::mt19937_64& rng, bool col_major = false) {
  HostSparse m;
  m.format = format;
  m.rows = rows;
  m.cols = cols;
  m.dtype = dtype;
  m.itype = itype;
  const bool by_col = format == SparseFormat::kCSC || (format == SparseFormat::kCOO && col_major);
  const std::int64_t major = by_col ? cols : rows, minor = by_col ? rows : cols;
  std::bernoulli_distribution keep(density);
  std::vector<std::pair<std::int64_t, std::int64_t>> entries;  // (major, minor)
  for (std::int64_t a = 0; a < major; ++a) {
    for (std::int64_t b = 0; b < minor; ++b) {
      if (keep(rng)) entries.emplace_back(a, b);
    }
  }
  const auto nnz = static_cast<std::int64_t>(entries.size());
  m.values = TestTable(dtype, 1, nnz);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> exponent(-2.0, 2.0);
  for (std::int64_t k = 0; k < nnz; ++k) m.values.Set(0, k, normal(rng) * std::pow(10.0, exponent(rng)));
  if (format == SparseFormat::kCOO) {
    for (const auto& [a, b] : entries) {
      m.row.push_back(by_col ? b : a);
      m.col.push_back(by_col ? a : b);
    }
  } else {
    m.indptr.assign(static_cast<std::size_t>(major + 1), 0);
    for (const auto& [a, b] : entries) {
      ++m.indptr[static_cast<std::size_t>(a + 1)];
      m.indices.push_back(b);
    }
    for (std::int64_t a = 0; a < major; ++a) m.indptr[a + 1] += m.indptr[a];
  }
  return m;
}

// The matrix on the device.
struct DeviceSparse {
  DeviceBuffer values, indptr, indices, row, col;
  SparseMatrix view;

  static DeviceBuffer UploadIndices(const std::vector<std::int64_t>& v, IndexType t) {
    if (t == IndexType::kInt32) return DeviceBuffer(std::vector<std::int32_t>(v.begin(), v.end()));
    return DeviceBuffer(v);
  }

  explicit DeviceSparse(const HostSparse& m)
      : values(std::vector<unsigned char>(m.values.bytes.begin(),
                                          m.values.bytes.begin() +
                                              static_cast<std::ptrdiff_t>(m.nnz() * DTypeSize(m.dtype)))),
        indptr(UploadIndices(m.indptr, m.itype)),
        indices(UploadIndices(m.indices, m.itype)),
        row(UploadIndices(m.row, m.itype)),
        col(UploadIndices(m.col, m.itype)) {
    view.format = m.format;
    view.rows = m.rows;
    view.cols = m.cols;
    view.nnz = m.nnz();
    view.values = values.get();
    view.dtype = m.dtype;
    view.index_type = m.itype;
    view.indptr = indptr.get();
    view.indices = indices.get();
    view.row = row.get();
    view.col = col.get();
  }

  // Everything on the device, as bytes, to prove a call changed nothing.
  std::vector<unsigned char> Snapshot() const {
    std::vector<unsigned char> all;
    for (const DeviceBuffer* b : {&values, &indptr, &indices, &row, &col}) {
      const std::vector<unsigned char> part = b->Download();
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  }
};

std::vector<std::int64_t> ToInt64(const DeviceBuffer& b, IndexType t, std::int64_t count) {
  std::vector<std::int64_t> out;
  if (t == IndexType::kInt32) {
    const std::vector<std::int32_t> v = b.DownloadAs<std::int32_t>();
    out.assign(v.begin(), v.begin() + count);
  } else {
    const std::vector<std::int64_t> v = b.DownloadAs<std::int64_t>();
    out.assign(v.begin(), v.begin() + count);
  }
  return out;
}

struct Expected {
  HostSparse m;
  MatrixStats stats;
};

bool Selected(const std::optional<std::set<std::int64_t>>& subset, std::int64_t v) {
  return !subset || subset->count(v) != 0;
}

// The device's result, replayed on the host: per vector the norm as the
// kernels compute it, then pruning as a stable removal.
Expected ExpectSparse(const HostSparse& in, const MatrixOptions& o,
                      const std::optional<std::set<std::int64_t>>& subset) {
  Expected e{in, {}};
  HostSparse& m = e.m;
  const std::int64_t vectors = o.axis == 0 ? m.cols : m.rows;
  const bool contiguous = (m.format == SparseFormat::kCSR && o.axis == 1) ||
                          (m.format == SparseFormat::kCSC && o.axis == 0);
  const NormRule prm = detail::RuleOf(o.norm);
  std::vector<std::vector<std::int64_t>> members(static_cast<std::size_t>(vectors));
  for (std::int64_t k = 0; k < m.nnz(); ++k) {
    members[static_cast<std::size_t>(o.axis == 0 ? m.ColOf(k) : m.RowOf(k))].push_back(k);
  }
  const std::int64_t segments = m.format == SparseFormat::kCSR ? m.rows : m.cols;
  const int group = cuda::detail::SegmentGroupSize(m.nnz(), segments);
  WithTraits(m.dtype, [&](auto tr) {
    using Tr = decltype(tr);
    using S = typename Tr::Storage;
    auto* x = static_cast<S*>(m.values.data());
    for (std::int64_t v = 0; v < vectors; ++v) {
      if (!Selected(subset, v)) continue;
      ++e.stats.vectors;
      const auto& ks = members[static_cast<std::size_t>(v)];
      emulate::VectorResult r;
      if (contiguous) {
        const S* start = ks.empty() ? x : x + ks.front();
        r = emulate::Decide<Tr>(start, static_cast<std::int64_t>(ks.size()), group, 1, prm);
      } else {
        std::vector<S> vals;
        for (std::int64_t k : ks) vals.push_back(x[k]);
        r = emulate::Scattered<Tr>(vals, prm);
      }
      e.stats.vectors_scaled += r.outcome == Outcome::kScaled;
      e.stats.zero_vectors += r.outcome == Outcome::kZero;
      e.stats.nonfinite_vectors += r.outcome == Outcome::kNonFinite;
      if (r.scale.action == Action::kScale) {
        for (std::int64_t k : ks) x[k] = Tr::Scaled(x[k], r.scale);
      }
    }
    e.stats.nnz_before = m.nnz();
    if (o.prune_below > 0.0) {
      HostSparse p = m;
      std::vector<S> kept;
      p.indices.clear();
      p.row.clear();
      p.col.clear();
      std::vector<std::int64_t> new_position(static_cast<std::size_t>(m.nnz() + 1));
      for (std::int64_t k = 0; k < m.nnz(); ++k) {
        new_position[static_cast<std::size_t>(k)] = static_cast<std::int64_t>(kept.size());
        if (num::BelowThreshold<Tr>(x[k], o.prune_below)) continue;
        kept.push_back(x[k]);
        if (m.format == SparseFormat::kCOO) {
          p.row.push_back(m.row[k]);
          p.col.push_back(m.col[k]);
        } else {
          p.indices.push_back(m.indices[k]);
        }
      }
      new_position[static_cast<std::size_t>(m.nnz())] = static_cast<std::int64_t>(kept.size());
      for (auto& ptr : p.indptr) ptr = new_position[static_cast<std::size_t>(ptr)];
      p.values = TestTable(m.dtype, 1, static_cast<std::int64_t>(kept.size()));
      std::copy(kept.begin(), kept.end(), static_cast<S*>(p.values.data()));
      e.stats.pruned = m.nnz() - static_cast<std::int64_t>(kept.size());
      m = p;
    }
    e.stats.nnz_after = m.nnz();
  });
  return e;
}

void ExpectStats(const MatrixStats& got, const MatrixStats& want, const std::string& what) {
  EXPECT_EQ(got.vectors, want.vectors) << what;
  EXPECT_EQ(got.vectors_scaled, want.vectors_scaled) << what;
  EXPECT_EQ(got.zero_vectors, want.zero_vectors) << what;
  EXPECT_EQ(got.nonfinite_vectors, want.nonfinite_vectors) << what;
  EXPECT_EQ(got.pruned, want.pruned) << what;
  EXPECT_EQ(got.nnz_before, want.nnz_before) << what;
  EXPECT_EQ(got.nnz_after, want.nnz_after) << what;
}

// The float64 answer for one vector's values.
double ReferenceNorm(const std::vector<double>& v, double p) { return reference::Norm(v, p); }

class CudaMatrix : public GpuTest {};

TEST_F(CudaMatrix, SparseMatchesEmulationAndReference) {
  std::mt19937_64 rng(301);
  int cases = 0;
  for (SparseFormat format : {SparseFormat::kCSR, SparseFormat::kCSC, SparseFormat::kCOO}) {
    for (DType dtype : testing::kAllDTypes) {
      for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
        for (bool col_major : {false, true}) {
          if (col_major && format != SparseFormat::kCOO) continue;
          const HostSparse base = RandomSparse(format, 70, 45, dtype, itype, 0.15, rng, col_major);
          for (int axis : {0, 1}) {
            for (double p : {2.0, 1.0, kInfinity, 3.0}) {
              for (int variant = 0; variant < 3; ++variant) {
                MatrixOptions o;
                o.axis = axis;
                o.norm.p = p;
                std::optional<std::set<std::int64_t>> subset;
                std::vector<std::int64_t> subset_list;
                if (variant == 1) {  // max-norm, a subset with repeats
                  o.norm.mode = NormMode::kMaxNorm;
                  o.norm.target = 0.8;
                  subset_list = {3, 9, 3, 0, 17, 9};
                  subset.emplace(subset_list.begin(), subset_list.end());
                }
                if (variant == 2) o.prune_below = 0.05;  // pruning
                DeviceBuffer sub(subset_list);
                if (variant == 1) o.subset = Indices(sub.get(), IndexType::kInt64, 6);
                const std::string what = std::string("format ") + std::to_string(static_cast<int>(format)) + " " +
                                         DTypeName(dtype) + " " + IndexTypeName(itype) + " axis " +
                                         std::to_string(axis) + " p " + std::to_string(p) + " variant " +
                                         std::to_string(variant) + (col_major ? " col-major" : "");
                DeviceSparse dev(base);
                SparseMatrix view = dev.view;
                MatrixStats stats;
                const Status s = cuda::NormalizeMatrix(&view, o, &stats);
                ASSERT_TRUE(s.ok()) << what << ": " << s.message();
                const Expected want = ExpectSparse(base, o, subset);
                ExpectStats(stats, want.stats, what);
                ASSERT_EQ(view.nnz, want.m.nnz()) << what;
                const std::vector<unsigned char> vals = dev.values.Download();
                const bool exact = p != 3.0;
                for (std::int64_t k = 0; k < view.nnz; ++k) {
                  TestTable got(dtype, 1, 1);
                  std::copy_n(vals.begin() + static_cast<std::ptrdiff_t>(k * DTypeSize(dtype)), DTypeSize(dtype),
                              got.bytes.begin());
                  if (exact) {
                    ASSERT_EQ(got.Bits(0, 0), want.m.values.Bits(0, k)) << what << " entry " << k;
                  } else {
                    ASSERT_LE(testing::UlpDistance(dtype, got.Get(0, 0), want.m.values.Get(0, k)),
                              testing::DeviceUlpTolerance(dtype, p))
                        << what;
                  }
                }
                if (format == SparseFormat::kCOO) {
                  EXPECT_EQ(ToInt64(dev.row, itype, view.nnz), want.m.row) << what;
                  EXPECT_EQ(ToInt64(dev.col, itype, view.nnz), want.m.col) << what;
                } else {
                  EXPECT_EQ(ToInt64(dev.indices, itype, view.nnz), want.m.indices) << what;
                  EXPECT_EQ(ToInt64(dev.indptr, itype, static_cast<std::int64_t>(base.indptr.size())), want.m.indptr)
                      << what;
                }
                ++cases;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 500);
}

// Independent of the emulation: after constant-norm normalization every
// column has unit norm (float64 reference), as sklearn's normalize gives.
TEST_F(CudaMatrix, ColumnsHaveUnitNormAfterwards) {
  std::mt19937_64 rng(302);
  for (SparseFormat format : {SparseFormat::kCSR, SparseFormat::kCSC, SparseFormat::kCOO}) {
    for (int axis : {0, 1}) {
      const HostSparse base = RandomSparse(format, 300, 200, DType::kFloat64, IndexType::kInt64, 0.05, rng);
      DeviceSparse dev(base);
      SparseMatrix view = dev.view;
      MatrixOptions o;
      o.axis = axis;
      ASSERT_TRUE(cuda::NormalizeMatrix(&view, o).ok());
      HostSparse after = base;
      const std::vector<unsigned char> vals = dev.values.Download();
      std::copy(vals.begin(), vals.end(), after.values.bytes.begin());
      std::vector<std::vector<double>> vecs(static_cast<std::size_t>(axis == 0 ? base.cols : base.rows));
      for (std::int64_t k = 0; k < base.nnz(); ++k) {
        vecs[static_cast<std::size_t>(axis == 0 ? base.ColOf(k) : base.RowOf(k))].push_back(after.values.Get(0, k));
      }
      for (const auto& v : vecs) {
        if (v.empty()) continue;
        EXPECT_NEAR(ReferenceNorm(v, 2.0), 1.0, 1e-14);
      }
    }
  }
}

TEST_F(CudaMatrix, DenseMatchesEmulation) {
  std::mt19937_64 rng(303);
  for (DType dtype : testing::kAllDTypes) {
    for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {50, 16}, {300, 7}, {1000, 64},
                              {3, 1000}, {0, 5}, {5, 0}, {20000, 3}}) {
      for (std::int64_t extra : {0, 5}) {
        TestTable base(dtype, rows, cols, cols + extra);
        testing::FillRandom(&base, rng);
        for (int axis : {0, 1}) {
          for (double p : {2.0, 1.0, kInfinity, 3.0}) {
            for (int variant = 0; variant < 3; ++variant) {
              MatrixOptions o;
              o.axis = axis;
              o.norm.p = p;
              std::vector<std::int64_t> subset_list;
              const std::int64_t vectors = axis == 0 ? cols : rows;
              if (variant == 1 && vectors > 0) {
                o.norm.mode = NormMode::kMaxNorm;
                o.norm.target = 0.5;
                subset_list = {0, vectors - 1, 0, vectors / 2};
              }
              if (variant == 2) o.prune_below = 0.02;
              DeviceBuffer sub(subset_list);
              if (!subset_list.empty()) o.subset = Indices(sub.get(), IndexType::kInt64, 4);
              const std::string what = testing::Describe(dtype, rows, cols) + " stride +" + std::to_string(extra) +
                                       " axis " + std::to_string(axis) + " p " + std::to_string(p) + " variant " +
                                       std::to_string(variant);
              DeviceTable dev(base);
              MatrixStats stats;
              const Status s = cuda::NormalizeMatrix(dev.view(), o, &stats);
              ASSERT_TRUE(s.ok()) << what << ": " << s.message();
              const TestTable got = dev.Fetch();
              ASSERT_TRUE(got.SentinelsIntact()) << what;

              TestTable want = base;
              std::set<std::int64_t> chosen(subset_list.begin(), subset_list.end());
              MatrixStats ws;
              WithTraits(dtype, [&](auto tr) {
                using Tr = decltype(tr);
                using S = typename Tr::Storage;
                auto* x = static_cast<S*>(want.data());
                const NormRule prm = detail::RuleOf(o.norm);
                const bool vec = testing::Vectorized(dev.dev.get(), base.stride, cols, dtype);
                for (std::int64_t v = 0; v < vectors; ++v) {
                  if (!subset_list.empty() && !chosen.count(v)) continue;
                  ++ws.vectors;
                  emulate::VectorResult r;
                  if (axis == 1) {
                    r = emulate::ProcessRow<Tr>(x + v * base.stride, cols, vec, prm);
                  } else {
                    r = emulate::DenseColumn<Tr>(x, rows, base.stride, v, cuda::detail::DenseChunkRows(rows, cols), prm);
                    if (r.scale.action == Action::kScale) {
                      for (std::int64_t i = 0; i < rows; ++i) x[i * base.stride + v] = Tr::Scaled(x[i * base.stride + v], r.scale);
                    }
                  }
                  ws.vectors_scaled += r.outcome == Outcome::kScaled;
                  ws.zero_vectors += r.outcome == Outcome::kZero;
                  ws.nonfinite_vectors += r.outcome == Outcome::kNonFinite;
                }
                if (o.prune_below > 0) {
                  for (std::int64_t i = 0; i < rows; ++i) {
                    for (std::int64_t c = 0; c < cols; ++c) {
                      S& y = x[i * base.stride + c];
                      if (Tr::Widen(y) != 0 && num::BelowThreshold<Tr>(y, o.prune_below)) {
                        y = S(0);
                        ++ws.pruned;
                      }
                    }
                  }
                }
              });
              ws.nnz_before = ws.nnz_after = rows * cols;
              ExpectStats(stats, ws, what);
              for (std::int64_t i = 0; i < rows; ++i) {
                for (std::int64_t c = 0; c < cols; ++c) {
                  if (p == 3.0) {
                    ASSERT_LE(testing::UlpDistance(dtype, got.Get(i, c), want.Get(i, c)),
                              testing::DeviceUlpTolerance(dtype, p))
                        << what;
                  } else {
                    ASSERT_EQ(got.Bits(i, c), want.Bits(i, c)) << what << " at " << i << "," << c;
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

TEST_F(CudaMatrix, AsyncWithCallerScratch) {
  std::mt19937_64 rng(304);
  const HostSparse base = RandomSparse(SparseFormat::kCSR, 500, 300, DType::kFloat32, IndexType::kInt32, 0.1, rng);
  DeviceSparse dev(base);
  MatrixOptions o;
  o.prune_below = 0.01;
  const std::size_t bytes = cuda::MatrixScratchBytes(dev.view, o);
  ASSERT_GT(bytes, 0u);
  DeviceBuffer scratch(bytes);
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  ASSERT_TRUE(cuda::NormalizeMatrixAsync(dev.view, o, scratch.get(), bytes, stream).ok());
  SparseMatrix view = dev.view;
  MatrixStats stats;
  const Status s = cuda::MatrixResult(scratch.get(), stream, &stats, &view);
  ASSERT_TRUE(s.ok()) << s.message();
  const Expected want = ExpectSparse(base, o, std::nullopt);
  ExpectStats(stats, want.stats, "async");
  EXPECT_EQ(view.nnz, want.m.nnz());
  cudaStreamDestroy(stream);
}

// ---------------------------------------------------------------------------
// Errors: nothing on the device changes.

class CudaMatrixErrors : public GpuTest {
 protected:
  void Expect(HostSparse m, const MatrixOptions& o, StatusCode code, const std::vector<std::string>& fragments) {
    DeviceSparse dev(m);
    const std::vector<unsigned char> before = dev.Snapshot();
    SparseMatrix view = dev.view;
    MatrixStats stats;
    stats.vectors = -5;
    const Status s = cuda::NormalizeMatrix(&view, o, &stats);
    EXPECT_EQ(s.code(), code) << s.message();
    for (const std::string& f : fragments) {
      EXPECT_NE(s.message().find(f), std::string::npos) << "message \"" << s.message() << "\" lacks \"" << f << "\"";
    }
    EXPECT_EQ(dev.Snapshot(), before) << "a rejected call modified the matrix";
    EXPECT_EQ(view.nnz, m.nnz());
    EXPECT_EQ(stats.vectors, -5);
  }

  HostSparse Csr(std::mt19937_64& rng) {
    return RandomSparse(SparseFormat::kCSR, 20, 10, DType::kFloat32, IndexType::kInt64, 0.3, rng);
  }
};

TEST_F(CudaMatrixErrors, StructureErrors) {
  std::mt19937_64 rng(305);
  MatrixOptions o;
  o.prune_below = 0.1;  // so that pruning, too, would have written
  HostSparse m = Csr(rng);
  m.indptr[0] = 1;
  Expect(m, o, StatusCode::kInvalidArgument, {"indptr[0] = 1", "start at 0"});
  m = Csr(rng);
  std::swap(m.indptr[5], m.indptr[6]);
  if (m.indptr[5] == m.indptr[6]) m.indptr[5] += 1;
  Expect(m, o, StatusCode::kInvalidArgument, {"indptr[5] = ", "must not decrease"});
  m = Csr(rng);
  m.indptr.back() += 1;
  Expect(m, o, StatusCode::kInvalidArgument, {"indptr[20] = ", "nnz = "});
  m = Csr(rng);
  m.indices[3] = 10;
  m.indices[7] = -1;
  Expect(m, o, StatusCode::kOutOfRange, {"indices[3] = 10", "10 columns"});
  m = Csr(rng);
  for (std::int64_t r = 0; r < m.rows; ++r) {
    if (m.indptr[r + 1] - m.indptr[r] >= 2) {
      std::swap(m.indices[m.indptr[r]], m.indices[m.indptr[r] + 1]);
      break;
    }
  }
  Expect(m, o, StatusCode::kUnsupported, {"strictly increasing", "sum_duplicates"});
  m = RandomSparse(SparseFormat::kCOO, 20, 10, DType::kFloat32, IndexType::kInt32, 0.3, rng);
  m.row.push_back(m.row[0]);  // a repeat of entry 0 at the end breaks both orders
  m.col.push_back(m.col[0]);
  TestTable v(DType::kFloat32, 1, m.nnz() + 1);
  std::copy(m.values.bytes.begin(), m.values.bytes.begin() + m.nnz() * 4, v.bytes.begin());
  m.values = v;
  Expect(m, o, StatusCode::kUnsupported, {"row-major nor in column-major"});
  m = RandomSparse(SparseFormat::kCOO, 20, 10, DType::kFloat32, IndexType::kInt32, 0.3, rng);
  m.col[4] = 99;
  Expect(m, o, StatusCode::kOutOfRange, {"col[4] = 99"});
}

TEST_F(CudaMatrixErrors, OptionAndSubsetErrors) {
  std::mt19937_64 rng(306);
  const HostSparse m = Csr(rng);
  MatrixOptions o;
  o.axis = 2;
  Expect(m, o, StatusCode::kInvalidArgument, {"options.axis = 2"});
  o = {};
  o.prune_below = -1;
  Expect(m, o, StatusCode::kInvalidArgument, {"options.prune_below = -1"});
  o = {};
  o.norm.target = std::nan("");
  Expect(m, o, StatusCode::kInvalidArgument, {"options.target = nan"});
  o = {};
  DeviceBuffer sub(std::vector<std::int64_t>{1, 10, 2});
  o.subset = Indices(sub.get(), IndexType::kInt64, 3);
  Expect(m, o, StatusCode::kOutOfRange, {"options.subset[1] = 10", "10 columns"});
  std::vector<std::int64_t> host_subset = {1};
  o.subset = Indices(std::span<const std::int64_t>(host_subset));
  Expect(m, o, StatusCode::kInvalidArgument, {"options.subset.data", "host memory"});
}

TEST_F(CudaMatrixErrors, NonFiniteVectorUnderErrorPolicy) {
  std::mt19937_64 rng(307);
  for (SparseFormat format : {SparseFormat::kCSR, SparseFormat::kCSC, SparseFormat::kCOO}) {
    for (int axis : {0, 1}) {
      HostSparse m = RandomSparse(format, 20, 10, DType::kFloat32, IndexType::kInt64, 0.3, rng);
      m.values.Set(0, m.nnz() / 2, std::nan(""));
      m.values.Set(0, m.nnz() - 1, HUGE_VAL);
      const std::int64_t first =
          std::min(axis == 0 ? m.ColOf(m.nnz() / 2) : m.RowOf(m.nnz() / 2), axis == 0 ? m.ColOf(m.nnz() - 1) : m.RowOf(m.nnz() - 1));
      MatrixOptions o;
      o.axis = axis;
      o.norm.non_finite = NonFinitePolicy::kError;
      o.prune_below = 0.5;
      Expect(m, o, StatusCode::kNonFinite,
             {std::string(axis == 0 ? "column " : "row ") + std::to_string(first) + " holds NaN or infinity"});
    }
  }
}

TEST_F(CudaMatrixErrors, DenseErrorsLeaveTheMatrixAlone) {
  std::mt19937_64 rng(308);
  TestTable t(DType::kFloat16, 30, 12);
  testing::FillRandom(&t, rng);
  t.Set(4, 9, HUGE_VAL);
  for (int axis : {0, 1}) {
    DeviceTable dev(t);
    MatrixOptions o;
    o.axis = axis;
    o.norm.non_finite = NonFinitePolicy::kError;
    o.prune_below = 0.3;
    const Status s = cuda::NormalizeMatrix(dev.view(), o);
    EXPECT_EQ(s.code(), StatusCode::kNonFinite) << s.message();
    EXPECT_NE(s.message().find(axis == 0 ? "column 9" : "row 4"), std::string::npos) << s.message();
    EXPECT_EQ(dev.Fetch().bytes, t.bytes);
    DeviceBuffer sub(std::vector<std::int32_t>{0, -3});
    o = {};
    o.axis = axis;
    o.prune_below = 0.3;
    o.subset = Indices(sub.get(), IndexType::kInt32, 2);
    const Status s2 = cuda::NormalizeMatrix(dev.view(), o);
    EXPECT_EQ(s2.code(), StatusCode::kOutOfRange) << s2.message();
    EXPECT_NE(s2.message().find("options.subset[1] = -3"), std::string::npos) << s2.message();
    EXPECT_EQ(dev.Fetch().bytes, t.bytes);
  }
}

}  // namespace
}  // namespace sparsenorm
