// Helpers of the optimizer step's CUDA tests (replay_optim_test.cc on every
// machine, gpu_optim_test.cc on a GPU): the kernels replayed on a host case
// through the CUDA front end's own launch, and the comparison of two
// results of one step with the tolerances docs/CUDA.md states.
#ifndef SPARSENORM_TESTS_CUDA_STEP_TEST_UTIL_H_
#define SPARSENORM_TESTS_CUDA_STEP_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/messages.h"
#include "core/validate.h"
#include "cuda/launch.h"
#include "cuda/results.h"
#include "emulate_step.h"
#include "optim/optim_test_util.h"
#include "sparsenorm/optim.h"

namespace sparsenorm::testing {

// The CUDA front end's path on a host-memory case, the kernels replayed:
// PrepareStep, the launch the device would get, the replay, the report
// decoded as OptimizerResult decodes it.
inline Status ReplayStep(StepCase* c, IndexType itype, RowStats* stats) {
  const OptimizerState state = c->StateView();
  const std::vector<std::int32_t> l32(c->indices.begin(), c->indices.end());
  const Indices idx = itype == IndexType::kInt32 ? Indices(std::span<const std::int32_t>(l32))
                                                 : Indices(std::span<const std::int64_t>(c->indices));
  StepProblem problem;
  if (Status s = detail::PrepareStep(c->table.view(), state, c->dense ? nullptr : &idx, c->grad.const_view(),
                                     c->options, &problem, nullptr);
      !s.ok()) {
    return s;
  }
  const cuda::detail::StepHeader h = cuda::emulate::Step(cuda::detail::StepLaunchOf(problem));
  EXPECT_EQ(h.magic, cuda::detail::kStepMagic);
  if (Finding f = cuda::detail::StepFinding(h)) return detail::StatusOf(f);
  stats->indices_seen = h.num_indices;
  stats->distinct_rows = static_cast<std::int64_t>(h.distinct);
  stats->rows_scaled = static_cast<std::int64_t>(h.scaled);
  stats->nonfinite_rows = static_cast<std::int64_t>(h.nonfinite_rows);
  return Status::Ok();
}

// `got` against `want` after the same step from `base`: bit for bit where
// both compute the same operations (every rule but row-wise Adagrad's row
// sum, without a constraint), else within `norm_tol` ulps (the constraint's
// norm is summed in another order) or, for row-wise Adagrad, the float32
// (float64) rounding of its row sum relative to the row's size.
inline void CompareStep(const StepCase& base, const StepCase& got, const StepCase& want, double norm_tol,
                 const std::string& what) {
  const OptimizerOptions& o = base.options;
  const bool rowwise = o.kind == OptimizerKind::kRowWiseAdagrad;
  const bool constrained = o.constraint.kind != ConstraintKind::kNone;
  const DType dtype = base.table.dtype;
  ASSERT_TRUE(got.table.SentinelsIntact()) << what;
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(got.state[i].SentinelsIntact()) << what;
  ASSERT_TRUE(SameBytes(got.grad, base.grad)) << what << ": the gradient changed";
  const double rel = dtype == DType::kFloat64 ? 1e-13 : 2e-6;
  for (std::int64_t r = 0; r < base.table.rows; ++r) {
    double row_max = 0;
    for (std::int64_t k = 0; k < base.table.cols; ++k) row_max = std::max(row_max, std::fabs(want.table.Get(r, k)));
    for (std::int64_t k = 0; k < base.table.cols; ++k) {
      const double a = got.table.Get(r, k), b = want.table.Get(r, k);
      if (!rowwise && !constrained) {
        ASSERT_EQ(got.table.Bits(r, k), want.table.Bits(r, k))
            << what << ": row " << r << " col " << k << " got " << a << " want " << b;
      } else if (!rowwise) {
        ASSERT_LE(UlpDistance(dtype, a, b), norm_tol)
            << what << ": row " << r << " col " << k << " got " << a << " want " << b;
      } else {
        const double narrow_ulp = dtype == DType::kFloat16    ? std::ldexp(row_max, -10)
                                  : dtype == DType::kBFloat16 ? std::ldexp(row_max, -7)
                                                              : 0.0;
        ASSERT_LE(std::fabs(a - b), 2 * rel * row_max + narrow_ulp)
            << what << ": row " << r << " col " << k << " got " << a << " want " << b;
      }
    }
  }
  for (int i = 0; i < 2; ++i) {
    const TestTable& gs = got.state[i];
    for (std::int64_t r = 0; r < gs.rows; ++r) {
      for (std::int64_t k = 0; k < gs.cols; ++k) {
        if (rowwise) {
          ASSERT_LE(std::fabs(gs.Get(r, k) - want.state[i].Get(r, k)), 2 * rel * std::fabs(want.state[i].Get(r, k)))
              << what << ": state row " << r;
        } else {
          ASSERT_EQ(gs.Bits(r, k), want.state[i].Bits(r, k)) << what << ": state " << i << " row " << r << " col " << k;
        }
      }
    }
  }
}

inline void CompareStats(const RowStats& a, const RowStats& b, bool rowwise, const std::string& what) {
  EXPECT_EQ(a.indices_seen, b.indices_seen) << what;
  EXPECT_EQ(a.distinct_rows, b.distinct_rows) << what;
  EXPECT_EQ(a.nonfinite_rows, b.nonfinite_rows) << what;
  // A row-wise Adagrad row's norm may sit within rounding of the target.
  if (!rowwise) {
    EXPECT_EQ(a.rows_scaled, b.rows_scaled) << what;
  }
}

inline std::string Name(OptimizerKind kind, WeightDecayMode mode, DType dtype, std::int64_t cols, int variant) {
  return std::string(OptimizerName(kind)) + " decay " + std::to_string(static_cast<int>(mode)) + " " +
         DTypeName(dtype) + " cols " + std::to_string(cols) + " variant " + std::to_string(variant);
}

}  // namespace sparsenorm::testing

#endif  // SPARSENORM_TESTS_CUDA_STEP_TEST_UTIL_H_
