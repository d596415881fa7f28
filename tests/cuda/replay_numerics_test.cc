// The CUDA kernels' arithmetic (src/cuda/device_math.h and src/common/,
// compiled here by the host compiler) and their order of operations
// (emulate.h) against the CPU path and the reference. Runs on every machine,
// GPU or not: this is how the device numerics are tested where no GPU is
// present. gpu_rows_test.cc and gpu_matrix_test.cc then check, on a GPU,
// that the kernels reproduce the emulation bit for bit.
//
// The element conversions and the decision rule are no longer tested here
// against a CPU twin: there is one definition of each, host and device
// (src/common/), tested in tests/numerics/.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/numerics.h"
#include "core/validate.h"
#include "cpu/rows_cpu.h"
#include "cuda/device_math.h"
#include "emulate.h"
#include "reference/reference.h"
#include "sparsenorm/rows.h"
#include "test_util.h"

namespace sparsenorm {
namespace {

namespace num = cuda::num;
namespace emulate = cuda::emulate;
using testing::TestScales;
using testing::TestTable;

// ---------------------------------------------------------------------------
// Per element.

Scale ScaleOf(double scale) { return ScaleBy(scale); }

template <class Tr>
void ScaleWithDevice(const TestTable& in, TestTable* out, const Scale& s) {
  const auto* x = static_cast<const typename Tr::Storage*>(in.data());
  auto* y = static_cast<typename Tr::Storage*>(out->data());
  for (std::int64_t k = 0; k < in.cols; ++k) y[k] = Tr::Scaled(x[k], s);
}

void ScaleWithDevice(DType dtype, const TestTable& in, TestTable* out, const Scale& s) {
  VisitDType(dtype, [&](auto t) { ScaleWithDevice<num::DeviceTraits<TypeOf<decltype(t)>>>(in, out, s); });
}

// Given the same scale, every element comes out bit for bit as the CPU
// kernels write it, on every dtype and for scales inside and outside
// float32's normal range.
TEST(CudaNumerics, ScalingMatchesTheCpuBitForBit) {
  std::mt19937_64 rng(104);
  std::normal_distribution<double> normal(0.0, 10.0);
  const double scales[] = {0.731, 1.0 / 3.0, 2.5, 1e-3, 1e40, 1e-40, 1e-310, 0.0, 7.0 / 11.0};
  for (DType dtype : testing::kAllDTypes) {
    for (double scale : scales) {
      TestTable in(dtype, 1, 300);
      for (std::int64_t k = 0; k < in.cols; ++k) in.Set(0, k, normal(rng) * (k % 5 == 0 ? 1e-4 : 1.0));
      TestTable cpu = in, dev = in;
      cpu::ScaleVector(dtype, in.data(), cpu.data(), static_cast<std::size_t>(in.cols), scale);
      ScaleWithDevice(dtype, in, &dev, ScaleOf(scale));
      for (std::int64_t k = 0; k < in.cols; ++k) {
        ASSERT_EQ(dev.Bits(0, k), cpu.Bits(0, k)) << DTypeName(dtype) << " scale " << scale << " k " << k;
      }
    }
  }
}

// The kernels take a shortcut when the scale is a normal float32 (float64:
// no shift); it must be the general function exactly.
template <class Tr>
void CheckFastScaling(std::mt19937_64& rng) {
  std::uniform_int_distribution<std::uint64_t> any_bits;
  for (double scale : {0.731, 1.0 / 3.0, 2.5, 1e-3, 1e30, 0.0, 7.0 / 11.0, 1e-37}) {
    const Scale s = ScaleOf(scale);
    if (!Tr::Fast(s)) continue;
    for (int i = 0; i < 200000; ++i) {
      typename Tr::Storage x;
      const std::uint64_t bits = any_bits(rng);
      std::memcpy(&x, &bits, sizeof x);
      if (!std::isfinite(static_cast<double>(Tr::Widen(x)))) continue;
      const typename Tr::Storage a = Tr::ScaledFast(x, s), b = Tr::Scaled(x, s);
      ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0) << scale;
    }
  }
}

TEST(CudaNumerics, FastScalingIsTheGeneralScaling) {
  std::mt19937_64 rng(111);
  CheckFastScaling<num::F32>(rng);
  CheckFastScaling<num::F64>(rng);
  CheckFastScaling<num::F16>(rng);
  CheckFastScaling<num::BF16>(rng);
}

TEST(CudaNumerics, FixedPointSumsAreExactIntegers) {
  EXPECT_EQ(num::FixedTerm(1.0), 1ull << 63);
  EXPECT_EQ(num::FixedTerm(0.0), 0ull);
  EXPECT_EQ(num::FixedTerm(0.5), 1ull << 62);
  EXPECT_EQ(num::FixedTerm(0x1p-63), 1ull);
  EXPECT_EQ(num::FixedTerm(0x1p-65), 0ull);
  EXPECT_EQ(num::FixedToDouble(0, 1ull << 63), 1.0);
  EXPECT_EQ(num::FixedToDouble(1, 0), 2.0);
  EXPECT_EQ(num::FixedToDouble(3, 1ull << 62), 6.5);
  EXPECT_EQ(KindOf(kInfinity), NormKind::kLInf);
  EXPECT_EQ(KindOf(3.0), NormKind::kLp);
}

TEST(CudaNumerics, WorkLayout) {
  EXPECT_EQ(num::AccessElems(sizeof(float), true), 4);
  EXPECT_EQ(num::AccessElems(sizeof(float16), true), 8);
  EXPECT_EQ(num::AccessElems(sizeof(double), true), 2);
  EXPECT_EQ(num::AccessElems(sizeof(bfloat16), false), 1);
  for (std::int64_t a : {0, 1, 2, 3, 4, 5, 8, 9, 31, 32, 64, 65, 128, 1000}) {
    const int g = num::GroupSizeFor(a);
    EXPECT_GE(g, 1);
    EXPECT_LE(g, 32);
    EXPECT_EQ(g & (g - 1), 0) << a;
    if (g < 32) {
      EXPECT_LE(a, 2 * g) << a;  // at most two accesses per lane below 32 lanes
    }
    if (g > 1) {
      EXPECT_GT(a, g) << a;  // never idle lanes by design
    }
  }
}

// ---------------------------------------------------------------------------
// Per vector: the emulated kernel norm against the reference and the CPU.

template <class Tr>
emulate::VectorResult DecideTable(const TestTable& t, int group, int elems, double p) {
  const NormRule prm{false, 1.0, 0.0, p, KindOf(p)};
  return emulate::Decide<Tr>(static_cast<const typename Tr::Storage*>(t.data()), t.cols, group, elems, prm);
}

emulate::VectorResult DecideTable(DType dtype, const TestTable& t, int group, int elems, double p) {
  emulate::VectorResult r{};
  VisitDType(dtype, [&](auto tag) { r = DecideTable<num::DeviceTraits<TypeOf<decltype(tag)>>>(t, group, elems, p); });
  return r;
}

void ExpectNorm(DType dtype, const TestTable& t, double p, const char* what) {
  std::vector<double> x(static_cast<std::size_t>(t.cols));
  for (std::int64_t k = 0; k < t.cols; ++k) x[k] = t.Get(0, k);
  const double want = reference::Norm(x, p);
  const VectorNorm cpu = cpu::NormOfVector(dtype, t.data(), static_cast<std::size_t>(t.cols), p);
  for (bool vectorized : {false, true}) {
    const int elems = num::AccessElems(DTypeSize(dtype), vectorized);
    if (t.cols % elems != 0) continue;
    for (int group : {num::GroupSizeFor(t.cols / elems), 1, 32}) {
      const emulate::VectorResult got = DecideTable(dtype, t, group, elems, p);
      if (std::isnan(want)) {
        EXPECT_EQ(got.outcome, Outcome::kNonFinite) << what;
        continue;
      }
      ASSERT_NE(got.outcome, Outcome::kNonFinite) << what << " " << DTypeName(dtype);
      const double tol = dtype == DType::kFloat64 ? 1e-13 : 2e-6;
      EXPECT_NEAR(got.norm, want, tol * want) << what << " " << DTypeName(dtype) << " p=" << p
                                              << " n=" << t.cols << " G=" << group;
      EXPECT_NEAR(got.norm, cpu.value, 2 * tol * want) << what << " against the CPU";
    }
  }
}

TEST(CudaNumerics, NormMatchesReferenceAndCpu) {
  std::mt19937_64 rng(106);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (DType dtype : testing::kAllDTypes) {
    for (std::int64_t n : {1, 2, 3, 7, 8, 9, 16, 17, 31, 32, 33, 64, 100, 128, 257, 512, 1000, 4096}) {
      TestTable t(dtype, 1, n);
      for (std::int64_t k = 0; k < n; ++k) t.Set(0, k, normal(rng));
      for (double p : {1.0, 2.0, 3.0, 0.5, kInfinity}) ExpectNorm(dtype, t, p, "random");
    }
  }
}

TEST(CudaNumerics, NormIsRightAtTheEndsOfTheRange) {
  for (DType dtype : testing::kAllDTypes) {
    const double huge = dtype == DType::kFloat64 ? 1e300 : dtype == DType::kFloat16 ? 6e4 : 3e38;
    const double tiny = dtype == DType::kFloat64 ? 1e-310 : dtype == DType::kFloat16 ? 1e-7 : 1e-41;
    for (std::int64_t n : {1, 5, 16, 64, 130}) {
      for (double p : {1.0, 2.0, 3.0, kInfinity}) {
        TestTable big(dtype, 1, n), small(dtype, 1, n), zero(dtype, 1, n);
        for (std::int64_t k = 0; k < n; ++k) {
          big.Set(0, k, (k % 2 ? -huge : huge) * (1.0 - 0.001 * static_cast<double>(k % 7)));
          small.Set(0, k, tiny * static_cast<double>(1 + k % 3));
          zero.Set(0, k, 0.0);
        }
        ExpectNorm(dtype, big, p, "huge");
        ExpectNorm(dtype, small, p, "tiny");
        const emulate::VectorResult z = DecideTable(dtype, zero, 4, 1, p);
        EXPECT_EQ(z.outcome, Outcome::kZero);
        EXPECT_EQ(z.norm, 0.0);
      }
    }
  }
}

TEST(CudaNumerics, NonFiniteValuesAreDetectedAnywhere) {
  for (DType dtype : testing::kAllDTypes) {
    for (std::int64_t n : {1, 7, 8, 9, 33, 100}) {
      for (std::int64_t where : {std::int64_t{0}, n / 2, n - 1}) {
        for (double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {
          TestTable t(dtype, 1, n);
          for (std::int64_t k = 0; k < n; ++k) t.Set(0, k, 0.5);
          t.Set(0, where, bad);
          for (double p : {1.0, 2.0, 3.0, kInfinity}) {
            for (int group : {1, 2, 32}) {
              EXPECT_EQ(DecideTable(dtype, t, group, 1, p).outcome, Outcome::kNonFinite)
                  << DTypeName(dtype) << " n=" << n << " at " << where << " p=" << p;
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Whole rows: the emulated kernel against the reference and the CPU path,
// with the tolerance of the row tests (the sums run in another order).

template <class Tr>
void EmulateRows(TestTable* t, const std::vector<std::int64_t>& rows, bool vectorized,
                 const NormalizeOptions& o) {
  const NormRule prm = detail::RuleOf(o);
  auto* base = static_cast<typename Tr::Storage*>(t->data());
  for (std::int64_t r : rows) emulate::ProcessRow<Tr>(base + r * t->stride, t->cols, vectorized, prm);
}

void EmulateRows(TestTable* t, const std::vector<std::int64_t>& rows, bool vectorized,
                 const NormalizeOptions& o) {
  VisitDType(t->dtype, [&](auto tag) { EmulateRows<num::DeviceTraits<TypeOf<decltype(tag)>>>(t, rows, vectorized, o); });
}

TEST(CudaNumerics, EmulatedRowOperatorMatchesReferenceAndCpu) {
  std::mt19937_64 rng(107);
  int cases = 0;
  for (DType dtype : testing::kAllDTypes) {
    for (std::int64_t cols : {1, 3, 8, 16, 17, 32, 64, 100, 128, 129, 512, 1024}) {
      TestTable base(dtype, 30, cols);
      testing::FillRandom(&base, rng);
      std::vector<std::int64_t> rows(static_cast<std::size_t>(base.rows));
      for (std::int64_t r = 0; r < base.rows; ++r) rows[static_cast<std::size_t>(r)] = r;
      for (NormMode mode : {NormMode::kMaxNorm, NormMode::kConstantNorm}) {
        for (double p : {2.0, 1.0, kInfinity, 3.0}) {
          NormalizeOptions o;
          o.mode = mode;
          o.p = p;
          o.target = p == 2.0 ? 1.0 : 0.75;
          TestTable ref = base, cpu = base;
          NormalizeOptions ro = o;
          ro.backend = Backend::kReference;
          ASSERT_TRUE(NormalizeRows(ref.view(), Indices(std::span<const std::int64_t>(rows)), ro).ok());
          ASSERT_TRUE(NormalizeRows(cpu.view(), Indices(std::span<const std::int64_t>(rows)), o).ok());
          for (bool vectorized : {false, true}) {
            if (vectorized && (cols * static_cast<std::int64_t>(DTypeSize(dtype))) % 16 != 0) continue;
            TestTable dev = base;
            EmulateRows(&dev, rows, vectorized, o);
            const double tol = testing::NormUlpTolerance(dtype, p);
            for (std::int64_t r = 0; r < base.rows; ++r) {
              for (std::int64_t k = 0; k < cols; ++k) {
                // (The message is built only when an assertion fails.)
                ASSERT_LE(testing::UlpDistance(dtype, dev.Get(r, k), ref.Get(r, k)), tol)
                    << testing::Describe(dtype, base.rows, cols) << " p " << p << " mode "
                    << static_cast<int>(mode) << " row " << r << " col " << k;
                ASSERT_LE(testing::UlpDistance(dtype, dev.Get(r, k), cpu.Get(r, k)), 2 * tol)
                    << testing::Describe(dtype, base.rows, cols) << " p " << p << " mode "
                    << static_cast<int>(mode) << " row " << r << " col " << k << " (CPU)";
              }
            }
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 300);
}

// Where the CPU and the emulated device differ at all, it is by the order of
// a float sum: count how often, to document it (docs/CUDA.md).
TEST(CudaNumerics, DifferencesFromTheCpuAreRareAndTiny) {
  std::mt19937_64 rng(108);
  for (DType dtype : testing::kAllDTypes) {
    std::int64_t differing = 0, total = 0;
    double worst = 0;
    for (std::int64_t cols : {16, 32, 128, 512}) {
      TestTable base(dtype, 200, cols);
      testing::FillRandom(&base, rng);
      std::vector<std::int64_t> rows(static_cast<std::size_t>(base.rows));
      for (std::int64_t r = 0; r < base.rows; ++r) rows[static_cast<std::size_t>(r)] = r;
      NormalizeOptions o;
      o.mode = NormMode::kConstantNorm;
      TestTable cpu = base, dev = base;
      ASSERT_TRUE(NormalizeRows(cpu.view(), Indices(std::span<const std::int64_t>(rows)), o).ok());
      EmulateRows(&dev, rows, true, o);
      for (std::int64_t r = 0; r < base.rows; ++r) {
        for (std::int64_t k = 0; k < cols; ++k) {
          ++total;
          const double d = testing::UlpDistance(dtype, dev.Get(r, k), cpu.Get(r, k));
          differing += d != 0;
          worst = std::max(worst, d);
        }
      }
    }
    RecordProperty(std::string(DTypeName(dtype)) + "_differing", std::to_string(differing) + "/" + std::to_string(total));
    std::printf("%s: %lld of %lld elements differ from the CPU, by at most %g ulp\n", DTypeName(dtype),
                static_cast<long long>(differing), static_cast<long long>(total), worst);
    EXPECT_LE(worst, dtype == DType::kFloat32 || dtype == DType::kFloat64 ? 8.0 : 1.0);
  }
}

// ---------------------------------------------------------------------------
// Matrix paths: dense columns (chunked) and scattered vectors (fixed point)
// against a float64 reference.

double ReferenceScaled(const std::vector<double>& v, double n, std::size_t k, DType dtype,
                       const NormalizeOptions& o) {
  if (std::isnan(n) || !reference::IsScaled(n, o)) return v[k];
  const reference::AppliedScale s = reference::EffectiveScale(n, dtype, o);
  double out = 0;
  reference::StoreRounded(&out, DType::kFloat64, 0, std::ldexp(v[k], s.shift) * s.factor);
  return out;
}

template <class Tr>
void CheckMatrixPaths(DType dtype, std::mt19937_64& rng) {
  using S = typename Tr::Storage;
  for (std::int64_t rows : {1, 7, 100, 1000}) {
    for (std::int64_t cols : {1, 5, 64}) {
      TestTable m(dtype, rows, cols);
      testing::FillRandom(&m, rng);
      for (double p : {2.0, 1.0, kInfinity, 3.0}) {
        NormalizeOptions o;
        o.mode = NormMode::kConstantNorm;
        o.eps = 0.0;
        o.p = p;
        const NormRule prm{false, 1.0, 0.0, p, KindOf(p)};
        const auto* x = static_cast<const S*>(m.data());
        const std::int64_t chunk_rows = std::max<std::int64_t>(1, rows / 7);
        for (std::int64_t c = 0; c < cols; ++c) {
          std::vector<double> column(static_cast<std::size_t>(rows));
          std::vector<S> stored(static_cast<std::size_t>(rows));
          for (std::int64_t r = 0; r < rows; ++r) {
            column[static_cast<std::size_t>(r)] = m.Get(r, c);
            stored[static_cast<std::size_t>(r)] = x[r * cols + c];
          }
          const double want = reference::Norm(column, p);
          const emulate::VectorResult dense = emulate::DenseColumn<Tr>(x, rows, cols, c, chunk_rows, prm);
          const emulate::VectorResult scattered = emulate::Scattered<Tr>(stored, prm);
          const double tol = dtype == DType::kFloat64 ? 1e-13 : 2e-6;
          ASSERT_NEAR(dense.norm, want, tol * want) << DTypeName(dtype) << " p " << p;
          // The fixed-point sum is exact up to 2^-64 per term: float64-tight.
          ASSERT_NEAR(scattered.norm, want, 1e-14 * want) << DTypeName(dtype) << " p " << p << " rows " << rows;
          // And the elements, within the row operator's tolerance.
          for (std::int64_t r = 0; r < rows; r += 13) {
            S y = stored[static_cast<std::size_t>(r)];
            if (scattered.scale.action == Action::kScale) y = Tr::Scaled(y, scattered.scale);
            const double got = static_cast<double>(Tr::Widen(y));
            const double ref = ReferenceScaled(column, want, static_cast<std::size_t>(r), dtype, o);
            TestTable cell(dtype, 1, 1);
            cell.Set(0, 0, ref);
            ASSERT_LE(testing::UlpDistance(dtype, got, cell.Get(0, 0)), testing::NormUlpTolerance(dtype, p)) << DTypeName(dtype);
          }
        }
      }
    }
  }
}

TEST(CudaNumerics, MatrixPathsMatchTheReference) {
  std::mt19937_64 rng(109);
  CheckMatrixPaths<num::F32>(DType::kFloat32, rng);
  CheckMatrixPaths<num::F64>(DType::kFloat64, rng);
  CheckMatrixPaths<num::F16>(DType::kFloat16, rng);
  CheckMatrixPaths<num::BF16>(DType::kBFloat16, rng);
}

// The fixed-point sum does not depend on the order of the terms: the
// property that makes the scattered path deterministic under atomics.
TEST(CudaNumerics, FixedPointSumIgnoresOrder) {
  std::mt19937_64 rng(110);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<float> v(5000);
  for (float& f : v) f = static_cast<float>(normal(rng) * std::pow(10.0, normal(rng) * 3));
  const NormRule prm{false, 1.0, 0.0, 2.0, NormKind::kL2};
  const double first = emulate::Scattered<num::F32>(v, prm).norm;
  for (int i = 0; i < 5; ++i) {
    std::shuffle(v.begin(), v.end(), rng);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(emulate::Scattered<num::F32>(v, prm).norm),
              std::bit_cast<std::uint64_t>(first));
  }
}

}  // namespace
}  // namespace sparsenorm
