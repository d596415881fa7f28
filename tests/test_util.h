// Helpers shared by the C++ tests: typed random tables held as raw bytes,
// element access through the reference's exact widening, and comparisons in
// units of the storage type's last place.
#ifndef SPARSENORM_TESTS_TEST_UTIL_H_
#define SPARSENORM_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include <hwy/targets.h>

#include "common/numerics.h"
#include "reference/reference.h"
#include "sparsenorm/types.h"

namespace sparsenorm::testing {

inline constexpr DType kAllDTypes[] = {DType::kFloat32, DType::kFloat64, DType::kFloat16,
                                       DType::kBFloat16};

// A table of `rows` x `cols` with `stride` >= cols, its padding filled with a
// sentinel byte pattern that no kernel should ever write.
struct TestTable {
  DType dtype = DType::kFloat32;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t stride = 0;
  std::vector<unsigned char> bytes;  // rows * stride elements, plus a tail sentinel

  static constexpr unsigned char kSentinel = 0xA5;
  static constexpr std::size_t kTail = 64;

  TestTable() = default;
  TestTable(DType t, std::int64_t r, std::int64_t c, std::int64_t s = 0)
      : dtype(t), rows(r), cols(c), stride(s == 0 ? c : s) {
    bytes.assign(static_cast<std::size_t>(rows * stride) * DTypeSize(t) + kTail, kSentinel);
  }

  std::size_t element_size() const { return DTypeSize(dtype); }
  void* data() { return bytes.data(); }
  const void* data() const { return bytes.data(); }
  Table view() { return Table{data(), dtype, rows, cols, stride == cols ? 0 : stride}; }
  ConstTable const_view() const { return ConstTable(data(), dtype, rows, cols, stride == cols ? 0 : stride); }

  double Get(std::int64_t r, std::int64_t k) const {
    return reference::Load(data(), dtype, r * stride + k);
  }
  // Stores v rounded to the dtype.
  void Set(std::int64_t r, std::int64_t k, double v) {
    reference::StoreRounded(data(), dtype, r * stride + k, v);
  }
  std::uint64_t Bits(std::int64_t r, std::int64_t k) const {
    std::uint64_t b = 0;
    std::memcpy(&b, bytes.data() + static_cast<std::size_t>(r * stride + k) * element_size(),
                element_size());
    return b;
  }

  // True when every padding byte and the tail still hold the sentinel.
  bool SentinelsIntact() const {
    const std::size_t es = element_size();
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t k = cols; k < stride; ++k) {
        for (std::size_t b = 0; b < es; ++b) {
          if (bytes[static_cast<std::size_t>(r * stride + k) * es + b] != kSentinel) return false;
        }
      }
    }
    for (std::size_t i = bytes.size() - kTail; i < bytes.size(); ++i) {
      if (bytes[i] != kSentinel) return false;
    }
    return true;
  }
};

// Rows of N(0, sigma_r) values with row scales spread log-uniformly over
// [1e-3, 1e3], so max-norm calls both scale and skip rows.
inline void FillRandom(TestTable* t, std::mt19937_64& rng, double spread = 3.0) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> exponent(-spread, spread);
  for (std::int64_t r = 0; r < t->rows; ++r) {
    const double scale = std::pow(10.0, exponent(rng)) / std::sqrt(static_cast<double>(std::max<std::int64_t>(t->cols, 1)));
    for (std::int64_t k = 0; k < t->cols; ++k) t->Set(r, k, normal(rng) * scale);
  }
}

// Distance in units in the last place of `dtype` between two finite values
// of that type (0 when equal).
inline double UlpDistance(DType dtype, double a, double b) {
  if (a == b) return 0.0;
  const int mantissa_bits = dtype == DType::kFloat64   ? 52
                            : dtype == DType::kFloat32 ? 23
                            : dtype == DType::kFloat16 ? 10
                                                       : 7;
  const int min_exponent = dtype == DType::kFloat64   ? -1022
                           : dtype == DType::kFloat16 ? -14
                                                      : -126;
  const double m = std::max(std::fabs(a), std::fabs(b));
  const int e = std::max(static_cast<int>(std::floor(std::log2(m))), min_exponent);
  return std::fabs(a - b) / std::ldexp(1.0, e - mantissa_bits);
}

// How far, in ulps of `dtype`, a fast path's rescaled element may be from
// the reference's. The fast path sums the norm in float32 (float64 for
// float64 tables) where the reference sums in long double; the scale
// differs by a few float32 ulps at most, which moves a 16-bit result by at
// most one ulp. For float64 tables and p outside {1, 2, inf} the final
// pow(sum, 1/p) multiplies the relative error of the sum by 1/p.
inline double NormUlpTolerance(DType dtype, double p) {
  switch (dtype) {
    case DType::kFloat32:
      return 8;
    case DType::kFloat64:
      return 16 * std::max(1.0, 1.0 / p);
    default:
      return 1;
  }
}

template <class I>
std::vector<I> RandomIndices(std::int64_t count, std::int64_t rows, std::mt19937_64& rng) {
  std::vector<I> v(static_cast<std::size_t>(count));
  std::uniform_int_distribution<std::int64_t> pick(0, rows - 1);
  for (auto& i : v) i = static_cast<I>(pick(rng));
  return v;
}

inline std::string Describe(DType dtype, std::int64_t rows, std::int64_t cols) {
  return std::string(DTypeName(dtype)) + " " + std::to_string(rows) + "x" + std::to_string(cols);
}

// A fixture run once per SIMD target compiled into the library and supported
// by this CPU: SetUp makes Highway's dispatcher pick that target.
class PerTarget : public ::testing::TestWithParam<std::int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

inline std::string TargetParamName(const ::testing::TestParamInfo<std::int64_t>& info) {
  return hwy::TargetName(info.param);
}

// Scales for the exact-product tests: awkward ones, then `extra`, then
// `count` random ones (every mantissa, exponents in [-20, 20)).
inline std::vector<float> TestScales(std::mt19937_64& rng, int count,
                                     std::initializer_list<float> extra = {}) {
  std::vector<float> s = {1.0f, 0.5f, 1.0f - 0x1p-24f, 1.0f + 0x1p-23f, 0.1f, 3.0f, 0.0f};
  s.insert(s.end(), extra.begin(), extra.end());
  std::uniform_real_distribution<float> exponent(-20.0f, 20.0f);
  std::uniform_int_distribution<std::uint32_t> mantissa(0, 0x7fffff);
  for (int i = 0; i < count; ++i) {
    const float base = std::exp2(std::floor(exponent(rng)));
    s.push_back(std::bit_cast<float>((std::bit_cast<std::uint32_t>(base) & 0xff800000u) | mantissa(rng)));
  }
  return s;
}

}  // namespace sparsenorm::testing

#endif  // SPARSENORM_TESTS_TEST_UTIL_H_
