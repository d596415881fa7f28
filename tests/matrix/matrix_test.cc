// The matrix normalization against the reference implementation, on random
// dense, CSR, CSC and COO matrices over every axis, mode, norm order, dtype,
// index type and entry order; plus repeated coordinates, unsorted indices,
// subsets, pruning, thread counts and determinism, both column-sum modes,
// non-finite values, extreme magnitudes, empty shapes and a matrix of 100
// million columns.

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/plan.h"
#include "core/validate.h"
#include "matrix_test_util.h"
#include "sparsenorm/matrix.h"
#include "test_util.h"

namespace sparsenorm {
namespace {

using testing::BuildSparse;
using testing::Order;
using testing::RandomSpec;
using testing::TestSparse;
using testing::TestTable;
using testing::Triplet;

MatrixOptions Options(int axis, NormMode mode, double p, int threads, double target = 1.0) {
  MatrixOptions o;
  o.axis = axis;
  o.norm.mode = mode;
  o.norm.p = p;
  o.norm.target = target;
  o.norm.num_threads = threads;
  return o;
}

std::string Describe(const TestSparse& s, const MatrixOptions& o, const std::string& extra = "") {
  return std::string(testing::FormatName(s.format)) + " " + DTypeName(s.dtype) + " " +
         IndexTypeName(s.itype) + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols) +
         " nnz " + std::to_string(s.nnz) + " axis " + std::to_string(o.axis) + " mode " +
         std::to_string(static_cast<int>(o.norm.mode)) + " p " + std::to_string(o.norm.p) +
         " threads " + std::to_string(o.norm.num_threads) + " " + extra;
}

void ExpectSameStats(const MatrixStats& a, const MatrixStats& b, const std::string& what) {
  EXPECT_EQ(a.vectors, b.vectors) << what;
  EXPECT_EQ(a.vectors_scaled, b.vectors_scaled) << what;
  EXPECT_EQ(a.zero_vectors, b.zero_vectors) << what;
  EXPECT_EQ(a.nonfinite_vectors, b.nonfinite_vectors) << what;
  EXPECT_EQ(a.pruned, b.pruned) << what;
  EXPECT_EQ(a.nnz_before, b.nnz_before) << what;
  EXPECT_EQ(a.nnz_after, b.nnz_after) << what;
}

// Runs the fast path and the reference on copies of `base` and compares the
// statistics, the structure (byte for byte) and the values (in ulps).
TestSparse CompareSparse(const TestSparse& base, const MatrixOptions& o, const std::string& what,
                         const Tuning& tuning = testing::AllThreadsAsked()) {
  TestSparse fast = base, ref = base;
  MatrixStats fs, rs;
  const Status sf = testing::Normalize(fast.view(), o, &fs, tuning);
  EXPECT_TRUE(sf.ok()) << what << ": " << sf.message();
  MatrixOptions ro = o;
  ro.norm.backend = Backend::kReference;
  const Status sr = testing::Normalize(ref.view(), ro, &rs);
  EXPECT_TRUE(sr.ok()) << what << ": " << sr.message();
  fast.Sync();
  ref.Sync();
  ExpectSameStats(fs, rs, what);
  EXPECT_EQ(fast.nnz, ref.nnz) << what;
  // The live part of every index array; past the new nnz, pruning leaves
  // unspecified (stale) entries.
  const std::int64_t live = std::min(fast.nnz, ref.nnz);
  if (base.format == SparseFormat::kCOO) {
    EXPECT_EQ(TestSparse::Prefix(fast.row, live), TestSparse::Prefix(ref.row, live)) << what;
    EXPECT_EQ(TestSparse::Prefix(fast.col, live), TestSparse::Prefix(ref.col, live)) << what;
  } else {
    EXPECT_EQ(fast.indptr.bytes(), ref.indptr.bytes()) << what;
    EXPECT_EQ(TestSparse::Prefix(fast.indices, live), TestSparse::Prefix(ref.indices, live)) << what;
  }
  if (o.prune_below == 0.0) {
    // Without pruning the structure is not touched at all.
    EXPECT_EQ(fast.indptr.bytes(), base.indptr.bytes()) << what;
    EXPECT_EQ(fast.indices.bytes(), base.indices.bytes()) << what;
    EXPECT_EQ(fast.row.bytes(), base.row.bytes()) << what;
    EXPECT_EQ(fast.col.bytes(), base.col.bytes()) << what;
  }
  const double tol = testing::MatrixUlpTolerance(base.dtype, o.norm.p);
  for (std::int64_t k = 0; k < std::min(fast.nnz, ref.nnz); ++k) {
    if (fast.Bits(k) == ref.Bits(k)) continue;
    EXPECT_LE(testing::UlpDistance(base.dtype, fast.Value(k), ref.Value(k)), tol)
        << what << ": entry " << k << " fast " << fast.Value(k) << " reference " << ref.Value(k);
    if (::testing::Test::HasFailure()) break;
  }
  // Nothing past the stored entries is touched.
  const std::size_t es = DTypeSize(base.dtype);
  for (std::size_t i = static_cast<std::size_t>(base.nnz) * es; i < fast.values.size(); ++i) {
    EXPECT_EQ(fast.values[i], base.values[i]) << what << ": byte " << i << " past the values";
  }
  return fast;
}

const SparseFormat kFormats[] = {SparseFormat::kCSR, SparseFormat::kCSC, SparseFormat::kCOO};

TEST(MatrixSparse, MatchesReferenceOverTheGrid) {
  std::mt19937_64 rng(31);
  int cases = 0;
  for (SparseFormat format : kFormats) {
    for (DType dtype : testing::kAllDTypes) {
      for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
        RandomSpec spec;
        // COO always carries repeated coordinates; CSR/CSC get them in the
        // shuffled-order matrices below.
        spec.duplicate_fraction = format == SparseFormat::kCOO ? 0.1 : 0.0;
        const auto triplets = testing::RandomTriplets(37, 53, spec, rng);
        for (Order order : {Order::kSorted, Order::kShuffled}) {
          const TestSparse base = BuildSparse(format, 37, 53, triplets, dtype, itype, order, rng);
          for (int axis : {0, 1}) {
            for (NormMode mode : {NormMode::kMaxNorm, NormMode::kConstantNorm}) {
              for (double p : {2.0, 1.0, kInfinity, 3.0, 0.5}) {
                // Threads vary where it matters most (the dedicated tests
                // below cover them in depth): p = 2 on float32 and bfloat16.
                const bool vary = p == 2.0 && (dtype == DType::kFloat32 || dtype == DType::kBFloat16);
                for (int threads : vary ? std::vector<int>{1, 2, 7} : std::vector<int>{1}) {
                  MatrixOptions o = Options(axis, mode, p, threads, p == 2.0 ? 1.0 : 0.75);
                  CompareSparse(base, o, Describe(base, o, order == Order::kSorted ? "sorted" : "shuffled"));
                  ++cases;
                  if (::testing::Test::HasFailure()) return;
                }
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 900);
}

TEST(MatrixSparse, CooEntryOrdersAllAgree) {
  // Sorted by row (CSR-like), by column (CSC-like) and unsorted (grouped
  // through a permutation) take different paths.
  std::mt19937_64 rng(32);
  RandomSpec spec;
  spec.duplicate_fraction = 0.2;
  const auto triplets = testing::RandomTriplets(60, 45, spec, rng);
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kBFloat16}) {
    for (Order order : {Order::kByRow, Order::kByColumn, Order::kShuffled}) {
      const TestSparse base = BuildSparse(SparseFormat::kCOO, 60, 45, triplets, dtype, IndexType::kInt64, order, rng);
      for (int axis : {0, 1}) {
        for (double p : {2.0, 1.0, kInfinity, 4.0}) {
          for (int threads : {1, 3}) {
            MatrixOptions o = Options(axis, NormMode::kConstantNorm, p, threads);
            CompareSparse(base, o, Describe(base, o, "order " + std::to_string(static_cast<int>(order))));
          }
        }
      }
    }
  }
}

// The norms of the normalized matrix, taken of the dense matrix with repeats
// summed, are the target: what SciPy's meaning of repeated coordinates asks.
void ExpectUnitNormsOfSummedMatrix(const TestSparse& after, int axis, double p, double tol,
                                   const std::string& what) {
  const std::vector<double> d = after.Dense();
  const std::int64_t vectors = axis == 0 ? after.cols : after.rows;
  const std::int64_t length = axis == 0 ? after.rows : after.cols;
  for (std::int64_t v = 0; v < vectors; ++v) {
    std::vector<double> x;
    for (std::int64_t i = 0; i < length; ++i) x.push_back(axis == 0 ? d[i * after.cols + v] : d[v * after.cols + i]);
    const double n = reference::Norm(x, p);
    if (n == 0.0) continue;
    EXPECT_NEAR(n, 1.0, tol) << what << ": vector " << v;
  }
}

// Short rows go through the batched kernel, which takes PlanFor's common
// case (finite, nonzero, scaled without shift) four rows at a time and sends
// every other row through PlanFor: rows of every kind side by side in one
// batch must give the reference's result.
TEST(MatrixSparse, BatchedRowsOfEveryKindMatchTheReference) {
  std::mt19937_64 rng(38);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  const std::int64_t rows = 300, cols = 50;
  for (DType dtype : {DType::kFloat32, DType::kFloat64, DType::kBFloat16}) {
    const double tiny = dtype == DType::kFloat64 ? 1e-200 : 1e-30;  // untrusted plain sums
    std::vector<Triplet> t;
    for (std::int64_t r = 0; r < rows; ++r) {
      const int kind = static_cast<int>(r % 6);
      if (kind == 0) continue;  // empty row
      const std::int64_t len = 1 + static_cast<std::int64_t>(r * 7 % 37);
      for (std::int64_t j = 0; j < len; ++j) {
        const std::int64_t c = (r * 13 + j * 3) % cols;
        if (j > 0 && c == (r * 13) % cols) break;  // keep coordinates distinct
        double v = unit(rng);
        if (kind == 1) v = 0.0;          // stored zeros: a zero norm
        if (kind == 2) v *= tiny;        // tiny: through NormOf
        if (kind == 3) v *= 1e-3;        // small: huge scales
        if (kind == 4) v *= 40.0;        // above the max-norm target
        t.push_back({r, c, v});
      }
    }
    const TestSparse base = BuildSparse(SparseFormat::kCSR, rows, cols, t, dtype, IndexType::kInt32,
                                        Order::kSorted, rng);
    // target 1e300 makes target / norm overflow for the small rows (PlanFor's
    // shift path); eps and the max-norm mode leave some rows alone.
    for (double target : {1.0, 3.0, 1e300}) {
      for (NormMode mode : {NormMode::kConstantNorm, NormMode::kMaxNorm}) {
        for (double eps : {0.0, 1e-3}) {
          for (double p : {2.0, 1.0, kInfinity}) {
            for (int threads : {1, 2}) {
              MatrixOptions o = Options(1, mode, p, threads, target);
              o.norm.eps = eps;
              CompareSparse(base, o, Describe(base, o, "eps " + std::to_string(eps)));
              if (::testing::Test::HasFailure()) return;
            }
          }
        }
      }
    }
  }
}

TEST(MatrixSparse, RepeatedCoordinatesMeanTheirSum) {
  std::mt19937_64 rng(33);
  RandomSpec spec;
  spec.duplicate_fraction = 0.5;
  spec.spread = 0.5;
  const auto triplets = testing::RandomTriplets(30, 40, spec, rng);
  for (SparseFormat format : kFormats) {
    for (Order order : {Order::kSorted, Order::kShuffled}) {
      const TestSparse base = BuildSparse(format, 30, 40, triplets, DType::kFloat64, IndexType::kInt32, order, rng);
      for (int axis : {0, 1}) {
        for (double p : {2.0, 1.0, kInfinity}) {
          for (int threads : {1, 2}) {
            TestSparse s = base;
            MatrixOptions o = Options(axis, NormMode::kConstantNorm, p, threads);
            ASSERT_TRUE(testing::Normalize(s.view(), o).ok());
            ExpectUnitNormsOfSummedMatrix(s, axis, p, 1e-12, Describe(s, o));
          }
        }
      }
    }
  }
  // A hand-made case: (0, 0) stored as 3 and 1, (1, 0) as 3: column 0 of the
  // summed matrix is (4, 3), norm 5 (the stored values' own norm would be
  // sqrt(19)).
  for (SparseFormat format : kFormats) {
    const std::vector<Triplet> t = {{0, 0, 3.0}, {1, 0, 3.0}, {0, 0, 1.0}};
    TestSparse s = BuildSparse(format, 2, 1, t, DType::kFloat64, IndexType::kInt64, Order::kShuffled, rng);
    ASSERT_TRUE(testing::Normalize(s.view(), Options(0, NormMode::kConstantNorm, 2.0, 1)).ok());
    const std::vector<double> d = s.Dense();
    EXPECT_DOUBLE_EQ(d[0], 0.8) << testing::FormatName(format);
    EXPECT_DOUBLE_EQ(d[1], 0.6) << testing::FormatName(format);
  }
  // Repeats that cancel make a zero vector, left as it is.
  const std::vector<Triplet> t = {{0, 1, 2.0}, {2, 1, -2.0}, {2, 1, 2.0}, {0, 1, -2.0}};
  for (SparseFormat format : kFormats) {
    TestSparse s = BuildSparse(format, 3, 2, t, DType::kFloat32, IndexType::kInt32, Order::kShuffled, rng);
    const TestSparse before = s;
    MatrixStats stats;
    ASSERT_TRUE(testing::Normalize(s.view(), Options(0, NormMode::kConstantNorm, 2.0, 1), &stats).ok());
    EXPECT_TRUE(s.SameBytes(before)) << testing::FormatName(format);
    EXPECT_EQ(stats.zero_vectors, 2);
  }
}

TEST(MatrixSparse, UnsortedIndicesGiveTheSortedResult) {
  std::mt19937_64 rng(34);
  RandomSpec spec;
  spec.density = 0.3;
  const auto triplets = testing::RandomTriplets(80, 90, spec, rng);
  for (SparseFormat format : {SparseFormat::kCSR, SparseFormat::kCSC}) {
    for (DType dtype : testing::kAllDTypes) {
      const TestSparse sorted = BuildSparse(format, 80, 90, triplets, dtype, IndexType::kInt32, Order::kSorted, rng);
      const TestSparse shuffled = BuildSparse(format, 80, 90, triplets, dtype, IndexType::kInt32, Order::kShuffled, rng);
      for (int axis : {0, 1}) {
        MatrixOptions o = Options(axis, NormMode::kConstantNorm, 2.0, 2);
        const TestSparse a = CompareSparse(sorted, o, Describe(sorted, o, "sorted"));
        const TestSparse b = CompareSparse(shuffled, o, Describe(shuffled, o, "shuffled"));
        // Same matrix, so the same dense result (up to summation order).
        const std::vector<double> da = a.Dense(), db = b.Dense();
        for (std::size_t i = 0; i < da.size(); ++i) {
          ASSERT_LE(testing::UlpDistance(dtype, da[i], db[i]), testing::MatrixUlpTolerance(dtype, 2.0))
              << Describe(sorted, o) << " element " << i;
        }
      }
    }
  }
}

TEST(MatrixSparse, SubsetsTouchOnlyTheirVectors) {
  std::mt19937_64 rng(35);
  RandomSpec spec;
  spec.duplicate_fraction = 0.1;
  const auto triplets = testing::RandomTriplets(40, 50, spec, rng);
  for (SparseFormat format : kFormats) {
    for (int axis : {0, 1}) {
      const TestSparse base = BuildSparse(format, 40, 50, triplets, DType::kFloat32, IndexType::kInt64, Order::kShuffled, rng);
      const std::int64_t vectors = axis == 0 ? 50 : 40;
      const std::vector<std::int32_t> subset = {3, 7, 7, 0, static_cast<std::int32_t>(vectors - 1), 12, 3};
      for (int threads : {1, 2}) {
        MatrixOptions o = Options(axis, NormMode::kConstantNorm, 2.0, threads);
        o.subset = Indices(std::span<const std::int32_t>(subset));
        const TestSparse after = CompareSparse(base, o, Describe(base, o, "subset"));
        MatrixStats stats;
        TestSparse again = base;
        ASSERT_TRUE(testing::Normalize(again.view(), o, &stats).ok());
        EXPECT_EQ(stats.vectors, 5);
        for (std::int64_t k = 0; k < base.nnz; ++k) {
          const auto [r, c] = base.Coord(k);
          const std::int64_t v = axis == 0 ? c : r;
          if (std::find(subset.begin(), subset.end(), v) == subset.end()) {
            ASSERT_EQ(after.Bits(k), base.Bits(k)) << "entry " << k << " of vector " << v << " changed";
          }
        }
      }
    }
  }
}

// A threshold that no reference result lies close to, so that the fast path
// and the reference prune the same entries.
double SafeThreshold(const std::vector<double>& magnitudes, double wanted) {
  double tau = wanted;
  for (int attempt = 0; attempt < 50; ++attempt) {
    bool close = false;
    for (double m : magnitudes) close |= std::fabs(m - tau) <= 1e-2 * tau;
    if (!close) return tau;
    tau *= 1.07;
  }
  return tau;
}

TEST(MatrixSparse, PruningCompactsValuesIndicesAndPointers) {
  std::mt19937_64 rng(36);
  RandomSpec spec;
  spec.duplicate_fraction = 0.05;
  const auto triplets = testing::RandomTriplets(70, 61, spec, rng);
  for (SparseFormat format : kFormats) {
    for (DType dtype : testing::kAllDTypes) {
      for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
        const TestSparse base = BuildSparse(format, 70, 61, triplets, dtype, itype, Order::kShuffled, rng);
        for (int axis : {0, 1}) {
          for (int threads : {1, 2, 7}) {
            MatrixOptions o = Options(axis, NormMode::kConstantNorm, 2.0, threads);
            TestSparse probe = base;
            MatrixOptions ro = o;
            ro.norm.backend = Backend::kReference;
            ASSERT_TRUE(testing::Normalize(probe.view(), ro).ok());
            std::vector<double> mags;
            for (std::int64_t k = 0; k < probe.nnz; ++k) mags.push_back(std::fabs(probe.Value(k)));
            o.prune_below = SafeThreshold(mags, 0.15);
            const std::string what = Describe(base, o, "prune " + std::to_string(o.prune_below));
            const TestSparse after = CompareSparse(base, o, what);
            // Independent of the reference: exactly the survivors remain, in
            // storage order, with their coordinates.
            std::vector<std::tuple<std::int64_t, std::int64_t, std::uint64_t>> expected, got;
            for (std::int64_t k = 0; k < probe.nnz; ++k) {
              if (!(std::fabs(probe.Value(k)) < o.prune_below)) {
                const auto [r, c] = base.Coord(k);
                expected.emplace_back(r, c, 0);
              }
            }
            for (std::int64_t k = 0; k < after.nnz; ++k) {
              const auto [r, c] = after.Coord(k);
              got.emplace_back(r, c, 0);
              EXPECT_FALSE(std::fabs(after.Value(k)) < o.prune_below) << what;
            }
            EXPECT_EQ(got, expected) << what;
            EXPECT_LT(after.nnz, base.nnz) << what;
            if (format != SparseFormat::kCOO) {
              EXPECT_EQ(after.indptr.Get(0), 0);
              const std::int64_t segments = format == SparseFormat::kCSR ? base.rows : base.cols;
              EXPECT_EQ(after.indptr.Get(static_cast<std::size_t>(segments)), after.nnz) << what;
            }
            if (::testing::Test::HasFailure()) return;
          }
        }
      }
    }
  }
}

TEST(MatrixSparse, PruningRemovesStoredZerosAndEverythingBelowInfinity) {
  std::mt19937_64 rng(37);
  const std::vector<Triplet> t = {{0, 0, 0.0}, {0, 1, 1e-30}, {1, 1, 5.0}, {2, 0, std::nan("")}};
  for (SparseFormat format : kFormats) {
    TestSparse s = BuildSparse(format, 3, 2, t, DType::kFloat32, IndexType::kInt32, Order::kSorted, rng);
    MatrixOptions o = Options(1, NormMode::kMaxNorm, 2.0, 1, 100.0);  // nothing scaled
    o.prune_below = 1e-6;
    MatrixStats stats;
    ASSERT_TRUE(testing::Normalize(s.view(), o, &stats).ok());
    s.Sync();
    EXPECT_EQ(s.nnz, 2) << testing::FormatName(format);  // 5 and NaN survive
    EXPECT_EQ(stats.pruned, 2);
    EXPECT_EQ(stats.nnz_before, 4);
    EXPECT_EQ(stats.nnz_after, 2);
    TestSparse all = BuildSparse(format, 3, 2, t, DType::kFloat32, IndexType::kInt32, Order::kSorted, rng);
    o.prune_below = HUGE_VAL;
    ASSERT_TRUE(testing::Normalize(all.view(), o, &stats).ok());
    all.Sync();
    EXPECT_EQ(all.nnz, 1) << testing::FormatName(format);  // only NaN: |NaN| < inf is false
  }
}

TEST(MatrixSparse, ThreadCountsAreDeterministicAndCloseToEachOther) {
  std::mt19937_64 rng(38);
  RandomSpec spec;
  spec.density = 0.05;
  spec.duplicate_fraction = 0.02;
  const auto triplets = testing::RandomTriplets(900, 700, spec, rng);
  for (SparseFormat format : kFormats) {
    for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
      const TestSparse base = BuildSparse(format, 900, 700, triplets, dtype, IndexType::kInt32, Order::kShuffled, rng);
      for (int axis : {0, 1}) {
        for (int threads : {1, 2, 7}) {
          MatrixOptions o = Options(axis, NormMode::kConstantNorm, 2.0, threads);
          TestSparse first = base;
          ASSERT_TRUE(testing::Normalize(first.view(), o).ok());
          for (int rep = 0; rep < 3; ++rep) {
            TestSparse again = base;
            ASSERT_TRUE(testing::Normalize(again.view(), o).ok());
            ASSERT_TRUE(again.SameBytes(first)) << Describe(base, o, "repeat " + std::to_string(rep));
          }
          CompareSparse(base, o, Describe(base, o));
        }
      }
    }
  }
}

TEST(MatrixSparse, BothColumnSumModesMatchTheReferenceAndAreDeterministic) {
  std::mt19937_64 rng(39);
  RandomSpec spec;
  spec.density = 0.03;
  spec.duplicate_fraction = 0.05;
  const auto triplets = testing::RandomTriplets(700, 500, spec, rng);
  // Epochs of 100 pairs: a part goes through several of them, and the
  // parts run out at different epochs.
  for (ColumnSumMode mode : {ColumnSumMode::kPrivateArrays, ColumnSumMode::kStripedBuckets}) {
    Tuning force = testing::AllThreadsAsked();
    force.column_sums = mode;
    force.epoch_entries = 100;
    for (SparseFormat format : kFormats) {
      const TestSparse base = BuildSparse(format, 700, 500, triplets, DType::kFloat32, IndexType::kInt64,
                                          format == SparseFormat::kCOO ? Order::kByRow : Order::kShuffled, rng);
      const int axis = format == SparseFormat::kCSC ? 1 : 0;  // the scattered axis
      for (double p : {2.0, 1.0, kInfinity, 3.0}) {
        for (int threads : {1, 2, 7}) {
          MatrixOptions o = Options(axis, NormMode::kConstantNorm, p, threads);
          const std::string what = Describe(base, o, mode == ColumnSumMode::kPrivateArrays ? "private" : "striped");
          TestSparse first = base;
          ASSERT_TRUE(testing::Normalize(first.view(), o, nullptr, force).ok()) << what;
          if (threads == 7 || p == 2.0) CompareSparse(base, o, what, force);
          TestSparse again = base;
          ASSERT_TRUE(testing::Normalize(again.view(), o, nullptr, force).ok());
          ASSERT_TRUE(again.SameBytes(first)) << what;
        }
      }
    }
  }
}

TEST(MatrixSparse, NonFiniteVectorsAreSkippedOrRejected) {
  std::mt19937_64 rng(40);
  RandomSpec spec;
  spec.empty_vectors = false;
  spec.density = 0.5;
  auto triplets = testing::RandomTriplets(20, 15, spec, rng);
  triplets.push_back({4, 6, std::nan("")});
  triplets.push_back({9, 2, HUGE_VAL});
  for (SparseFormat format : kFormats) {
    for (DType dtype : testing::kAllDTypes) {
      const TestSparse base = BuildSparse(format, 20, 15, triplets, dtype, IndexType::kInt32, Order::kShuffled, rng);
      for (int axis : {0, 1}) {
        MatrixOptions o = Options(axis, NormMode::kConstantNorm, 2.0, 2);
        TestSparse s = base;
        MatrixStats stats;
        ASSERT_TRUE(testing::Normalize(s.view(), o, &stats).ok());
        EXPECT_EQ(stats.nonfinite_vectors, 2) << Describe(base, o);
        CompareSparse(base, o, Describe(base, o, "non-finite"));
        for (Backend backend : {Backend::kAuto, Backend::kReference}) {
          TestSparse t = base;
          o.norm.non_finite = NonFinitePolicy::kError;
          o.norm.backend = backend;
          const Status st = testing::Normalize(t.view(), o);
          EXPECT_EQ(st.code(), StatusCode::kNonFinite) << Describe(base, o);
          const std::string first = axis == 0 ? "column 2 holds NaN" : "row 4 holds NaN";
          EXPECT_NE(st.message().find(first), std::string::npos) << st.message();
          EXPECT_TRUE(t.SameBytes(base)) << "a rejected call modified the matrix";
          o.norm.non_finite = NonFinitePolicy::kSkip;
          o.norm.backend = Backend::kAuto;
        }
      }
    }
  }
}

TEST(MatrixSparse, ExtremeMagnitudes) {
  std::mt19937_64 rng(41);
  for (DType dtype : testing::kAllDTypes) {
    const double huge = dtype == DType::kFloat64 ? 1e300 : dtype == DType::kFloat16 ? 6e4 : 3e38;
    const double tiny = dtype == DType::kFloat64    ? 1e-310
                        : dtype == DType::kFloat16  ? 1e-7
                        : dtype == DType::kBFloat16 ? 1e-39
                                                    : 1e-41;
    std::vector<Triplet> t;
    for (std::int64_t r = 0; r < 64; ++r) {
      t.push_back({r, 0, r % 2 ? huge : -huge});
      t.push_back({r, 1, tiny});
      t.push_back({r, 2, r % 3 ? tiny : huge});
    }
    for (SparseFormat format : kFormats) {
      const TestSparse base = BuildSparse(format, 64, 3, t, dtype, IndexType::kInt64, Order::kSorted, rng);
      for (int axis : {0, 1}) {
        for (double p : {2.0, 1.0, kInfinity, 3.0}) {
          MatrixOptions o = Options(axis, NormMode::kConstantNorm, p, 2);
          const TestSparse after = CompareSparse(base, o, Describe(base, o, "extreme"));
          if (axis == 0 && p == 2.0) {
            // Column 0 has norm 8 * huge and column 1 8 * tiny: every element
            // becomes +-1/8.
            for (std::int64_t k = 0; k < after.nnz; ++k) {
              const auto [r, c] = after.Coord(k);
              if (c < 2) {
                EXPECT_NEAR(std::fabs(after.Value(k)), 0.125, 0.125 * 2e-2) << Describe(base, o);
              }
            }
          }
        }
      }
    }
  }
}

TEST(MatrixSparse, EmptyShapes) {
  std::mt19937_64 rng(42);
  for (SparseFormat format : kFormats) {
    for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{0, 0}, {0, 5}, {4, 0}, {3, 3}}) {
      TestSparse s = BuildSparse(format, rows, cols, {}, DType::kFloat32, IndexType::kInt32, Order::kSorted, rng);
      for (int axis : {0, 1}) {
        MatrixStats stats;
        MatrixOptions o = Options(axis, NormMode::kConstantNorm, 2.0, 2);
        o.prune_below = 0.5;
        const Status st = testing::Normalize(s.view(), o, &stats);
        ASSERT_TRUE(st.ok()) << st.message();
        EXPECT_EQ(stats.vectors, axis == 0 ? cols : rows);
        EXPECT_EQ(stats.zero_vectors, stats.vectors);
        EXPECT_EQ(stats.nnz_after, 0);
      }
    }
  }
}

TEST(MatrixSparse, HundredMillionColumns) {
  // Column sums of a CSR matrix with 10^8 columns: 800 MB of float64 sums
  // (calloc'd, so only the pages the plan touches are backed) and fixed
  // per-thread buffers, never one array per thread.
  const std::int64_t cols = 100000000;
  const std::int64_t rows = 50;
  std::mt19937_64 rng(43);
  std::vector<Triplet> t;
  std::uniform_int_distribution<std::int64_t> pick(0, cols - 1);
  std::vector<std::int64_t> hot;
  for (int i = 0; i < 40; ++i) hot.push_back(pick(rng));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c : hot) t.push_back({r, c, 1.0 + static_cast<double>(r % 4)});
    t.push_back({r, pick(rng), 2.0});
  }
  t.push_back({0, cols - 1, 5.0});
  TestSparse s = BuildSparse(SparseFormat::kCSR, rows, cols, t, DType::kFloat32, IndexType::kInt64, Order::kSorted, rng);
  const TestSparse base = s;
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  MatrixStats stats;
  MatrixOptions o = Options(0, NormMode::kConstantNorm, 2.0, 2);
  {  // the plan the call gets: the bounded-memory column sums
    SparseMatrixProblem problem;
    ASSERT_TRUE(detail::PrepareSparseMatrix(s.view(), o, &problem).ok());
    ASSERT_EQ(detail::PlanSparseMatrix(problem, 2, testing::AllThreadsAsked()).column_sums,
              ColumnSumMode::kStripedBuckets);
  }
  const Status st = testing::Normalize(s.view(), o, &stats);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(stats.vectors, cols);
  std::vector<std::int64_t> distinct;
  for (const Triplet& e : t) distinct.push_back(e.c);
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  EXPECT_EQ(stats.vectors_scaled, static_cast<std::int64_t>(distinct.size()));
  EXPECT_EQ(stats.zero_vectors, cols - stats.vectors_scaled);
  // Every hot column: norm over the 50 rows; each value / norm.
  double sq = 0;
  for (std::int64_t r = 0; r < rows; ++r) sq += std::pow(1.0 + static_cast<double>(r % 4), 2);
  for (std::int64_t k = 0; k < s.nnz; ++k) {
    const auto [r, c] = base.Coord(k);
    if (std::find(hot.begin(), hot.end(), c) != hot.end()) {
      ASSERT_NEAR(s.Value(k), base.Value(k) / std::sqrt(sq), 1e-6);
    }
  }
  // (0, cols - 1) is alone in its column: it becomes 1.
  const std::int64_t last_of_row0 = s.indptr.Get(1) - 1;
  ASSERT_EQ(base.Coord(last_of_row0).second, cols - 1);
  EXPECT_EQ(s.Value(last_of_row0), 1.0);
  // Memory: the sums (800 MB) and buffers; a second array per thread would
  // add another 800 MB.
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  const double grown_mb = static_cast<double>(after.ru_maxrss - before.ru_maxrss) / 1024.0;
  EXPECT_LT(grown_mb, 1200.0) << "peak memory grew by " << grown_mb << " MB";
}

// ---------------------------------------------------------------------------
// Dense.

void CompareDense(const TestTable& base, const MatrixOptions& o, const std::string& what) {
  TestTable fast = base, ref = base;
  MatrixStats fs, rs;
  const Status sf = testing::Normalize(fast.view(), o, &fs);
  ASSERT_TRUE(sf.ok()) << what << ": " << sf.message();
  MatrixOptions ro = o;
  ro.norm.backend = Backend::kReference;
  ASSERT_TRUE(testing::Normalize(ref.view(), ro, &rs).ok()) << what;
  ExpectSameStats(fs, rs, what);
  ASSERT_TRUE(fast.SentinelsIntact()) << what;
  const double tol = testing::MatrixUlpTolerance(base.dtype, o.norm.p, o.axis == 0 ? base.rows : base.cols);
  for (std::int64_t r = 0; r < base.rows; ++r) {
    for (std::int64_t c = 0; c < base.cols; ++c) {
      if (fast.Bits(r, c) == ref.Bits(r, c)) continue;
      ASSERT_LE(testing::UlpDistance(base.dtype, fast.Get(r, c), ref.Get(r, c)), tol)
          << what << ": (" << r << ", " << c << ") fast " << fast.Get(r, c) << " reference " << ref.Get(r, c);
    }
  }
}

TEST(MatrixDense, MatchesReferenceOverTheGrid) {
  std::mt19937_64 rng(51);
  int cases = 0;
  for (DType dtype : testing::kAllDTypes) {
    for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{33, 1}, {9, 3}, {17, 8}, {25, 17}, {40, 33},
                              {12, 100}, {7, 1030}, {3, 2100}}) {
      TestTable base(dtype, rows, cols, cols + (cols % 3));  // some strided
      testing::FillRandom(&base, rng, 1.5);
      base.Set(rows / 2, 0, 0.0);
      for (int axis : {0, 1}) {
        for (NormMode mode : {NormMode::kMaxNorm, NormMode::kConstantNorm}) {
          for (double p : {2.0, 1.0, kInfinity, 3.0, 0.5}) {
            const bool vary = p == 2.0 && (dtype == DType::kFloat32 || dtype == DType::kBFloat16);
            for (int threads : vary ? std::vector<int>{1, 2, 7} : std::vector<int>{1}) {
              MatrixOptions o = Options(axis, mode, p, threads, p == 2.0 ? 1.0 : 0.75);
              CompareDense(base, o, testing::Describe(dtype, rows, cols) + " axis " + std::to_string(axis) +
                                        " mode " + std::to_string(static_cast<int>(mode)) + " p " +
                                        std::to_string(p) + " threads " + std::to_string(threads));
              ++cases;
              if (::testing::Test::HasFailure()) return;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 400);
}

TEST(MatrixDense, ZeroColumnsAndRowsAreLeftAlone) {
  TestTable t(DType::kFloat32, 4, 3);
  for (std::int64_t r = 0; r < 4; ++r) {
    t.Set(r, 0, 0.0);
    t.Set(r, 1, 2.0);
    t.Set(r, 2, r == 0 ? 0.0 : -0.0);
  }
  MatrixStats stats;
  TestTable a = t;
  ASSERT_TRUE(testing::Normalize(a.view(), {}, &stats).ok());
  EXPECT_EQ(stats.zero_vectors, 2);
  EXPECT_EQ(stats.vectors_scaled, 1);
  for (std::int64_t r = 0; r < 4; ++r) {
    EXPECT_EQ(a.Bits(r, 0), t.Bits(r, 0));
    EXPECT_EQ(a.Bits(r, 2), t.Bits(r, 2));
    EXPECT_FLOAT_EQ(static_cast<float>(a.Get(r, 1)), 0.5f);
  }
}

TEST(MatrixDense, PruningZeroesSmallValues) {
  std::mt19937_64 rng(52);
  for (DType dtype : testing::kAllDTypes) {
    for (int axis : {0, 1}) {
      TestTable base(dtype, 30, 45, 47);
      testing::FillRandom(&base, rng, 1.0);
      MatrixOptions o = Options(axis, NormMode::kConstantNorm, 2.0, 2);
      TestTable probe = base;
      MatrixOptions ro = o;
      ro.norm.backend = Backend::kReference;
      ASSERT_TRUE(testing::Normalize(probe.view(), ro).ok());
      std::vector<double> mags;
      for (std::int64_t r = 0; r < 30; ++r) {
        for (std::int64_t c = 0; c < 45; ++c) mags.push_back(std::fabs(probe.Get(r, c)));
      }
      o.prune_below = SafeThreshold(mags, 0.1);
      CompareDense(base, o, std::string("prune ") + DTypeName(dtype));
      TestTable after = base;
      MatrixStats stats;
      ASSERT_TRUE(testing::Normalize(after.view(), o, &stats).ok());
      std::int64_t zeroed = 0;
      for (std::int64_t r = 0; r < 30; ++r) {
        for (std::int64_t c = 0; c < 45; ++c) {
          if (std::fabs(probe.Get(r, c)) < o.prune_below) {
            ASSERT_EQ(after.Get(r, c), 0.0);
            zeroed += probe.Get(r, c) != 0.0;
          } else {
            ASSERT_NE(after.Get(r, c), 0.0);
          }
        }
      }
      EXPECT_EQ(stats.pruned, zeroed);
      EXPECT_GT(zeroed, 0);
    }
  }
}

TEST(MatrixDense, SubsetAndNonFinite) {
  std::mt19937_64 rng(53);
  for (DType dtype : testing::kAllDTypes) {
    TestTable base(dtype, 20, 30);
    testing::FillRandom(&base, rng, 1.0);
    base.Set(5, 7, std::nan(""));
    for (int axis : {0, 1}) {
      const std::vector<std::int64_t> subset = {7, 2, 2, 19};
      MatrixOptions o = Options(axis, NormMode::kConstantNorm, 2.0, 2);
      o.subset = Indices(std::span<const std::int64_t>(subset));
      CompareDense(base, o, std::string("subset ") + DTypeName(dtype));
      TestTable after = base;
      MatrixStats stats;
      ASSERT_TRUE(testing::Normalize(after.view(), o, &stats).ok());
      EXPECT_EQ(stats.vectors, 3);
      EXPECT_EQ(stats.nonfinite_vectors, axis == 0 ? 1 : 0);  // column 7 (row 5 is not in the subset)
      for (std::int64_t r = 0; r < 20; ++r) {
        for (std::int64_t c = 0; c < 30; ++c) {
          const std::int64_t v = axis == 0 ? c : r;
          if (v != 7 && v != 2 && v != 19) {
            ASSERT_EQ(after.Bits(r, c), base.Bits(r, c));
          }
        }
      }
      for (Backend backend : {Backend::kAuto, Backend::kReference}) {
        TestTable t = base;
        MatrixOptions e = Options(axis, NormMode::kConstantNorm, 2.0, 2);
        e.norm.non_finite = NonFinitePolicy::kError;
        e.norm.backend = backend;
        const Status st = testing::Normalize(t.view(), e);
        EXPECT_EQ(st.code(), StatusCode::kNonFinite);
        EXPECT_NE(st.message().find(axis == 0 ? "column 7" : "row 5"), std::string::npos) << st.message();
        EXPECT_EQ(t.bytes, base.bytes);
      }
    }
  }
}

TEST(MatrixDense, ExtremeMagnitudesAndScalesOutsideFloat32) {
  for (DType dtype : testing::kAllDTypes) {
    const double huge = dtype == DType::kFloat64 ? 1e300 : dtype == DType::kFloat16 ? 6e4 : 3e38;
    const double tiny = dtype == DType::kFloat64    ? 1e-310
                        : dtype == DType::kFloat16  ? 1e-7
                        : dtype == DType::kBFloat16 ? 1e-39
                                                    : 1e-41;
    TestTable t(dtype, 64, 21);
    for (std::int64_t r = 0; r < 64; ++r) {
      for (std::int64_t c = 0; c < 21; ++c) t.Set(r, c, c % 3 == 0 ? (r % 2 ? huge : -huge) : c % 3 == 1 ? tiny : 1.0);
    }
    for (int axis : {0, 1}) {
      for (double p : {2.0, 1.0, kInfinity, 3.0}) {
        for (double eps : {0.0, 1e-12}) {
          MatrixOptions o = Options(axis, NormMode::kConstantNorm, p, 2);
          o.norm.eps = eps;
          CompareDense(t, o, std::string("extreme ") + DTypeName(dtype) + " axis " + std::to_string(axis) +
                                 " p " + std::to_string(p) + " eps " + std::to_string(eps));
        }
      }
    }
  }
}

TEST(MatrixDense, BitIdenticalAcrossRepeatsForEachThreadCount) {
  std::mt19937_64 rng(54);
  for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{3000, 40}, {300, 5000}}) {
    TestTable base(DType::kFloat32, rows, cols);
    testing::FillRandom(&base, rng, 1.0);
    for (int axis : {0, 1}) {
      for (int threads : {1, 2, 7}) {
        MatrixOptions o = Options(axis, NormMode::kConstantNorm, 2.0, threads);
        TestTable first = base;
        ASSERT_TRUE(testing::Normalize(first.view(), o).ok());
        for (int rep = 0; rep < 3; ++rep) {
          TestTable again = base;
          ASSERT_TRUE(testing::Normalize(again.view(), o).ok());
          ASSERT_EQ(again.bytes, first.bytes) << rows << "x" << cols << " axis " << axis << " threads " << threads;
        }
        CompareDense(base, o, "determinism");
      }
    }
  }
}

TEST(MatrixDense, EmptyShapes) {
  for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{0, 0}, {0, 5}, {4, 0}}) {
    TestTable t(DType::kFloat16, rows, cols);
    for (int axis : {0, 1}) {
      MatrixStats stats;
      MatrixOptions o;
      o.axis = axis;
      ASSERT_TRUE(testing::Normalize(t.view(), o, &stats).ok());
      EXPECT_EQ(stats.vectors, axis == 0 ? cols : rows);
      EXPECT_EQ(stats.zero_vectors, stats.vectors);
    }
  }
  Table null_table{nullptr, DType::kFloat32, 0, 0, 0};
  EXPECT_TRUE(testing::Normalize(null_table).ok());
}

TEST(MatrixDense, TheFoundingFormula) {
  // W_norm[i, j] = W[i, j] / sqrt(sum_i W[i, j]^2) with the default options.
  std::vector<double> w = {3, 0, 1, 4, 0, 2};  // 2 x 3
  ASSERT_TRUE(testing::Normalize(MakeTable(w.data(), 2, 3)).ok());
  EXPECT_DOUBLE_EQ(w[0], 0.6);
  EXPECT_DOUBLE_EQ(w[3], 0.8);
  EXPECT_EQ(w[1], 0.0);
  EXPECT_EQ(w[4], 0.0);
  EXPECT_DOUBLE_EQ(w[2], 1 / std::sqrt(5.0));
  EXPECT_DOUBLE_EQ(w[5], 2 / std::sqrt(5.0));
}

// ---------------------------------------------------------------------------
// Every SIMD target compiled in.

class MatrixPerTarget : public testing::PerTarget {};

TEST_P(MatrixPerTarget, MatchesReference) {
  std::mt19937_64 rng(55);
  RandomSpec spec;
  spec.duplicate_fraction = 0.05;
  const auto triplets = testing::RandomTriplets(50, 67, spec, rng);
  for (DType dtype : testing::kAllDTypes) {
    for (SparseFormat format : kFormats) {
      const TestSparse base = BuildSparse(format, 50, 67, triplets, dtype, IndexType::kInt32, Order::kShuffled, rng);
      for (int axis : {0, 1}) {
        for (double p : {2.0, 1.0, kInfinity}) {
          MatrixOptions o = Options(axis, NormMode::kConstantNorm, p, 2);
          CompareSparse(base, o, std::string(hwy::TargetName(GetParam())) + " " + Describe(base, o));
        }
      }
    }
    TestTable dense(dtype, 45, 70, 71);
    testing::FillRandom(&dense, rng, 1.0);
    for (int axis : {0, 1}) {
      for (double p : {2.0, 1.0, kInfinity}) {
        MatrixOptions o = Options(axis, NormMode::kConstantNorm, p, 2);
        o.prune_below = 1e-3;
        CompareDense(dense, o, std::string(hwy::TargetName(GetParam())) + " dense " + DTypeName(dtype));
      }
    }
  }
}

// Validation lets a segment whose indices are unsorted but distinct take the
// fast paths, and sends one with a repeated index to the grouped path. Both
// decisions, for unsorted segments of every length around the vector widths
// and the cut-off of the repeat check (256), with the repeat at the edges
// and inside: a 3-row CSR matrix of ones whose middle row is the segment
// under test, so the expected norms are exact (n ones, or n ones of which
// two share a column: n + 2 for the row, 2 for that column). On every SIMD
// target: the vector width sets which segments the register path checks.
TEST_P(MatrixPerTarget, RepeatsAreFoundInUnsortedSegmentsOfEveryLength) {
  std::mt19937_64 rng(36);
  constexpr std::int64_t kCols = 1100;  // the middle row uses columns below 1000
  for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
    for (std::int64_t n : {2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 256, 257, 300}) {
      std::vector<std::int64_t> cols(1000);
      for (std::int64_t c = 0; c < 1000; ++c) cols[c] = c;
      std::shuffle(cols.begin(), cols.end(), rng);
      cols.resize(static_cast<std::size_t>(n));
      if (std::is_sorted(cols.begin(), cols.end())) std::reverse(cols.begin(), cols.end());
      const std::int64_t r = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n - 1));
      const std::int64_t r2 = r + 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n - 1 - r));
      const std::vector<std::pair<std::int64_t, std::int64_t>> repeats = {{-1, -1}, {0, 1}, {0, n - 1}, {n - 2, n - 1}, {r, r2}};
      for (const auto& [i, j] : repeats) {
        std::vector<std::int64_t> row = cols;
        if (i >= 0) row[j] = row[i];
        // Row 0: columns 1000 and 1001; row 1: `row`; row 2: column 1002.
        std::vector<std::int64_t> indices = {1000, 1001};
        indices.insert(indices.end(), row.begin(), row.end());
        indices.push_back(1002);
        const std::vector<std::int64_t> indptr = {0, 2, 2 + n, 3 + n};
        for (int axis : {0, 1}) {
          for (int threads : {1, 2}) {
            std::vector<double> values(indices.size(), 1.0);
            std::vector<std::int32_t> ip32(indptr.begin(), indptr.end()), ix32(indices.begin(), indices.end());
            std::vector<std::int64_t> ip64 = indptr, ix64 = indices;
            SparseMatrix m;
            m.format = SparseFormat::kCSR;
            m.rows = 3;
            m.cols = kCols;
            m.nnz = static_cast<std::int64_t>(values.size());
            m.values = values.data();
            m.dtype = DType::kFloat64;
            m.index_type = itype;
            m.indptr = itype == IndexType::kInt32 ? static_cast<void*>(ip32.data()) : ip64.data();
            m.indices = itype == IndexType::kInt32 ? static_cast<void*>(ix32.data()) : ix64.data();
            ASSERT_TRUE(testing::Normalize(&m, Options(axis, NormMode::kConstantNorm, 2.0, threads)).ok());
            const std::string what = std::string(hwy::TargetName(GetParam())) + " " + IndexTypeName(itype) + " n " + std::to_string(n) + " repeat " +
                                     std::to_string(i) + "," + std::to_string(j) + " axis " + std::to_string(axis) +
                                     " threads " + std::to_string(threads);
            for (std::size_t k = 0; k < values.size(); ++k) {
              double want;
              const bool middle = k >= 2 && k < 2 + static_cast<std::size_t>(n);
              const bool repeated = middle && i >= 0 && indices[k] == row[i];
              if (axis == 1) {
                want = k < 2 ? 1.0 / std::sqrt(2.0) : !middle ? 1.0
                                                   : 1.0 / std::sqrt(static_cast<double>(i >= 0 ? n + 2 : n));
              } else {
                want = repeated ? 0.5 : 1.0;
              }
              ASSERT_NEAR(values[k], want, 1e-15) << what << " entry " << k;
            }
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, MatrixPerTarget, ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         testing::TargetParamName);

}  // namespace
}  // namespace sparsenorm
