// The Caffe2-shaped facade: arguments, the optional grad input, float16.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "common/numerics.h"
#include "sparsenorm/caffe2.h"

namespace sparsenorm {
namespace {

std::vector<float> RandomParam(std::int64_t rows, std::int64_t d, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(rows * d));
  for (auto& x : v) x = normal(rng);
  return v;
}

double RowNorm(const float* row, std::int64_t d) {
  double s = 0;
  for (std::int64_t k = 0; k < d; ++k) s += static_cast<double>(row[k]) * row[k];
  return std::sqrt(s);
}

TEST(Caffe2Facade, DefaultsAreMaxNormOne) {
  const caffe2::SparseNormalizeOp<float> op;
  EXPECT_TRUE(op.use_max_norm());
  EXPECT_EQ(op.norm(), 1.0f);
  EXPECT_TRUE(op.argument_status().ok());
}

TEST(Caffe2Facade, MaxNormAndConstantNorm) {
  std::mt19937_64 rng(31);
  const std::int64_t rows = 50, d = 8;
  const std::vector<std::int32_t> idx = {3, 7, 7, 20};
  for (bool use_max_norm : {true, false}) {
    std::vector<float> param = RandomParam(rows, d, rng);
    for (std::int64_t k = 0; k < d; ++k) param[20 * d + k] = 0.01f;  // norm below 0.5
    const std::vector<float> before = param;
    const caffe2::SparseNormalizeOp<float> op(use_max_norm, 0.5f);
    const std::vector<float> grad(idx.size() * d, 0.0f);
    RowStats stats;
    const Status s = op.Run(param.data(), rows, d, Indices(std::span<const std::int32_t>(idx)),
                            grad.data(), static_cast<std::int64_t>(grad.size()), &stats);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(stats.distinct_rows, 3);
    EXPECT_NEAR(RowNorm(&param[3 * d], d), 0.5, 1e-6);
    EXPECT_NEAR(RowNorm(&param[7 * d], d), 0.5, 1e-6);
    if (use_max_norm) {
      EXPECT_EQ(RowNorm(&param[20 * d], d), RowNorm(&before[20 * d], d));
    } else {
      EXPECT_NEAR(RowNorm(&param[20 * d], d), 0.5, 1e-6);
    }
    EXPECT_EQ(param[4 * d], before[4 * d]);  // not indexed
  }
}

TEST(Caffe2Facade, NegativeNormIsRejectedLikeCaffe2) {
  std::vector<float> param(8, 3.0f);
  const std::vector<float> before = param;
  const caffe2::SparseNormalizeOp<float> op(true, -1.0f);
  EXPECT_FALSE(op.argument_status().ok());
  const std::vector<std::int64_t> idx = {0};
  const Status s = op.Run(param.data(), 2, 4, Indices(std::span<const std::int64_t>(idx)));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("norm = -1"), std::string::npos) << s.message();
  EXPECT_EQ(param, before);
}

TEST(Caffe2Facade, GradOfTheWrongSizeIsRejected) {
  std::vector<float> param(40, 3.0f);
  const std::vector<float> before = param;
  const caffe2::SparseNormalizeOp<float> op;
  const std::vector<std::int64_t> idx = {0, 1, 2};
  const std::vector<float> grad(11);
  Status s = op.Run(param.data(), 10, 4, Indices(std::span<const std::int64_t>(idx)), grad.data(), 11);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("grad has 11 elements"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("3 * 4 = 12"), std::string::npos) << s.message();
  s = op.Run(param.data(), 10, 4, Indices(std::span<const std::int64_t>(idx)), nullptr, 12);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(param, before);
  // Absent grad (the optional input omitted) is fine.
  EXPECT_TRUE(op.Run(param.data(), 10, 4, Indices(std::span<const std::int64_t>(idx))).ok());
}

TEST(Caffe2Facade, OutOfRangeIndexIsCaughtUnlikeCaffe2) {
  std::vector<float> param(40, 3.0f);
  const std::vector<float> before = param;
  const caffe2::SparseNormalizeOp<float> op;
  const std::vector<std::int64_t> idx = {0, 10};
  const Status s = op.Run(param.data(), 10, 4, Indices(std::span<const std::int64_t>(idx)));
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(param, before);
}

TEST(Caffe2Facade, Float16SparseNormalize) {
  const std::int64_t rows = 6, d = 5;
  std::vector<float16> param(static_cast<std::size_t>(rows * d));
  for (auto& h : param) h.bits = numerics::FloatToHalf(2.0f);  // norm 2 * sqrt(5)
  const caffe2::Float16SparseNormalize op(true, 1.0f);
  const std::vector<std::int64_t> idx = {1, 4};
  ASSERT_TRUE(op.Run(param.data(), rows, d, Indices(std::span<const std::int64_t>(idx))).ok());
  const float want = 2.0f / (2.0f * std::sqrt(5.0f));
  EXPECT_NEAR(numerics::HalfToFloat(param[1 * d].bits), want, 1e-3);
  EXPECT_NEAR(numerics::HalfToFloat(param[4 * d + 4].bits), want, 1e-3);
  EXPECT_EQ(numerics::HalfToFloat(param[0].bits), 2.0f);
}

}  // namespace
}  // namespace sparsenorm
