// The building blocks of the numeric contract: 16-bit conversions, the
// correctly rounded narrowing from float64, the exact-product rounding, and
// the per-target vector kernels against their scalar definitions.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "common/numerics.h"
#include "common/stochastic_rounding.h"
#include "cpu/rows_cpu.h"
#include "reference/reference.h"
#include "test_util.h"

namespace sparsenorm {
namespace {

using numerics::BFloat16ToFloat;
using numerics::DoubleToBFloat16;
using numerics::DoubleToHalf;
using numerics::FloatToBFloat16;
using numerics::FloatToHalf;
using numerics::HalfToFloat;
using testing::TestScales;

// Independent decoding of a binary16 pattern from its definition.
double DecodeHalf(std::uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  if (exponent == 0x1f) {
    return mantissa ? std::numeric_limits<double>::quiet_NaN() : sign * HUGE_VAL;
  }
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

// The nearest of all finite values (given as sorted non-negative doubles with
// their bit patterns), ties to the even pattern; `overflow` and above go to
// infinity. The brute-force oracle for the narrowing functions.
struct Grid {
  std::vector<double> values;
  std::vector<std::uint16_t> bits;
  double overflow;
  std::uint16_t infinity;

  std::uint16_t Nearest(double v) const {
    const std::uint16_t sign = std::signbit(v) ? 0x8000 : 0;
    const double a = std::fabs(v);
    if (a >= overflow) return sign | infinity;
    auto it = std::lower_bound(values.begin(), values.end(), a);
    if (it == values.end()) return sign | bits.back();
    const std::size_t hi = static_cast<std::size_t>(it - values.begin());
    if (values[hi] == a || hi == 0) return sign | bits[hi];
    const std::size_t lo = hi - 1;
    const double dlo = a - values[lo];
    const double dhi = values[hi] - a;
    if (dlo < dhi) return sign | bits[lo];
    if (dhi < dlo) return sign | bits[hi];
    return sign | ((bits[lo] & 1) == 0 ? bits[lo] : bits[hi]);
  }
};

Grid HalfGrid() {
  Grid g;
  for (std::uint32_t h = 0; h < 0x7c00; ++h) {
    g.values.push_back(DecodeHalf(static_cast<std::uint16_t>(h)));
    g.bits.push_back(static_cast<std::uint16_t>(h));
  }
  g.overflow = 65520.0;
  g.infinity = 0x7c00;
  return g;
}

Grid BFloat16Grid() {
  Grid g;
  for (std::uint32_t b = 0; b < 0x7f80; ++b) {
    g.values.push_back(std::ldexp(1.0, 0) * BFloat16ToFloat(static_cast<std::uint16_t>(b)));
    g.bits.push_back(static_cast<std::uint16_t>(b));
  }
  g.overflow = (2.0 - std::ldexp(1.0, -8)) * std::ldexp(1.0, 127);
  g.infinity = 0x7f80;
  return g;
}

// Doubles that stress a grid: random magnitudes, exact midpoints between
// neighbours, and the doubles just beside them.
std::vector<double> StressValues(const Grid& g, std::mt19937_64& rng) {
  std::vector<double> v;
  std::uniform_int_distribution<std::size_t> pick(0, g.values.size() - 2);
  for (int i = 0; i < 20000; ++i) {
    const std::size_t k = pick(rng);
    const double mid = (g.values[k] + g.values[k + 1]) / 2;
    v.push_back(mid);
    v.push_back(std::nextafter(mid, 0.0));
    v.push_back(std::nextafter(mid, HUGE_VAL));
    v.push_back(-mid);
    std::uniform_real_distribution<double> between(g.values[k], g.values[k + 1]);
    v.push_back(between(rng));
  }
  v.push_back(g.overflow);
  v.push_back(std::nextafter(g.overflow, 0.0));
  v.push_back(0.0);
  v.push_back(-0.0);
  return v;
}

TEST(Numerics, HalfToFloatMatchesDefinition) {
  for (std::uint32_t h = 0; h <= 0xffff; ++h) {
    const double want = DecodeHalf(static_cast<std::uint16_t>(h));
    const float got = HalfToFloat(static_cast<std::uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << std::hex << h;
    } else {
      EXPECT_EQ(static_cast<double>(got), want) << std::hex << h;
      EXPECT_EQ(std::signbit(got), (h & 0x8000) != 0) << std::hex << h;
    }
  }
}

TEST(Numerics, SixteenBitRoundTripsThroughFloat) {
  for (std::uint32_t h = 0; h <= 0xffff; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    if ((h & 0x7c00) != 0x7c00 || (h & 0x3ff) == 0) {  // not NaN
      EXPECT_EQ(FloatToHalf(HalfToFloat(bits)), bits) << std::hex << h;
    }
    if ((h & 0x7f80) != 0x7f80 || (h & 0x7f) == 0) {
      EXPECT_EQ(FloatToBFloat16(BFloat16ToFloat(bits)), bits) << std::hex << h;
    }
  }
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::nanf("")))));
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(std::nanf("")))));
}

TEST(Numerics, DoubleToHalfIsCorrectlyRounded) {
  const Grid grid = HalfGrid();
  std::mt19937_64 rng(1);
  for (double v : StressValues(grid, rng)) {
    ASSERT_EQ(DoubleToHalf(v), grid.Nearest(v)) << v;
  }
}

TEST(Numerics, DoubleToBFloat16IsCorrectlyRounded) {
  const Grid grid = BFloat16Grid();
  std::mt19937_64 rng(2);
  for (double v : StressValues(grid, rng)) {
    ASSERT_EQ(DoubleToBFloat16(v), grid.Nearest(v)) << v;
  }
}

// Float64 narrowing rounds to odd at float32 first (the device's way, and
// since there is one definition, the CPU's): random bit patterns over the
// whole float64 range and the midpoints between neighbouring 16-bit values,
// against the brute-force grid.
TEST(Numerics, DoubleNarrowingIsCorrectlyRoundedEverywhere) {
  const Grid half = HalfGrid(), bf = BFloat16Grid();
  std::mt19937_64 rng(102);
  std::vector<double> values = {0.0, -0.0, 65504.0, 65520.0, std::nextafter(65520.0, 0.0), 0x1p-24,
                                0x1p-25, std::nextafter(0x1p-25, 1.0), 0x1.8p-25, 0x1p-133, 0x1p-134,
                                std::nextafter(0x1p-134, 1.0), 1e300, -1e300, 1e-300, 3.4e38,
                                (2.0 - 0x1p-8) * 0x1p127, std::nextafter((2.0 - 0x1p-8) * 0x1p127, 0.0),
                                HUGE_VAL, -HUGE_VAL};
  std::uniform_int_distribution<std::uint64_t> any_bits;
  for (int i = 0; i < 500000; ++i) {
    const double d = std::bit_cast<double>(any_bits(rng));
    if (!std::isnan(d)) values.push_back(d);
  }
  for (std::uint32_t h = 0; h < 0x7bff; h += 7) {
    for (bool is_bf : {false, true}) {
      const double lo = is_bf ? BFloat16ToFloat(static_cast<std::uint16_t>(h)) : HalfToFloat(static_cast<std::uint16_t>(h));
      const double hi = is_bf ? BFloat16ToFloat(static_cast<std::uint16_t>(h + 1)) : HalfToFloat(static_cast<std::uint16_t>(h + 1));
      const double mid = (lo + hi) / 2;
      for (double v : {mid, std::nextafter(mid, 0.0), std::nextafter(mid, HUGE_VAL), -mid,
                       mid + (hi - lo) * 0x1p-30, mid - (hi - lo) * 0x1p-30}) {
        values.push_back(v);
      }
    }
  }
  for (double d : values) {
    ASSERT_EQ(DoubleToHalf(d), half.Nearest(d)) << d;
    ASSERT_EQ(DoubleToBFloat16(d), bf.Nearest(d)) << d;
  }
}

TEST(Numerics, FloatNarrowingIsCorrectlyRounded) {
  // Every float32 value is a double, so float -> 16-bit must agree with the
  // correctly rounded double -> 16-bit on all of them; sample widely,
  // including subnormals of both targets and values near overflow.
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  for (int i = 0; i < 2000000; ++i) {
    const float f = std::bit_cast<float>(any_bits(rng));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToBFloat16(f), DoubleToBFloat16(f)) << f;
    ASSERT_EQ(FloatToHalf(f), DoubleToHalf(f)) << f;
  }
  std::uniform_real_distribution<float> small(-70000.0f, 70000.0f);
  for (int i = 0; i < 1000000; ++i) {
    const float f = small(rng);
    ASSERT_EQ(FloatToHalf(f), DoubleToHalf(f)) << f;
  }
}

// For every finite 16-bit value x and many scales s: narrowing the
// round-to-odd float32 product gives the correctly rounded exact product.
TEST(Numerics, ExactProductRoundsOnce) {
  std::mt19937_64 rng(4);
  for (float s : TestScales(rng, 120)) {
    for (std::uint32_t h = 0; h <= 0xffff; ++h) {
      const auto bits = static_cast<std::uint16_t>(h);
      const float xh = HalfToFloat(bits);
      if (std::isfinite(xh)) {
        const double exact = static_cast<double>(xh) * static_cast<double>(s);
        ASSERT_EQ(FloatToHalf(numerics::ProductRoundToOdd(xh, s)), DoubleToHalf(exact))
            << "x=" << xh << " s=" << s;
      }
      const float xb = BFloat16ToFloat(bits);
      const double exact_b = static_cast<double>(xb) * static_cast<double>(s);
      // Documented limit: below 2^-110 the product may underflow float32.
      if (std::isfinite(xb) && (exact_b == 0.0 || std::fabs(exact_b) >= 0x1p-110)) {
        ASSERT_EQ(FloatToBFloat16(numerics::ProductRoundToOdd(xb, s)), DoubleToBFloat16(exact_b))
            << "x=" << xb << " s=" << s;
      }
    }
  }
}

// A plain float32 rounding of the product would fail the test above: this
// input is a case where double rounding goes wrong, so the test has teeth.
TEST(Numerics, NaiveFloatProductDoubleRounds) {
  std::mt19937_64 rng(5);
  int disagreements = 0;
  for (float s : TestScales(rng, 40)) {
    for (std::uint32_t h = 0; h < 0x7c00; ++h) {
      const float x = HalfToFloat(static_cast<std::uint16_t>(h));
      if (FloatToHalf(x * s) != DoubleToHalf(static_cast<double>(x) * s)) ++disagreements;
    }
  }
  EXPECT_GT(disagreements, 0);
}

// ---------------------------------------------------------------------------
// Per-target vector kernels against their scalar definitions.

class NumericsPerTarget : public testing::PerTarget {};

TEST_P(NumericsPerTarget, DispatchFollowsTheMock) {
  EXPECT_STREQ(cpu::DispatchedTargetName(), hwy::TargetName(GetParam()));
}

TEST_P(NumericsPerTarget, ScaleVectorRoundsEachElementOnce) {
  std::mt19937_64 rng(6);
  std::normal_distribution<double> normal(0.0, 10.0);
  const double scales[] = {0.731, 1.0 / 3.0, 2.5, 1e-3, 1e40, 0.0};
  for (DType dtype : testing::kAllDTypes) {
    for (std::size_t n = 0; n <= 70; ++n) {
      for (double scale : scales) {
        testing::TestTable in(dtype, 1, static_cast<std::int64_t>(n));
        for (std::size_t k = 0; k < n; ++k) in.Set(0, static_cast<std::int64_t>(k), normal(rng));
        testing::TestTable out = in;
        cpu::ScaleVector(dtype, in.data(), out.data(), n, scale);
        testing::TestTable inplace = in;
        cpu::ScaleVector(dtype, inplace.data(), inplace.data(), n, scale);
        const double s_eff = dtype == DType::kFloat64 || !numerics::ScaleFitsFloat(scale)
                                 ? scale
                                 : static_cast<float>(scale);
        testing::TestTable want = in;
        for (std::size_t k = 0; k < n; ++k) {
          const auto kk = static_cast<std::int64_t>(k);
          want.Set(0, kk, in.Get(0, kk) * s_eff);
        }
        for (std::size_t k = 0; k < n; ++k) {
          const auto kk = static_cast<std::int64_t>(k);
          ASSERT_EQ(out.Bits(0, kk), want.Bits(0, kk))
              << DTypeName(dtype) << " n=" << n << " k=" << k << " scale=" << scale;
          ASSERT_EQ(inplace.Bits(0, kk), want.Bits(0, kk)) << DTypeName(dtype) << " in place";
        }
        ASSERT_TRUE(out.SentinelsIntact());
      }
    }
  }
}

void ExpectNorm(DType dtype, const testing::TestTable& t, double p, const char* what) {
  std::vector<double> x(static_cast<std::size_t>(t.cols));
  for (std::int64_t k = 0; k < t.cols; ++k) x[k] = t.Get(0, k);
  const double want = reference::Norm(x, p);
  const VectorNorm got = cpu::NormOfVector(dtype, t.data(), static_cast<std::size_t>(t.cols), p);
  if (std::isnan(want)) {
    EXPECT_FALSE(got.finite) << what;
    return;
  }
  ASSERT_TRUE(got.finite) << what << " " << DTypeName(dtype) << " p=" << p;
  const double tol = dtype == DType::kFloat64 ? 1e-13 : 2e-6;
  EXPECT_NEAR(got.value, want, tol * want) << what << " " << DTypeName(dtype) << " p=" << p
                                           << " n=" << t.cols;
}

TEST_P(NumericsPerTarget, NormMatchesReference) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  const double orders[] = {1.0, 2.0, 3.0, 0.5, kInfinity};
  for (DType dtype : testing::kAllDTypes) {
    for (std::int64_t n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 257}) {
      testing::TestTable t(dtype, 1, n);
      for (std::int64_t k = 0; k < n; ++k) t.Set(0, k, normal(rng));
      for (double p : orders) ExpectNorm(dtype, t, p, "random");
    }
  }
}

TEST_P(NumericsPerTarget, NormIsRightAtTheEndsOfTheRange) {
  for (DType dtype : testing::kAllDTypes) {
    const double huge = dtype == DType::kFloat64   ? 1e300
                        : dtype == DType::kFloat16 ? 6e4
                                                   : 3e38;
    const double tiny = dtype == DType::kFloat64   ? 1e-310
                        : dtype == DType::kFloat16 ? 1e-7
                                                   : 1e-41;
    for (std::int64_t n : {1, 5, 16, 64, 130}) {
      for (double p : {1.0, 2.0, 3.0, kInfinity}) {
        testing::TestTable big(dtype, 1, n), small(dtype, 1, n), zero(dtype, 1, n);
        for (std::int64_t k = 0; k < n; ++k) {
          big.Set(0, k, (k % 2 ? -huge : huge) * (1.0 - 0.001 * static_cast<double>(k % 7)));
          small.Set(0, k, tiny * static_cast<double>(1 + k % 3));
          zero.Set(0, k, 0.0);
        }
        ExpectNorm(dtype, big, p, "huge");
        ExpectNorm(dtype, small, p, "tiny");
        const VectorNorm z = cpu::NormOfVector(dtype, zero.data(), static_cast<std::size_t>(n), p);
        EXPECT_TRUE(z.finite);
        EXPECT_EQ(z.value, 0.0);
      }
    }
  }
}

TEST_P(NumericsPerTarget, NonFiniteValuesAreDetectedAnywhere) {
  for (DType dtype : testing::kAllDTypes) {
    for (std::int64_t n : {1, 7, 8, 9, 33, 100}) {
      for (std::int64_t where : {std::int64_t{0}, n / 2, n - 1}) {
        for (double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {
          testing::TestTable t(dtype, 1, n);
          for (std::int64_t k = 0; k < n; ++k) t.Set(0, k, 0.5);
          t.Set(0, where, bad);
          for (double p : {1.0, 2.0, 3.0, kInfinity}) {
            EXPECT_FALSE(cpu::NormOfVector(dtype, t.data(), static_cast<std::size_t>(n), p).finite)
                << DTypeName(dtype) << " n=" << n << " at " << where << " value " << bad
                << " p=" << p;
          }
        }
      }
    }
  }
}

// A storage type without SIMD conversions of its own would take the
// lane-by-lane fallback: it must give the SIMD conversions' bits (NaN
// payloads aside: F16C quiets signaling NaNs).
TEST_P(NumericsPerTarget, LaneByLaneConversionsMatchTheSimdOnes) {
  std::mt19937_64 rng(12);
  std::vector<std::uint16_t> all(65536);
  for (std::uint32_t h = 0; h <= 0xffff; ++h) all[h] = static_cast<std::uint16_t>(h);
  std::vector<float> floats(1 << 16);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  for (float& f : floats) f = std::bit_cast<float>(any_bits(rng));
  auto same = [](float a, float b) {
    return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b) || (std::isnan(a) && std::isnan(b));
  };
  for (DType dtype : {DType::kFloat16, DType::kBFloat16}) {
    std::vector<float> simd(all.size()), lanes(all.size());
    cpu::WidenVector(dtype, all.data(), simd.data(), all.size(), false);
    cpu::WidenVector(dtype, all.data(), lanes.data(), all.size(), true);
    for (std::size_t i = 0; i < all.size(); ++i) {
      ASSERT_TRUE(same(simd[i], lanes[i])) << DTypeName(dtype) << " " << std::hex << i;
    }
    std::vector<std::uint16_t> narrow_simd(floats.size()), narrow_lanes(floats.size());
    cpu::NarrowVector(dtype, floats.data(), narrow_simd.data(), floats.size(), false);
    cpu::NarrowVector(dtype, floats.data(), narrow_lanes.data(), floats.size(), true);
    for (std::size_t i = 0; i < floats.size(); ++i) {
      // The kernels narrow scaled values only, never NaN (rows holding NaN
      // are not scaled): the SIMD bfloat16 narrowing does not handle it.
      if (std::isnan(floats[i])) continue;
      ASSERT_EQ(narrow_simd[i], narrow_lanes[i]) << DTypeName(dtype) << " " << floats[i];
    }
  }
}

// Stochastic rounding against the grid: the neighbours lo <= |v| < hi found
// by search, the threshold (|v| - lo) / (hi - lo) * 2^24 in long double.
template <class F>
void CheckStochastic(const Grid& g, double max_finite, std::mt19937_64& rng) {
  std::vector<double> values = StressValues(g, rng);
  // Products of two float32 values, as the optimizer's scaled stores make.
  std::uniform_real_distribution<float> f(-3.0f, 3.0f);
  for (int i = 0; i < 20000; ++i) values.push_back(static_cast<double>(f(rng)) * static_cast<double>(f(rng)));
  std::uniform_int_distribution<std::uint32_t> bits(0, (1u << 24) - 1);
  for (double v : values) {
    const double a = std::fabs(v);
    const std::uint16_t sign = std::signbit(v) ? 0x8000 : 0;
    for (std::uint32_t u : {0u, (1u << 24) - 1, bits(rng), bits(rng)}) {
      const std::uint16_t got = stochastic::Round<F>(v, u);
      if (a > max_finite) {
        ASSERT_EQ(got, g.Nearest(v)) << v;
        continue;
      }
      const auto it = std::upper_bound(g.values.begin(), g.values.end(), a);
      const std::size_t lo = static_cast<std::size_t>(it - g.values.begin()) - 1;
      if (g.values[lo] == a) {
        ASSERT_EQ(got, static_cast<std::uint16_t>(sign | g.bits[lo])) << v;
        continue;
      }
      const long double fraction = (static_cast<long double>(a) - g.values[lo]) /
                                   (static_cast<long double>(g.values[lo + 1]) - g.values[lo]);
      const bool up = static_cast<long double>(u) < fraction * 16777216.0L;
      ASSERT_EQ(got, static_cast<std::uint16_t>(sign | g.bits[up ? lo + 1 : lo]))
          << v << " u " << u << " fraction " << static_cast<double>(fraction);
    }
  }
}

TEST(Numerics, StochasticRoundingFollowsItsDefinition) {
  std::mt19937_64 rng(31);
  CheckStochastic<stochastic::Half>(HalfGrid(), 65504.0, rng);
  CheckStochastic<stochastic::BFloat16>(BFloat16Grid(), stochastic::BFloat16::kMaxFinite, rng);
}

// The generator's bits are spread: each of the 24 bits is set about half
// the time over rows and columns, and neighbouring columns differ.
TEST(Numerics, StochasticBitsAreSpread) {
  std::vector<int> ones(24, 0);
  int equal_neighbours = 0;
  const int rows = 200, cols = 100;
  for (int r = 0; r < rows; ++r) {
    const std::uint32_t key = stochastic::RowKey(7, 3, r);
    std::uint32_t previous = 0;
    for (int c = 0; c < cols; ++c) {
      const std::uint32_t u = stochastic::ElementBits(key, c);
      ASSERT_LT(u, 1u << 24);
      for (int b = 0; b < 24; ++b) ones[b] += (u >> b) & 1;
      equal_neighbours += c > 0 && u == previous;
      previous = u;
    }
  }
  for (int b = 0; b < 24; ++b) EXPECT_NEAR(ones[b], rows * cols / 2, 400) << "bit " << b;
  EXPECT_EQ(equal_neighbours, 0);
  EXPECT_NE(stochastic::RowKey(7, 3, 0), stochastic::RowKey(7, 4, 0));
  EXPECT_NE(stochastic::RowKey(7, 3, 0), stochastic::RowKey(8, 3, 0));
}

INSTANTIATE_TEST_SUITE_P(Targets, NumericsPerTarget,
                         ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         testing::TargetParamName);

}  // namespace
}  // namespace sparsenorm
