// The optimizer step's kernels (src/cuda/optim_kernels.cu) replayed on the
// host (emulate_step.h: the device's own per-element code, src/cuda/
// device_math.h and src/common/, in the kernels' order) against the CPU path
// and the reference, and the device's checks replayed and decoded as
// OptimizerResult decodes them against the CPU's messages. Runs on every
// machine, GPU or not: this is how the step's device arithmetic is tested
// where no GPU is present. gpu_optim_test.cc then checks, on a GPU, that
// the kernels reproduce the replay bit for bit.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
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
#include "step_test_util.h"

#if defined(SPARSENORM_WITH_CUDA)
#include "sparsenorm/cuda.h"
#endif

namespace sparsenorm {
namespace {

using testing::CompareStats;
using testing::CompareStep;
using testing::MakeStepCase;
using testing::Name;
using testing::OptionsFor;
using testing::ReplayStep;
using testing::StepCase;
using testing::TestTable;

// The replay against the CPU path (twice the norm tolerance: both sum in
// their own order) and the reference.
void ReplayAndCompare(const StepCase& base, IndexType itype, const std::string& what) {
  StepCase emu = base, cpu = base, ref = base;
  RowStats es, cs, rs;
  const Status e = ReplayStep(&emu, itype, &es);
  ASSERT_TRUE(e.ok()) << what << ": " << e.message();
  const Status c = cpu.Run(itype, &cs);
  ASSERT_TRUE(c.ok()) << what << ": " << c.message();
  const Status r = ref.Run(itype, &rs, nullptr, Backend::kReference);
  ASSERT_TRUE(r.ok()) << what << ": " << r.message();
  const bool rowwise = base.options.kind == OptimizerKind::kRowWiseAdagrad;
  CompareStats(es, cs, rowwise, what + " (cpu)");
  CompareStats(es, rs, rowwise, what + " (reference)");
  const double tol = testing::NormUlpTolerance(base.table.dtype, base.options.constraint.p);
  CompareStep(base, emu, cpu, 2 * tol, what + " against the cpu");
  CompareStep(base, emu, ref, tol, what + " against the reference");
}

// Every optimizer, weight-decay mode, dtype; constraints of each kind and
// p (2, 1, infinity, 3: the scaled float64 fallback of the norm); the
// gradient in the table's type or the arithmetic type; sparse (int32 and
// int64 lists, repeats within one group, past one group, far past) and
// dense; rows narrower and wider than the lanes' register cache.
TEST(ReplayOptim, MatchesCpuAndReference) {
  std::mt19937_64 rng(2101);
  const std::int64_t widths[] = {1, 3, 8, 17, 64, 130, 300};
  for (OptimizerKind kind : testing::kAllOptimizers) {
    for (WeightDecayMode mode : {WeightDecayMode::kNone, WeightDecayMode::kL2, WeightDecayMode::kDecoupled}) {
      for (DType dtype : testing::kAllDTypes) {
        for (int variant = 0; variant < 6; ++variant) {
          OptimizerOptions o = OptionsFor(kind, mode, rng);
          const std::int64_t cols = widths[rng() % std::size(widths)];
          const std::int64_t rows = 40;
          switch (variant) {
            case 1:
              o.constraint = RowConstraint{ConstraintKind::kMaxNorm, 0.5, 2.0, 1e-7};
              break;
            case 2:
              o.constraint = RowConstraint{ConstraintKind::kConstantNorm, 2.0, 1.0, 1e-12};
              break;
            case 3:
              o.constraint = RowConstraint{ConstraintKind::kMaxNorm, 0.3, kInfinity, 0.0};
              break;
            case 5:
              o.constraint = RowConstraint{ConstraintKind::kConstantNorm, 0.8, 3.0, 1e-9};
              break;
            default:
              break;
          }
          const bool dense = variant == 3;
          const DType grad_dtype = variant == 2 || variant == 5 ? testing::ArithmeticOf(dtype) : dtype;
          auto indices = testing::RandomIndices<std::int64_t>(60, rows, rng);
          if (variant == 1) indices.insert(indices.end(), 150, 7);  // past kRepeatGroup
          if (variant == 4) {
            // Two rows far past one group, interleaved with the others.
            for (int i = 0; i < 700; ++i) indices.insert(indices.begin() + static_cast<std::ptrdiff_t>(rng() % indices.size()), i % 7 == 0 ? 5 : 3);
          }
          const StepCase base = MakeStepCase(o, dtype, grad_dtype, rows, cols, indices, dense, rng);
          ReplayAndCompare(base, variant % 2 ? IndexType::kInt32 : IndexType::kInt64,
                           Name(kind, mode, dtype, cols, variant));
        }
      }
    }
  }
}

// Adagrad's two conventions beyond torch's: lr_decay late in training and
// Caffe2's sign, which the CPU must match bit for bit.
TEST(ReplayOptim, AdagradConventions) {
  std::mt19937_64 rng(2102);
  for (DType dtype : testing::kAllDTypes) {
    OptimizerOptions decay = AdagradOptions(0.05, 0.3, 0.01, 1e-10);
    decay.weight_decay_mode = WeightDecayMode::kDecoupled;
    decay.step = 1000;
    OptimizerOptions caffe2 = Caffe2SparseAdagradOptions(-0.02, 1e-5, 0.001);
    caffe2.weight_decay_mode = WeightDecayMode::kL2;
    for (const OptimizerOptions& o : {decay, caffe2}) {
      const auto indices = testing::RandomIndices<std::int64_t>(200, 30, rng);
      const StepCase base = MakeStepCase(o, dtype, dtype, 30, 33, indices, false, rng);
      ReplayAndCompare(base, IndexType::kInt64, std::string(DTypeName(dtype)) + (o.caffe2_sign ? " caffe2" : " lr_decay"));
    }
  }
}

// The gradient of a row named 200 times among others is the repeat
// groups' sums (64, 64, 64, 8 gradient rows in list order) added in order:
// SGD with lr = 1 from a zero row stores exactly minus that sum, on the
// replay as on the CPU.
TEST(ReplayOptim, RepeatsAreSummedInListOrderByGroups) {
  std::mt19937_64 rng(2103);
  std::vector<std::int64_t> indices;
  for (int i = 0; i < 200; ++i) {
    indices.push_back(3);
    const std::int64_t others[] = {0, 1, 2, 4, 5};
    if (i % 3 == 0) indices.push_back(others[i % 5]);  // other rows between the occurrences
  }
  StepCase c = MakeStepCase(SgdOptions(1.0), DType::kFloat32, DType::kFloat32, 6, 19, indices, false, rng);
  for (std::int64_t k = 0; k < 19; ++k) c.table.Set(3, k, 0.0);
  std::uniform_real_distribution<double> exponent(-12, 12);
  for (std::int64_t i = 0; i < c.grad.rows; ++i) {
    for (std::int64_t k = 0; k < 19; ++k) c.grad.Set(i, k, std::ldexp(1.0 + 0.5 * (rng() % 2), static_cast<int>(exponent(rng))));
  }
  StepCase emu = c, cpu = c;
  RowStats es, cs;
  ASSERT_TRUE(ReplayStep(&emu, IndexType::kInt64, &es).ok());
  ASSERT_TRUE(cpu.Run(IndexType::kInt64, &cs).ok());
  EXPECT_TRUE(testing::SameBytes(emu.table, cpu.table));
  std::vector<std::int64_t> positions;
  for (std::size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] == 3) positions.push_back(static_cast<std::int64_t>(i));
  }
  ASSERT_EQ(positions.size(), 200u);
  for (std::int64_t k = 0; k < 19; ++k) {
    float total = 0.0f;
    for (std::size_t start = 0; start < positions.size(); start += kRepeatGroup) {
      float group = static_cast<float>(c.grad.Get(positions[start], k));
      for (std::size_t i = start + 1; i < std::min(positions.size(), start + kRepeatGroup); ++i) {
        group += static_cast<float>(c.grad.Get(positions[i], k));
      }
      total = start == 0 ? group : total + group;
    }
    EXPECT_EQ(emu.table.Get(3, k), static_cast<double>(-total)) << "col " << k;
  }
  EXPECT_EQ(es.distinct_rows, 6);
}

// Stochastic rounding draws the CPU's bits for (seed, step, row, column):
// the same table bit for bit without a constraint (but row-wise Adagrad's
// row sum), within an ulp with one.
TEST(ReplayOptim, StochasticRoundingIsTheCpus) {
  std::mt19937_64 rng(2104);
  for (DType dtype : {DType::kFloat16, DType::kBFloat16}) {
    for (OptimizerKind kind : testing::kAllOptimizers) {
      for (bool constrained : {false, true}) {
        OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kL2, rng);
        o.rounding = Rounding::kStochastic;
        o.seed = 77;
        if (constrained) o.constraint = RowConstraint{ConstraintKind::kMaxNorm, 0.4, 2.0, 1e-7};
        const auto indices = testing::RandomIndices<std::int64_t>(300, 64, rng);
        const StepCase base = MakeStepCase(o, dtype, DType::kFloat32, 64, 21, indices, false, rng);
        ReplayAndCompare(base, IndexType::kInt64,
                         std::string(DTypeName(dtype)) + " " + testing::OptimizerName(kind) + (constrained ? " constrained" : ""));
      }
    }
  }
}

// Rows whose gradient, update or state is not finite are left, state and
// all, and counted, also when the NaN sits in one repeat group of a row
// named past one group; the rest is the CPU's bits.
TEST(ReplayOptim, NonFiniteRowsAreLeftAndCounted) {
  std::mt19937_64 rng(2105);
  for (OptimizerKind kind : testing::kAllOptimizers) {
    OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kNone, rng);
    std::vector<std::int64_t> indices = {4, 9, 4, 2};
    indices.insert(indices.end(), 130, 6);
    StepCase base = MakeStepCase(o, DType::kFloat16, DType::kFloat16, 12, 9, indices, false, rng);
    base.grad.Set(2, 5, std::nan(""));    // row 4's second occurrence
    base.grad.Set(3, 0, -INFINITY);       // row 2
    base.grad.Set(100, 4, INFINITY);      // row 6, in its second repeat group
    base.table.Set(11, 0, 65504.0);       // row 11: no gradient, untouched
    StepCase emu = base, cpu = base;
    RowStats es, cs;
    ASSERT_TRUE(ReplayStep(&emu, IndexType::kInt64, &es).ok());
    ASSERT_TRUE(cpu.Run(IndexType::kInt64, &cs).ok());
    EXPECT_EQ(es.nonfinite_rows, 3) << testing::OptimizerName(kind);
    EXPECT_EQ(cs.nonfinite_rows, 3) << testing::OptimizerName(kind);
    for (std::int64_t r : {4, 2, 6}) {
      for (std::int64_t k = 0; k < 9; ++k) EXPECT_EQ(emu.table.Bits(r, k), base.table.Bits(r, k)) << r;
      for (int i = 0; i < 2; ++i) {
        for (std::int64_t k = 0; k < emu.state[i].cols; ++k) EXPECT_EQ(emu.state[i].Bits(r, k), base.state[i].Bits(r, k));
      }
    }
    if (kind != OptimizerKind::kRowWiseAdagrad) {
      EXPECT_TRUE(testing::SameBytes(emu.table, cpu.table)) << testing::OptimizerName(kind);
      EXPECT_TRUE(testing::SameBytes(emu.state[0], cpu.state[0])) << testing::OptimizerName(kind);
      EXPECT_TRUE(testing::SameBytes(emu.state[1], cpu.state[1])) << testing::OptimizerName(kind);
    }
  }
  // A finite gradient whose update overflows.
  StepCase c = MakeStepCase(SgdOptions(2.0), DType::kFloat32, DType::kFloat32, 1, 2, {0}, false, rng);
  c.table.Set(0, 0, 3e38);
  c.grad.Set(0, 0, -3e38);
  StepCase emu = c;
  RowStats es;
  ASSERT_TRUE(ReplayStep(&emu, IndexType::kInt64, &es).ok());
  EXPECT_EQ(es.nonfinite_rows, 1);
  EXPECT_TRUE(testing::SameBytes(emu.table, c.table));
}

// Degenerate shapes: an empty list (also with a null pointer, as an empty
// std::vector gives), rows of no column, a table of one row (no key bits
// to sort on), an empty dense gradient.
TEST(ReplayOptim, DegenerateShapes) {
  std::mt19937_64 rng(2106);
  for (OptimizerKind kind : testing::kAllOptimizers) {
    const OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kL2, rng);
    struct Shape {
      const char* name;
      std::int64_t rows, cols;
      std::vector<std::int64_t> indices;
      bool dense;
    };
    const Shape shapes[] = {{"empty list", 5, 4, {}, false},
                            {"no columns", 5, 0, {1, 3, 1}, false},
                            {"no columns dense", 5, 0, {}, true},
                            {"one row", 1, 6, std::vector<std::int64_t>(90, 0), false},
                            {"no rows dense", 0, 3, {}, true}};
    for (const Shape& s : shapes) {
      const std::string what = std::string(testing::OptimizerName(kind)) + " " + s.name;
      StepCase base = MakeStepCase(o, DType::kFloat32, DType::kFloat32, s.rows, s.cols, s.indices, s.dense, rng);
      StepCase emu = base, cpu = base, ref = base;
      RowStats es, cs, rs;
      ASSERT_TRUE(ReplayStep(&emu, IndexType::kInt64, &es).ok()) << what;
      ASSERT_TRUE(cpu.Run(IndexType::kInt64, &cs).ok()) << what;
      ASSERT_TRUE(ref.Run(IndexType::kInt64, &rs, nullptr, Backend::kReference).ok()) << what;
      CompareStats(es, cs, false, what);
      EXPECT_EQ(es.distinct_rows, s.dense ? s.rows : (s.indices.empty() ? 0 : s.rows == 1 ? 1 : 2)) << what;
      EXPECT_EQ(es.nonfinite_rows, 0) << what;
      if (s.cols > 0) {
        EXPECT_TRUE(testing::SameBytes(emu.table, cpu.table)) << what;
      } else {
        EXPECT_TRUE(testing::SameBytes(emu.table, base.table)) << what;
      }
      EXPECT_TRUE(testing::SameBytes(emu.state[0], cpu.state[0])) << what;
      if (s.indices.empty() && !s.dense) {
        EXPECT_TRUE(testing::SameBytes(emu.table, base.table)) << what;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Checks.

// An error case: the code and message the CPU and the reference give, and
// the replayed device report must give the same, with nothing written.
void ExpectSameError(const StepCase& base, IndexType itype, StatusCode code, const std::string& part,
                     const std::string& what) {
  StepCase cpu = base, ref = base, emu = base;
  RowStats cs, rs, es;
  const Status c = cpu.Run(itype, &cs);
  const Status r = ref.Run(itype, &rs, nullptr, Backend::kReference);
  const Status e = ReplayStep(&emu, itype, &es);
  EXPECT_EQ(c.code(), code) << what << ": " << c.message();
  EXPECT_NE(c.message().find(part), std::string::npos) << what << ": " << c.message();
  EXPECT_EQ(r.code(), c.code()) << what;
  EXPECT_EQ(r.message(), c.message()) << what;
  EXPECT_EQ(e.code(), c.code()) << what;
  EXPECT_EQ(e.message(), c.message()) << what;
  for (const StepCase* x : {&cpu, &ref, &emu}) {
    EXPECT_TRUE(testing::SameBytes(x->table, base.table)) << what;
    EXPECT_TRUE(testing::SameBytes(x->state[0], base.state[0])) << what;
    EXPECT_TRUE(testing::SameBytes(x->state[1], base.state[1])) << what;
  }
}

TEST(ReplayOptim, DeviceChecksReadAsTheCpus) {
  std::mt19937_64 rng(2107);
  const std::vector<std::int64_t> list = {3, 7, 3, 0, 9, 3};
  for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
    for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
      const std::string what = std::string(IndexTypeName(itype)) + " " + DTypeName(dtype);
      OptimizerOptions o = AdamOptions(0.01);
      StepCase base = MakeStepCase(o, dtype, dtype, 10, 5, list, false, rng);
      StepCase bad = base;
      bad.indices[4] = 10;
      bad.indices[2] = -3;  // the first bad position is reported
      ExpectSameError(bad, itype, StatusCode::kOutOfRange, "indices[2] = -3 is out of range for 10 table rows",
                      what + " bad index");

      StepCase nan = base;
      nan.options.non_finite = NonFinitePolicy::kError;
      nan.grad.Set(4, 1, std::nan(""));
      nan.grad.Set(2, 3, INFINITY);
      ExpectSameError(nan, itype, StatusCode::kNonFinite, "gradient row 2 (for table row 3) holds NaN or infinity",
                      what + " non-finite gradient");

      // Both: the index is reported, as the CPU checks the indices first.
      StepCase both = nan;
      both.indices[5] = 12;
      ExpectSameError(both, itype, StatusCode::kOutOfRange, "indices[5] = 12", what + " both");

      StepCase dense = MakeStepCase(o, dtype, dtype, 10, 5, {}, true, rng);
      dense.options.non_finite = NonFinitePolicy::kError;
      dense.grad.Set(6, 0, -INFINITY);
      ExpectSameError(dense, itype, StatusCode::kNonFinite, "gradient row 6 (for table row 6)", what + " dense");
    }
  }
  // A table of no rows: every index is out of range, the message says why.
  StepCase empty = MakeStepCase(SgdOptions(0.1), DType::kFloat32, DType::kFloat32, 0, 3, {0}, false, rng);
  ExpectSameError(empty, IndexType::kInt64, StatusCode::kOutOfRange, "indices[0] = 0", "no rows");
}

// The report the last kernel completes, decoded: the lowest position wins;
// an index error before a gradient one; a dense gradient's row is its
// position.
TEST(ReplayOptim, ReportDecoding) {
  const std::int64_t list[] = {2, 40, 1, -1};
  cuda::detail::StepHeader h{};
  cuda::emulate::Offer(&h.bad, 3);
  cuda::emulate::Offer(&h.bad, 1);
  cuda::emulate::Offer(&h.nonfinite, 0);
  cuda::detail::FinishStepHeader(list, IndexType::kInt64, 4, 10, &h);
  Finding f = cuda::detail::StepFinding(h);
  EXPECT_EQ(f.kind, FindingKind::kRowIndex);
  EXPECT_EQ(f.position, 1);
  EXPECT_EQ(f.value, 40);
  EXPECT_EQ(f.limit, 10);
  EXPECT_EQ(h.magic, cuda::detail::kStepMagic);

  cuda::detail::StepHeader d{};
  cuda::emulate::Offer(&d.nonfinite, 7);
  cuda::detail::FinishStepHeader(nullptr, IndexType::kInt64, 9, 9, &d);
  f = cuda::detail::StepFinding(d);
  EXPECT_EQ(f.kind, FindingKind::kNonFiniteGradient);
  EXPECT_EQ(f.position, 7);
  EXPECT_EQ(f.value, 7);
  EXPECT_EQ(d.distinct, 9u);
  EXPECT_FALSE(cuda::detail::StepFinding(cuda::detail::StepHeader{}));
}

// An updated value (the arithmetic type, not a stored value) times the
// constraint's scale is the exact product rounded once to the table's type
// (optim.h), for scales inside and outside float32's normal range; and
// stochastic rounding sees the exact product too.
template <class T>
void CheckScaleArithmetic(std::mt19937_64& rng) {
  using C = typename Element<T>::Compute;
  std::normal_distribution<double> normal(0.0, 1.0);
  const double scales[] = {0.731, 1.0 / 3.0, 2.5, 1e-3, 1e40, 1e-40, 1e-310, 7.0 / 11.0};
  for (double d : scales) {
    const Scale s = ScaleBy(d);
    for (int i = 0; i < 20000; ++i) {
      const C x = static_cast<C>(normal(rng) * std::ldexp(1.0, static_cast<int>(rng() % 40) - 20));
      const double exact = s.fits_float ? static_cast<double>(x) * static_cast<double>(s.f)
                                        : std::ldexp(static_cast<double>(x), s.shift) * s.d;
      const T got = cuda::num::ScaleArithmetic<T>(x, s);
      const T want = Element<T>::RoundDouble(exact);
      ASSERT_TRUE(SameBits(got, want)) << DTypeName(Element<T>::kDType) << " x " << x << " scale " << d;
      if constexpr (kNarrow<T>) {
        ASSERT_EQ(cuda::num::ExactScaledValue(x, s), exact);
        const T stored = cuda::num::StoreElement<T>(x, s, true, 99u, i);
        const std::uint32_t u = stochastic::ElementBits(99u, i);
        const std::uint16_t bits = std::is_same_v<T, float16> ? stochastic::Round<stochastic::Half>(exact, u)
                                                              : stochastic::Round<stochastic::BFloat16>(exact, u);
        ASSERT_EQ(stored.bits, bits);
      }
    }
  }
}

TEST(ReplayOptim, ScaledUpdatesAreRoundedOnce) {
  std::mt19937_64 rng(2110);
  CheckScaleArithmetic<float>(rng);
  CheckScaleArithmetic<float16>(rng);
  CheckScaleArithmetic<bfloat16>(rng);
}

// The partial sums' scratch holds every repeat group of every segment
// longer than one group, for any list of n indices.
TEST(ReplayOptim, RepeatGroupSlotsAreBounded) {
  std::mt19937_64 rng(2108);
  EXPECT_EQ(cuda::detail::RepeatGroupsOf(64), 0);
  EXPECT_EQ(cuda::detail::RepeatGroupsOf(65), 2);
  EXPECT_EQ(cuda::detail::RepeatGroupsOf(128), 2);
  EXPECT_EQ(cuda::detail::RepeatGroupsOf(129), 3);
  EXPECT_EQ(cuda::detail::MaxRepeatGroups(65), 2);
  for (int trial = 0; trial < 20000; ++trial) {
    const std::int64_t n = std::uniform_int_distribution<std::int64_t>(0, 3000)(rng);
    std::int64_t left = n, groups = 0;
    while (left > 0) {
      // Segment lengths around the group size, where the bound is tightest.
      const std::int64_t c = std::min(left, std::uniform_int_distribution<std::int64_t>(1, trial % 2 ? 140 : 70)(rng));
      groups += cuda::detail::RepeatGroupsOf(c);
      left -= c;
    }
    ASSERT_LE(groups, cuda::detail::MaxRepeatGroups(n)) << n;
  }
}

#if defined(SPARSENORM_WITH_CUDA)

// Host-side errors come from the checks every front end makes, before the
// CUDA front end touches a device: the same code and message as the CPU's,
// GPU or not.
TEST(ReplayOptim, HostSideErrorsReadTheSameOnTheCudaFrontEnd) {
  std::mt19937_64 rng(2109);
  struct Case {
    const char* name;
    void (*spoil)(StepCase*);
  };
  const Case cases[] = {
      {"lr", [](StepCase* c) { c->options.lr = -1; }},
      {"beta2", [](StepCase* c) { c->options.beta2 = 1.5; }},
      {"step", [](StepCase* c) { c->options.step = 0; }},
      {"stochastic float32", [](StepCase* c) { c->options.rounding = Rounding::kStochastic; }},
      {"constraint p", [](StepCase* c) { c->options.constraint = {ConstraintKind::kMaxNorm, 1.0, -2.0, 0.0}; }},
      {"gradient rows", [](StepCase* c) { c->grad.rows = 2; }},
      {"gradient dtype", [](StepCase* c) { c->grad.dtype = DType::kFloat64; }},
      {"state shape", [](StepCase* c) { c->state[1].rows = 4; }},
      {"threads", [](StepCase* c) { c->options.num_threads = -1; }},
  };
  for (const Case& k : cases) {
    StepCase c = MakeStepCase(AdamOptions(0.01), DType::kFloat32, DType::kFloat32, 10, 4, {1, 2, 3}, false, rng);
    k.spoil(&c);
    const StepCase before = c;
    RowStats s;
    const Status cpu = c.Run(IndexType::kInt64, &s);
    ASSERT_FALSE(cpu.ok()) << k.name;
    const OptimizerState state = c.StateView();
    const Indices idx{std::span<const std::int64_t>(c.indices)};
    const Status dev = cuda::OptimizerStepAsync(c.table.view(), state, idx, c.grad.const_view(), c.options,
                                                nullptr, 0, nullptr);
    EXPECT_EQ(dev.code(), cpu.code()) << k.name;
    EXPECT_EQ(dev.message(), cpu.message()) << k.name;
    const Status sync = cuda::OptimizerStep(c.table.view(), state, idx, c.grad.const_view(), c.options);
    EXPECT_EQ(sync.message(), cpu.message()) << k.name;
    EXPECT_TRUE(testing::SameBytes(c.table, before.table)) << k.name;
  }
  // The dense form, and the one restriction of the device's own.
  StepCase d = MakeStepCase(SgdOptions(0.1), DType::kFloat32, DType::kFloat32, 10, 4, {}, true, rng);
  d.grad.rows = 9;
  RowStats s;
  const Status cpu = d.Run(IndexType::kInt64, &s);
  const Status dev = cuda::OptimizerStepDenseAsync(d.table.view(), {}, d.grad.const_view(), d.options, nullptr, 0, nullptr);
  EXPECT_EQ(dev.message(), cpu.message());
  d.grad.rows = 10;
  d.options.backend = Backend::kReference;
  const Status ref = cuda::OptimizerStepDense(d.table.view(), {}, d.grad.const_view(), d.options);
  EXPECT_EQ(ref.code(), StatusCode::kUnsupported) << ref.message();
  EXPECT_NE(ref.message().find("options.backend = kReference"), std::string::npos) << ref.message();
}

#endif  // SPARSENORM_WITH_CUDA

}  // namespace
}  // namespace sparsenorm
