// Helpers for the matrix tests: sparse matrices built from coordinate lists
// in any format, index type, entry order and dtype, held as raw bytes so a
// test can compare every array byte for byte.
#ifndef SPARSENORM_TESTS_MATRIX_TEST_UTIL_H_
#define SPARSENORM_TESTS_MATRIX_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/entry.h"
#include "reference/reference.h"
#include "sparsenorm/matrix.h"
#include "test_util.h"

namespace sparsenorm::testing {

struct Triplet {
  std::int64_t r, c;
  double v;
};

// How the entries of a segment (CSR row, CSC column) or of a COO matrix are
// ordered in storage.
enum class Order { kSorted, kShuffled, kByRow, kByColumn };

class IndexArray {
 public:
  IndexArray() = default;
  IndexArray(IndexType t, std::size_t n) : type_(t), bytes_(n * Size(t) + 16, 0xEE) {}
  static std::size_t Size(IndexType t) { return t == IndexType::kInt32 ? 4 : 8; }
  std::int64_t Get(std::size_t i) const {
    if (type_ == IndexType::kInt32) {
      std::int32_t v;
      std::memcpy(&v, bytes_.data() + 4 * i, 4);
      return v;
    }
    std::int64_t v;
    std::memcpy(&v, bytes_.data() + 8 * i, 8);
    return v;
  }
  void Set(std::size_t i, std::int64_t v) {
    if (type_ == IndexType::kInt32) {
      const auto w = static_cast<std::int32_t>(v);
      std::memcpy(bytes_.data() + 4 * i, &w, 4);
    } else {
      std::memcpy(bytes_.data() + 8 * i, &v, 8);
    }
  }
  void* data() { return bytes_.empty() ? nullptr : bytes_.data(); }
  const std::vector<unsigned char>& bytes() const { return bytes_; }

 private:
  IndexType type_ = IndexType::kInt32;
  std::vector<unsigned char> bytes_;
};

struct TestSparse {
  SparseFormat format = SparseFormat::kCSR;
  std::int64_t rows = 0, cols = 0, nnz = 0;
  DType dtype = DType::kFloat32;
  IndexType itype = IndexType::kInt32;
  std::vector<unsigned char> values;  // nnz elements plus a sentinel tail
  IndexArray indptr, indices, row, col;
  SparseMatrix m;  // the view handed to the library; nnz updated by pruning

  SparseMatrix* view() {
    m.format = format;
    m.rows = rows;
    m.cols = cols;
    m.nnz = nnz;
    m.values = values.data();
    m.dtype = dtype;
    m.index_type = itype;
    m.indptr = format == SparseFormat::kCOO ? nullptr : indptr.data();
    m.indices = format == SparseFormat::kCOO ? nullptr : indices.data();
    m.row = format == SparseFormat::kCOO ? row.data() : nullptr;
    m.col = format == SparseFormat::kCOO ? col.data() : nullptr;
    return &m;
  }
  // After a call: adopt the nnz the library wrote back.
  void Sync() { nnz = m.nnz; }

  double Value(std::int64_t k) const { return reference::Load(values.data(), dtype, k); }
  std::uint64_t Bits(std::int64_t k) const {
    std::uint64_t b = 0;
    std::memcpy(&b, values.data() + k * DTypeSize(dtype), DTypeSize(dtype));
    return b;
  }
  // Row and column of stored entry k.
  std::pair<std::int64_t, std::int64_t> Coord(std::int64_t k) const {
    if (format == SparseFormat::kCOO) return {row.Get(k), col.Get(k)};
    const std::int64_t segments = format == SparseFormat::kCSR ? rows : cols;
    std::int64_t s = 0;
    while (s + 1 < segments && indptr.Get(s + 1) <= k) ++s;
    const std::int64_t minor = indices.Get(k);
    return format == SparseFormat::kCSR ? std::make_pair(s, minor) : std::make_pair(minor, s);
  }
  // The dense matrix with repeated coordinates summed (SciPy's meaning).
  std::vector<double> Dense() const {
    std::vector<double> d(static_cast<std::size_t>(rows * cols), 0.0);
    for (std::int64_t k = 0; k < nnz; ++k) {
      const auto [r, c] = Coord(k);
      d[r * cols + c] += Value(k);
    }
    return d;
  }
  // The first n entries of an index array, as values.
  static std::vector<std::int64_t> Prefix(const IndexArray& a, std::int64_t n) {
    std::vector<std::int64_t> v;
    for (std::int64_t i = 0; i < n; ++i) v.push_back(a.Get(static_cast<std::size_t>(i)));
    return v;
  }
  std::int64_t Segments() const {
    return format == SparseFormat::kCSR ? rows : format == SparseFormat::kCSC ? cols : -1;
  }
  bool SameBytes(const TestSparse& o) const {
    return nnz == o.nnz && values == o.values && indptr.bytes() == o.indptr.bytes() &&
           indices.bytes() == o.indices.bytes() && row.bytes() == o.row.bytes() &&
           col.bytes() == o.col.bytes();
  }
};

// Builds a matrix holding the triplets (repeats kept as separate entries).
inline TestSparse BuildSparse(SparseFormat format, std::int64_t rows, std::int64_t cols,
                              std::vector<Triplet> t, DType dtype, IndexType itype, Order order,
                              std::mt19937_64& rng) {
  TestSparse s;
  s.format = format;
  s.rows = rows;
  s.cols = cols;
  s.nnz = static_cast<std::int64_t>(t.size());
  s.dtype = dtype;
  s.itype = itype;
  std::shuffle(t.begin(), t.end(), rng);
  auto by_row = [](const Triplet& a, const Triplet& b) { return std::tie(a.r, a.c) < std::tie(b.r, b.c); };
  auto by_col = [](const Triplet& a, const Triplet& b) { return std::tie(a.c, a.r) < std::tie(b.c, b.r); };
  if (format == SparseFormat::kCSR) {
    if (order == Order::kShuffled) {
      std::stable_sort(t.begin(), t.end(), [](const Triplet& a, const Triplet& b) { return a.r < b.r; });
    } else {
      std::stable_sort(t.begin(), t.end(), by_row);
    }
  } else if (format == SparseFormat::kCSC) {
    if (order == Order::kShuffled) {
      std::stable_sort(t.begin(), t.end(), [](const Triplet& a, const Triplet& b) { return a.c < b.c; });
    } else {
      std::stable_sort(t.begin(), t.end(), by_col);
    }
  } else if (order == Order::kByRow || order == Order::kSorted) {
    std::stable_sort(t.begin(), t.end(), by_row);
  } else if (order == Order::kByColumn) {
    std::stable_sort(t.begin(), t.end(), by_col);
  }
  s.values.assign(t.size() * DTypeSize(dtype) + 64, 0xA5);
  for (std::size_t k = 0; k < t.size(); ++k) reference::StoreRounded(s.values.data(), dtype, k, t[k].v);
  if (format == SparseFormat::kCOO) {
    s.row = IndexArray(itype, t.size());
    s.col = IndexArray(itype, t.size());
    for (std::size_t k = 0; k < t.size(); ++k) {
      s.row.Set(k, t[k].r);
      s.col.Set(k, t[k].c);
    }
    return s;
  }
  const bool csr = format == SparseFormat::kCSR;
  const std::int64_t segments = csr ? rows : cols;
  s.indptr = IndexArray(itype, static_cast<std::size_t>(segments + 1));
  s.indices = IndexArray(itype, t.size());
  std::vector<std::int64_t> counts(static_cast<std::size_t>(segments + 1), 0);
  for (const Triplet& e : t) ++counts[(csr ? e.r : e.c) + 1];
  for (std::int64_t i = 0; i < segments; ++i) counts[i + 1] += counts[i];
  for (std::int64_t i = 0; i <= segments; ++i) s.indptr.Set(i, counts[i]);
  for (std::size_t k = 0; k < t.size(); ++k) s.indices.Set(k, csr ? t[k].c : t[k].r);
  return s;
}

struct RandomSpec {
  double density = 0.15;
  double duplicate_fraction = 0.0;  // extra entries repeating an existing coordinate
  double spread = 1.5;              // per-vector scales over 10^[-spread, spread]
  bool empty_vectors = true;        // some rows and columns with no entries
};

inline std::vector<Triplet> RandomTriplets(std::int64_t rows, std::int64_t cols, const RandomSpec& spec,
                                           std::mt19937_64& rng) {
  std::vector<Triplet> t;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> row_scale(static_cast<std::size_t>(rows)), col_scale(static_cast<std::size_t>(cols));
  for (auto& x : row_scale) x = std::pow(10.0, spec.spread * (2 * u(rng) - 1));
  for (auto& x : col_scale) x = std::pow(10.0, spec.spread * (2 * u(rng) - 1));
  for (std::int64_t r = 0; r < rows; ++r) {
    if (spec.empty_vectors && r % 7 == 3) continue;
    for (std::int64_t c = 0; c < cols; ++c) {
      if (spec.empty_vectors && c % 5 == 2) continue;
      if (u(rng) < spec.density) t.push_back({r, c, normal(rng) * row_scale[r] * col_scale[c] * 0.3});
    }
  }
  const std::size_t base = t.size();
  const auto extra = static_cast<std::size_t>(spec.duplicate_fraction * static_cast<double>(base));
  for (std::size_t i = 0; i < extra && base > 0; ++i) {
    const Triplet& e = t[static_cast<std::size_t>(u(rng) * static_cast<double>(base)) % base];
    t.push_back({e.r, e.c, normal(rng) * std::fabs(e.v) + 0.01});
  }
  return t;
}

// The tuning of these tests: every call uses all the threads it asks for,
// however small the matrix (the public functions want 128 KB of work per
// thread).
inline Tuning AllThreadsAsked() {
  Tuning t;
  t.bytes_per_thread = 1;
  return t;
}

// NormalizeMatrix with that tuning (or another), through the front end the
// public functions call (core/entry.h).
inline Status Normalize(SparseMatrix* matrix, const MatrixOptions& options = {},
                        MatrixStats* stats = nullptr, const Tuning& tuning = AllThreadsAsked()) {
  return detail::NormalizeMatrix(matrix, options, tuning, stats);
}
inline Status Normalize(const Table& matrix, const MatrixOptions& options = {},
                        MatrixStats* stats = nullptr, const Tuning& tuning = AllThreadsAsked()) {
  return detail::NormalizeMatrix(matrix, options, tuning, stats);
}

inline const char* FormatName(SparseFormat f) {
  return f == SparseFormat::kCSR ? "CSR" : f == SparseFormat::kCSC ? "CSC" : "COO";
}

inline double MatrixUlpTolerance(DType dtype, double p, std::int64_t length = 0) {
  // As the row operator's tests: the fast path sums in float32 (contiguous
  // segments, dense rows) or float64 (columns) where the reference sums in
  // long double; the rounding error of a sum grows with the square root of
  // its length, and pow(sum, 1 / p) multiplies it by 1 / p. 16-bit results
  // move by at most one ulp.
  const double growth = std::max(1.0, std::sqrt(static_cast<double>(length)) / 16.0);
  switch (dtype) {
    case DType::kFloat32:
      return 8 * growth;
    case DType::kFloat64:
      return 16 * std::max(1.0, 1.0 / p) * growth;
    default:
      return 1;
  }
}

}  // namespace sparsenorm::testing

#endif  // SPARSENORM_TESTS_MATRIX_TEST_UTIL_H_
