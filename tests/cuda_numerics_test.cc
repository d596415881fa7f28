// The CUDA kernels' arithmetic (src/cuda/device_numerics.h, compiled here by
// the host compiler) and their order of operations (src/cuda/emulate.h)
// against the CPU path and the reference. Runs on every machine, GPU or
// not: this is how the device numerics are tested where no GPU is present.
// tests/cuda_rows_test.cc and cuda_matrix_test.cc then check, on a GPU, that
// the kernels reproduce the emulation bit for bit.

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
#include "core/plan.h"
#include "cpu/rows_cpu.h"
#include "cuda/device_numerics.h"
#include "cuda/emulate.h"
#include "reference/reference.h"
#include "sparsenorm/rows.h"
#include "test_util.h"

namespace sparsenorm {
namespace {

namespace num = cuda::num;
namespace emulate = cuda::emulate;
using testing::TestScales;
using testing::TestTable;

num::Kind KindOf(DType d) { return static_cast<num::Kind>(static_cast<int>(d)); }

// ---------------------------------------------------------------------------
// Per element.

TEST(CudaNumerics, WideningMatchesTheCpu) {
  for (std::uint32_t h = 0; h <= 0xffff; ++h) {
    const auto b = static_cast<std::uint16_t>(h);
    const float cpu_h = numerics::HalfToFloat(b), dev_h = num::HalfToFloat(b);
    const float cpu_b = numerics::BFloat16ToFloat(b), dev_b = num::BFloat16ToFloat(b);
    ASSERT_EQ(std::bit_cast<std::uint32_t>(cpu_h), std::bit_cast<std::uint32_t>(dev_h)) << std::hex << h;
    ASSERT_EQ(std::bit_cast<std::uint32_t>(cpu_b), std::bit_cast<std::uint32_t>(dev_b)) << std::hex << h;
  }
}

TEST(CudaNumerics, FloatNarrowingMatchesTheCpu) {
  std::mt19937_64 rng(101);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  std::vector<float> values = {0.0f, -0.0f, 65504.0f, 65520.0f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f,
                               FLT_MAX, FLT_MIN, 0x1p-149f, HUGE_VALF, -HUGE_VALF, std::nanf("")};
  for (int i = 0; i < 3000000; ++i) values.push_back(std::bit_cast<float>(any_bits(rng)));
  std::uniform_real_distribution<float> small(-70000.0f, 70000.0f);
  for (int i = 0; i < 1000000; ++i) values.push_back(small(rng));
  for (float f : values) {
    const bool nan = std::isnan(f);
    const std::uint16_t h = num::FloatToHalf(f), b = num::FloatToBFloat16(f);
    if (nan) {
      EXPECT_TRUE(std::isnan(num::HalfToFloat(h)));
      EXPECT_TRUE(std::isnan(num::BFloat16ToFloat(b)));
      continue;
    }
    ASSERT_EQ(h, numerics::FloatToHalf(f)) << f;
    ASSERT_EQ(b, numerics::FloatToBFloat16(f)) << f;
  }
}

// The device narrows float64 by rounding to odd at float32 first; that must
// be the correctly rounded conversion (numerics::DoubleTo* are, as their own
// tests show against a brute-force grid).
TEST(CudaNumerics, DoubleNarrowingIsCorrectlyRounded) {
  std::mt19937_64 rng(102);
  std::vector<double> values = {0.0, -0.0, 65504.0, 65520.0, std::nextafter(65520.0, 0.0), 0x1p-24,
                                0x1p-25, std::nextafter(0x1p-25, 1.0), 0x1.8p-25, 0x1p-133, 0x1p-134,
                                std::nextafter(0x1p-134, 1.0), 1e300, -1e300, 1e-300, 3.4e38,
                                (2.0 - 0x1p-8) * 0x1p127, std::nextafter((2.0 - 0x1p-8) * 0x1p127, 0.0),
                                HUGE_VAL, -HUGE_VAL};
  std::uniform_int_distribution<std::uint64_t> any_bits;
  for (int i = 0; i < 2000000; ++i) {
    const double d = std::bit_cast<double>(any_bits(rng));
    if (!std::isnan(d)) values.push_back(d);
  }
  // Midpoints between neighbouring 16-bit values and the doubles beside them:
  // where a double rounding would show.
  for (std::uint32_t h = 0; h < 0x7bff; h += 7) {
    for (bool bf : {false, true}) {
      const double lo = bf ? num::BFloat16ToFloat(static_cast<std::uint16_t>(h)) : num::HalfToFloat(static_cast<std::uint16_t>(h));
      const double hi = bf ? num::BFloat16ToFloat(static_cast<std::uint16_t>(h + 1)) : num::HalfToFloat(static_cast<std::uint16_t>(h + 1));
      const double mid = (lo + hi) / 2;
      for (double v : {mid, std::nextafter(mid, 0.0), std::nextafter(mid, HUGE_VAL), -mid,
                       mid + (hi - lo) * 0x1p-30, mid - (hi - lo) * 0x1p-30}) {
        values.push_back(v);
      }
    }
  }
  for (double d : values) {
    ASSERT_EQ(num::DoubleToHalf(d), numerics::DoubleToHalf(d)) << d;
    ASSERT_EQ(num::DoubleToBFloat16(d), numerics::DoubleToBFloat16(d)) << d;
  }
}

// The device's FMA form of the exact product equals the CPU's split form,
// and narrowing it gives the correctly rounded exact product.
TEST(CudaNumerics, ExactProductRoundsOnceAndMatchesTheCpu) {
  std::mt19937_64 rng(103);
  for (float s : TestScales(rng, 100, {1e-30f, 1e30f})) {
    const numerics::SplitScale split = numerics::Split(s);
    for (std::uint32_t h = 0; h <= 0xffff; ++h) {
      const auto bits = static_cast<std::uint16_t>(h);
      for (bool bf : {false, true}) {
        const float x = bf ? num::BFloat16ToFloat(bits) : num::HalfToFloat(bits);
        if (!std::isfinite(x)) continue;
        const double exact = static_cast<double>(x) * static_cast<double>(s);
        // The documented limit of both forms: partial products below 2^-110.
        if (exact != 0.0 && std::fabs(exact) < 0x1p-110) continue;
        const float dev = num::ProductRoundToOdd(x, s);
        const float cpu = numerics::ProductRoundToOdd(x, split);
        // Past FLT_MAX the two forms may stop at infinity or at FLT_MAX | 1;
        // both narrow to infinity, which the narrowed checks below confirm.
        if (std::fabs(exact) <= FLT_MAX) {
          ASSERT_EQ(std::bit_cast<std::uint32_t>(dev), std::bit_cast<std::uint32_t>(cpu))
              << "x=" << x << " s=" << s;
        }
        ASSERT_EQ(num::FloatToHalf(dev), num::FloatToHalf(cpu)) << x << " " << s;
        ASSERT_EQ(num::FloatToBFloat16(dev), num::FloatToBFloat16(cpu)) << x << " " << s;
        if (bf) {
          ASSERT_EQ(num::FloatToBFloat16(dev), numerics::DoubleToBFloat16(exact)) << x << " " << s;
        } else {
          ASSERT_EQ(num::FloatToHalf(dev), numerics::DoubleToHalf(exact)) << x << " " << s;
        }
      }
    }
  }
}

num::Scale ScaleOf(double scale, DType dtype) {
  (void)dtype;
  num::Scale s;
  s.action = num::Action::kScale;
  s.d = scale;
  s.shift = 0;
  s.f = static_cast<float>(scale);
  s.fits_float = num::ScaleFitsFloat(scale);
  return s;
}

template <class Tr>
void ScaleWithDevice(const TestTable& in, TestTable* out, const num::Scale& s) {
  const auto* x = static_cast<const typename Tr::Storage*>(in.data());
  auto* y = static_cast<typename Tr::Storage*>(out->data());
  for (std::int64_t k = 0; k < in.cols; ++k) y[k] = Tr::Scaled(x[k], s);
}

void ScaleWithDevice(DType dtype, const TestTable& in, TestTable* out, const num::Scale& s) {
  switch (dtype) {
    case DType::kFloat32:
      return ScaleWithDevice<num::F32>(in, out, s);
    case DType::kFloat64:
      return ScaleWithDevice<num::F64>(in, out, s);
    case DType::kFloat16:
      return ScaleWithDevice<num::F16>(in, out, s);
    case DType::kBFloat16:
      return ScaleWithDevice<num::BF16>(in, out, s);
  }
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
      ScaleWithDevice(dtype, in, &dev, ScaleOf(scale, dtype));
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
    const num::Scale s = ScaleOf(scale, DType::kFloat32);
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

// The decision rule and the scale, including the power-of-two shift when
// target / (norm + eps) overflows, are those of src/core/plan.h.
TEST(CudaNumerics, PlanMatchesTheCpu) {
  std::mt19937_64 rng(105);
  std::uniform_real_distribution<double> exponent(-320.0, 300.0);
  std::vector<double> norms = {0.0, 1.0, 0.5, 2.0, 1e-310, 4.9e-324, 1e-300, 1e300, DBL_MAX, 1e-45};
  for (int i = 0; i < 20000; ++i) norms.push_back(std::pow(10.0, exponent(rng)));
  for (double norm : norms) {
    for (bool finite : {true, false}) {
      for (NormMode mode : {NormMode::kMaxNorm, NormMode::kConstantNorm}) {
        for (double target : {1.0, 0.0, 0.75, 1e300, 3e-320}) {
          for (double eps : {0.0, 1e-12, 1e-7}) {
            NormalizeOptions o;
            o.mode = mode;
            o.target = target;
            o.eps = eps;
            const detail::Plan cpu = detail::PlanFor(detail::VectorNorm{norm, finite}, o);
            num::NormParams prm{mode == NormMode::kMaxNorm ? 0 : 1, target, eps, 2.0, num::NormKind::kL2};
            const num::Scale dev = num::PlanFor(norm, finite, prm);
            ASSERT_EQ(static_cast<int>(dev.action), static_cast<int>(cpu.action)) << norm;
            if (cpu.action != detail::Action::kScale) continue;
            const detail::ScaleFactor f = detail::MakeScale(cpu.scale, cpu.shift);
            ASSERT_EQ(std::bit_cast<std::uint64_t>(dev.d), std::bit_cast<std::uint64_t>(f.d)) << norm;
            ASSERT_EQ(dev.shift, f.shift) << norm;
            ASSERT_EQ(dev.fits_float, f.fits_float) << norm;
            ASSERT_EQ(std::bit_cast<std::uint32_t>(dev.f), std::bit_cast<std::uint32_t>(f.f)) << norm;
          }
        }
      }
    }
  }
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
  EXPECT_EQ(num::KindOf(kInfinity), num::NormKind::kLInf);
  EXPECT_EQ(num::KindOf(3.0), num::NormKind::kLp);
}

TEST(CudaNumerics, WorkLayout) {
  EXPECT_EQ(num::AccessElems(num::Kind::kFloat32, true), 4);
  EXPECT_EQ(num::AccessElems(num::Kind::kFloat16, true), 8);
  EXPECT_EQ(num::AccessElems(num::Kind::kFloat64, true), 2);
  EXPECT_EQ(num::AccessElems(num::Kind::kBFloat16, false), 1);
  for (std::int64_t a : {0, 1, 2, 3, 4, 5, 8, 9, 31, 32, 64, 65, 128, 1000}) {
    const int g = num::GroupSizeFor(a);
    EXPECT_GE(g, 1);
    EXPECT_LE(g, 32);
    EXPECT_EQ(g & (g - 1), 0) << a;
    if (g < 32) EXPECT_LE(a, 2 * g) << a;  // at most two accesses per lane below 32 lanes
    if (g > 1) EXPECT_GT(a, g) << a;       // never idle lanes by design
  }
}

// ---------------------------------------------------------------------------
// Per vector: the emulated kernel norm against the reference and the CPU.

template <class Tr>
emulate::VectorResult DecideTable(const TestTable& t, int group, int elems, double p) {
  num::NormParams prm{1, 1.0, 0.0, p, num::KindOf(p)};
  return emulate::Decide<Tr>(static_cast<const typename Tr::Storage*>(t.data()), t.cols, group, elems, prm);
}

emulate::VectorResult DecideTable(DType dtype, const TestTable& t, int group, int elems, double p) {
  switch (dtype) {
    case DType::kFloat32:
      return DecideTable<num::F32>(t, group, elems, p);
    case DType::kFloat64:
      return DecideTable<num::F64>(t, group, elems, p);
    case DType::kFloat16:
      return DecideTable<num::F16>(t, group, elems, p);
    case DType::kBFloat16:
      break;
  }
  return DecideTable<num::BF16>(t, group, elems, p);
}

void ExpectNorm(DType dtype, const TestTable& t, double p, const char* what) {
  std::vector<double> x(static_cast<std::size_t>(t.cols));
  for (std::int64_t k = 0; k < t.cols; ++k) x[k] = t.Get(0, k);
  const double want = reference::Norm(x, p);
  const detail::VectorNorm cpu = cpu::NormOfVector(dtype, t.data(), static_cast<std::size_t>(t.cols), p);
  for (bool vectorized : {false, true}) {
    const int elems = num::AccessElems(KindOf(dtype), vectorized);
    if (t.cols % elems != 0) continue;
    for (int group : {num::GroupSizeFor(t.cols / elems), 1, 32}) {
      const emulate::VectorResult got = DecideTable(dtype, t, group, elems, p);
      if (std::isnan(want)) {
        EXPECT_EQ(got.outcome, emulate::Outcome::kNonFinite) << what;
        continue;
      }
      ASSERT_NE(got.outcome, emulate::Outcome::kNonFinite) << what << " " << DTypeName(dtype);
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
        EXPECT_EQ(z.outcome, emulate::Outcome::kZero);
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
              EXPECT_EQ(DecideTable(dtype, t, group, 1, p).outcome, emulate::Outcome::kNonFinite)
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
// with the tolerance of tests/rows_test.cc (the sums run in another order).

double UlpTolerance(DType dtype, double p) {
  switch (dtype) {
    case DType::kFloat32:
      return 8;
    case DType::kFloat64:
      return 16 * std::max(1.0, 1.0 / p);
    default:
      return 1;
  }
}

template <class Tr>
void EmulateRows(TestTable* t, const std::vector<std::int64_t>& rows, bool vectorized,
                 const NormalizeOptions& o) {
  num::NormParams prm{o.mode == NormMode::kMaxNorm ? 0 : 1, o.target, o.eps, o.p, num::KindOf(o.p)};
  auto* base = static_cast<typename Tr::Storage*>(t->data());
  for (std::int64_t r : rows) emulate::ProcessRow<Tr>(base + r * t->stride, t->cols, vectorized, prm);
}

void EmulateRows(TestTable* t, const std::vector<std::int64_t>& rows, bool vectorized,
                 const NormalizeOptions& o) {
  switch (t->dtype) {
    case DType::kFloat32:
      return EmulateRows<num::F32>(t, rows, vectorized, o);
    case DType::kFloat64:
      return EmulateRows<num::F64>(t, rows, vectorized, o);
    case DType::kFloat16:
      return EmulateRows<num::F16>(t, rows, vectorized, o);
    case DType::kBFloat16:
      return EmulateRows<num::BF16>(t, rows, vectorized, o);
  }
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
            const double tol = UlpTolerance(dtype, p);
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
        num::NormParams prm{1, 1.0, 0.0, p, num::KindOf(p)};
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
            if (scattered.scale.action == num::Action::kScale) y = Tr::Scaled(y, scattered.scale);
            const double got = static_cast<double>(Tr::Widen(y));
            const double ref = ReferenceScaled(column, want, static_cast<std::size_t>(r), dtype, o);
            TestTable cell(dtype, 1, 1);
            cell.Set(0, 0, ref);
            ASSERT_LE(testing::UlpDistance(dtype, got, cell.Get(0, 0)), UlpTolerance(dtype, p)) << DTypeName(dtype);
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
  num::NormParams prm{1, 1.0, 0.0, 2.0, num::NormKind::kL2};
  const double first = emulate::Scattered<num::F32>(v, prm).norm;
  for (int i = 0; i < 5; ++i) {
    std::shuffle(v.begin(), v.end(), rng);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(emulate::Scattered<num::F32>(v, prm).norm),
              std::bit_cast<std::uint64_t>(first));
  }
}

}  // namespace
}  // namespace sparsenorm
