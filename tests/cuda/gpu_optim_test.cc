// The optimizer step on the device (needs a GPU; skipped without one):
// against the host replay of its kernels (emulate_step.h) bit for bit,
// against the CPU path within the tolerances docs/CUDA.md states, and every
// error path with the table, the state tables, the gradient and the index
// list on the device left byte for byte unchanged. The tests at the end run
// everywhere: the front end's host-side checks and sizes need no device.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gpu_test_util.h"
#include "optim/optim_test_util.h"
#include "sparsenorm/cuda.h"
#include "sparsenorm/optim.h"
#include "step_test_util.h"

namespace sparsenorm {
namespace {

using testing::CompareStats;
using testing::CompareStep;
using testing::DeviceBuffer;
using testing::DeviceTable;
using testing::GpuTest;
using testing::MakeStepCase;
using testing::OptionsFor;
using testing::ReplayStep;
using testing::SameBytes;
using testing::StepCase;
using testing::TestTable;

// The state tables of `kind` in the slots optim.h names (as
// StepCase::StateView on host memory).
OptimizerState StateOf(OptimizerKind kind, const Table& first, const Table& second) {
  OptimizerState s;
  if (kind == OptimizerKind::kAdam) {
    s.exp_avg = first;
    s.exp_avg_sq = second;
  } else if (kind != OptimizerKind::kSGD) {
    s.sum = first;
  }
  return s;
}

// The index list as bytes of `itype`.
std::vector<unsigned char> ListBytes(const std::vector<std::int64_t>& list, IndexType itype) {
  std::vector<unsigned char> out;
  if (itype == IndexType::kInt32) {
    const std::vector<std::int32_t> l32(list.begin(), list.end());
    out.resize(l32.size() * 4);
    if (!out.empty()) std::memcpy(out.data(), l32.data(), out.size());
  } else {
    out.resize(list.size() * 8);
    if (!out.empty()) std::memcpy(out.data(), list.data(), out.size());
  }
  return out;
}

// A StepCase copied to device memory. An empty list has a null pointer
// (cudaMalloc of nothing), as an empty tensor may.
struct DeviceStep {
  DeviceTable table;
  DeviceTable state[2];
  DeviceTable grad;
  std::vector<unsigned char> list_bytes;
  DeviceBuffer list;
  IndexType itype;
  std::int64_t count;
  OptimizerKind kind;

  DeviceStep(const StepCase& c, IndexType it)
      : table(c.table),
        state{DeviceTable(c.state[0]), DeviceTable(c.state[1])},
        grad(c.grad),
        list_bytes(ListBytes(c.indices, it)),
        list(list_bytes),
        itype(it),
        count(static_cast<std::int64_t>(c.indices.size())),
        kind(c.options.kind) {}

  Indices indices() const { return Indices(list.get(), itype, count); }
  OptimizerState state_view() { return StateOf(kind, state[0].view(), state[1].view()); }

  // Every array, padding and tails included, as it was uploaded.
  bool Unchanged() const {
    bool same = table.Fetch().bytes == table.host.bytes && grad.Fetch().bytes == grad.host.bytes &&
                list.Download() == list_bytes;
    for (const DeviceTable& s : state) {
      if (!s.host.bytes.empty()) same = same && s.Fetch().bytes == s.host.bytes;
    }
    return same;
  }

  // The device's table and state into `c`.
  void FetchInto(StepCase* c) const {
    c->table = table.Fetch();
    for (int i = 0; i < 2; ++i) {
      if (!state[i].host.bytes.empty()) c->state[i] = state[i].Fetch();
    }
    c->grad = grad.Fetch();
  }
};

enum class Entry { kSync, kAsync };

Status StepOn(DeviceStep* d, const StepCase& c, Entry entry, RowStats* stats, cudaStream_t stream = nullptr) {
  const OptimizerState s = d->state_view();
  if (entry == Entry::kSync) {
    return c.dense ? cuda::OptimizerStepDense(d->table.view(), s, d->grad.const_view(), c.options, stats, stream)
                   : cuda::OptimizerStep(d->table.view(), s, d->indices(), d->grad.const_view(), c.options, stats,
                                         stream);
  }
  const std::size_t bytes = c.dense ? cuda::OptimizerScratchBytesDense(d->table.view())
                                    : cuda::OptimizerScratchBytes(d->table.view(), d->indices());
  EXPECT_GT(bytes, 0u);
  DeviceBuffer scratch(bytes);
  const Status enq = c.dense ? cuda::OptimizerStepDenseAsync(d->table.view(), s, d->grad.const_view(), c.options,
                                                             scratch.get(), scratch.bytes(), stream)
                             : cuda::OptimizerStepAsync(d->table.view(), s, d->indices(), d->grad.const_view(),
                                                        c.options, scratch.get(), scratch.bytes(), stream);
  if (!enq.ok()) return enq;
  return cuda::OptimizerResult(scratch.get(), stream, stats);
}

// One step of `c` on the device; `c` then holds the device's result.
Status RunOnDevice(StepCase* c, IndexType itype, RowStats* stats, Entry entry = Entry::kSync) {
  DeviceStep d(*c, itype);
  const Status s = StepOn(&d, *c, entry, stats);
  d.FetchInto(c);
  return s;
}

bool ExactNorm(const OptimizerOptions& o) {
  const double p = o.constraint.p;
  return o.constraint.kind == ConstraintKind::kNone || p == 1.0 || p == 2.0 || std::isinf(p);
}

// The device against the replay (bit for bit, statistics included, where
// the norm's p is 1, 2 or infinity: CUDA's pow may differ from the host's
// in the last bits otherwise) and against the CPU path.
void DeviceAndCompare(const StepCase& base, IndexType itype, Entry entry, const std::string& what) {
  StepCase dev = base, emu = base, cpu = base;
  RowStats ds, es, cs;
  ds.indices_seen = -1;
  const Status d = RunOnDevice(&dev, itype, &ds, entry);
  ASSERT_TRUE(d.ok()) << what << ": " << d.message();
  const Status e = ReplayStep(&emu, itype, &es);
  ASSERT_TRUE(e.ok()) << what << ": " << e.message();
  const Status c = cpu.Run(itype, &cs);
  ASSERT_TRUE(c.ok()) << what << ": " << c.message();
  const bool rowwise = base.options.kind == OptimizerKind::kRowWiseAdagrad;
  const double tol = testing::NormUlpTolerance(base.table.dtype, base.options.constraint.p);
  if (ExactNorm(base.options)) {
    EXPECT_EQ(ds.indices_seen, es.indices_seen) << what;
    EXPECT_EQ(ds.distinct_rows, es.distinct_rows) << what;
    EXPECT_EQ(ds.rows_scaled, es.rows_scaled) << what;
    EXPECT_EQ(ds.nonfinite_rows, es.nonfinite_rows) << what;
    ASSERT_TRUE(SameBytes(dev.table, emu.table)) << what << ": the table is not the replay's";
    ASSERT_TRUE(SameBytes(dev.state[0], emu.state[0])) << what << ": state 0 is not the replay's";
    ASSERT_TRUE(SameBytes(dev.state[1], emu.state[1])) << what << ": state 1 is not the replay's";
  } else {
    CompareStats(ds, es, rowwise, what + " (replay)");
    CompareStep(base, dev, emu, tol, what + " against the replay");
  }
  CompareStats(ds, cs, rowwise, what + " (cpu)");
  CompareStep(base, dev, cpu, 2 * tol, what + " against the cpu");
}

class CudaOptim : public GpuTest {};

// Every optimizer, weight-decay mode and dtype; constraints of each kind
// and p (2, 1, infinity, 3: the scaled float64 fallback); the gradient in
// the table's type or the arithmetic type; sparse (int32 and int64 lists,
// repeats within one group, past one group, far past) and dense; rows
// narrower than the lanes, across the lanes' register cache (128 columns)
// and far past it; both entry points.
TEST_F(CudaOptim, MatchesReplayAndCpuOverTheGrid) {
  std::mt19937_64 rng(3101);
  const std::int64_t widths[] = {1, 3, 8, 17, 64, 127, 128, 129, 300, 1000, 2100};
  int cases = 0;
  for (OptimizerKind kind : testing::kAllOptimizers) {
    for (WeightDecayMode mode : {WeightDecayMode::kNone, WeightDecayMode::kL2, WeightDecayMode::kDecoupled}) {
      for (DType dtype : testing::kAllDTypes) {
        for (std::int64_t cols : widths) {
          for (int variant = 0; variant < 6; ++variant) {
            OptimizerOptions o = OptionsFor(kind, mode, rng);
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
              for (int i = 0; i < 700; ++i) {
                indices.insert(indices.begin() + static_cast<std::ptrdiff_t>(rng() % indices.size()),
                               i % 7 == 0 ? 5 : 3);
              }
            }
            const StepCase base = MakeStepCase(o, dtype, grad_dtype, rows, cols, indices, dense, rng);
            DeviceAndCompare(base, variant % 2 ? IndexType::kInt32 : IndexType::kInt64,
                             variant == 4 ? Entry::kAsync : Entry::kSync,
                             testing::Name(kind, mode, dtype, cols, variant));
            if (::testing::Test::HasFatalFailure()) return;
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 4 * 3 * 4 * 11 * 6);
}

// Adagrad's conventions beyond torch's: lr_decay late in training and
// Caffe2's sign.
TEST_F(CudaOptim, AdagradConventions) {
  std::mt19937_64 rng(3102);
  for (DType dtype : testing::kAllDTypes) {
    OptimizerOptions decay = AdagradOptions(0.05, 0.3, 0.01, 1e-10);
    decay.weight_decay_mode = WeightDecayMode::kDecoupled;
    decay.step = 1000;
    OptimizerOptions caffe2 = Caffe2SparseAdagradOptions(-0.02, 1e-5, 0.001);
    caffe2.weight_decay_mode = WeightDecayMode::kL2;
    for (const OptimizerOptions& o : {decay, caffe2}) {
      const auto indices = testing::RandomIndices<std::int64_t>(200, 30, rng);
      const StepCase base = MakeStepCase(o, dtype, dtype, 30, 33, indices, false, rng);
      DeviceAndCompare(base, IndexType::kInt64, Entry::kSync,
                       std::string(DTypeName(dtype)) + (o.caffe2_sign ? " caffe2" : " lr_decay"));
    }
  }
}

// A row named 200 times among others gets the repeat groups' sums (64, 64,
// 64, 8 gradient rows in list order) added in order: SGD with lr = 1 from a
// zero row stores exactly minus that sum.
TEST_F(CudaOptim, RepeatsAreSummedInListOrderByGroups) {
  std::mt19937_64 rng(3103);
  std::vector<std::int64_t> indices;
  for (int i = 0; i < 200; ++i) {
    indices.push_back(3);
    const std::int64_t others[] = {0, 1, 2, 4, 5};
    if (i % 3 == 0) indices.push_back(others[i % 5]);
  }
  StepCase c = MakeStepCase(SgdOptions(1.0), DType::kFloat32, DType::kFloat32, 6, 19, indices, false, rng);
  for (std::int64_t k = 0; k < 19; ++k) c.table.Set(3, k, 0.0);
  std::uniform_real_distribution<double> exponent(-12, 12);
  for (std::int64_t i = 0; i < c.grad.rows; ++i) {
    for (std::int64_t k = 0; k < 19; ++k) {
      c.grad.Set(i, k, std::ldexp(1.0 + 0.5 * static_cast<double>(rng() % 2), static_cast<int>(exponent(rng))));
    }
  }
  StepCase dev = c, cpu = c;
  RowStats ds, cs;
  ASSERT_TRUE(RunOnDevice(&dev, IndexType::kInt64, &ds).ok());
  ASSERT_TRUE(cpu.Run(IndexType::kInt64, &cs).ok());
  EXPECT_TRUE(SameBytes(dev.table, cpu.table));
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
    EXPECT_EQ(dev.table.Get(3, k), static_cast<double>(-total)) << "col " << k;
  }
  EXPECT_EQ(ds.distinct_rows, 6);
  EXPECT_EQ(ds.indices_seen, static_cast<std::int64_t>(indices.size()));
}

// Many rows, one of them named 50,000 times (782 repeat groups), enough
// blocks that the kernels run concurrently: the same bits on every run and
// the replay's, whatever the scheduling, for both index widths.
TEST_F(CudaOptim, BitIdenticalWhateverTheScheduling) {
  std::mt19937_64 rng(3104);
  for (DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kFloat64}) {
    for (OptimizerKind kind : {OptimizerKind::kAdam, OptimizerKind::kRowWiseAdagrad}) {
      OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kL2, rng);
      o.constraint = RowConstraint{ConstraintKind::kMaxNorm, 1.0, 2.0, 1e-7};
      std::vector<std::int64_t> list = testing::RandomIndices<std::int64_t>(300000, 20000, rng);
      list.insert(list.end(), 50000, 7);
      std::shuffle(list.begin(), list.end(), rng);
      const StepCase base = MakeStepCase(o, dtype, dtype, 20000, 64, list, false, rng);
      StepCase a = base, b = base, emu = base;
      RowStats sa, sb, se;
      ASSERT_TRUE(RunOnDevice(&a, IndexType::kInt64, &sa).ok());
      ASSERT_TRUE(RunOnDevice(&b, IndexType::kInt32, &sb, Entry::kAsync).ok());
      ASSERT_TRUE(ReplayStep(&emu, IndexType::kInt64, &se).ok());
      const std::string what = std::string(DTypeName(dtype)) + " " + testing::OptimizerName(kind);
      EXPECT_TRUE(SameBytes(a.table, b.table)) << what;
      EXPECT_TRUE(SameBytes(a.state[0], b.state[0])) << what;
      EXPECT_TRUE(SameBytes(a.table, emu.table)) << what;
      EXPECT_TRUE(SameBytes(a.state[0], emu.state[0])) << what;
      EXPECT_TRUE(SameBytes(a.state[1], emu.state[1])) << what;
      EXPECT_EQ(sa.distinct_rows, se.distinct_rows) << what;
      EXPECT_EQ(sa.rows_scaled, se.rows_scaled) << what;
      EXPECT_EQ(sb.rows_scaled, se.rows_scaled) << what;
    }
  }
}

// Stochastic rounding draws the CPU's bits for (seed, step, row, column).
TEST_F(CudaOptim, StochasticRoundingIsTheCpus) {
  std::mt19937_64 rng(3105);
  for (DType dtype : {DType::kFloat16, DType::kBFloat16}) {
    for (OptimizerKind kind : testing::kAllOptimizers) {
      for (bool constrained : {false, true}) {
        OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kL2, rng);
        o.rounding = Rounding::kStochastic;
        o.seed = 77;
        if (constrained) o.constraint = RowConstraint{ConstraintKind::kMaxNorm, 0.4, 2.0, 1e-7};
        const auto indices = testing::RandomIndices<std::int64_t>(300, 64, rng);
        const StepCase base = MakeStepCase(o, dtype, DType::kFloat32, 64, 150, indices, false, rng);
        DeviceAndCompare(base, IndexType::kInt64, Entry::kSync,
                         std::string(DTypeName(dtype)) + " " + testing::OptimizerName(kind) +
                             (constrained ? " constrained" : ""));
      }
    }
  }
}

// Rows whose gradient, update or state is not finite are left, state and
// all, and counted, also when the non-finite value sits in a later repeat
// group of a row named past one group.
TEST_F(CudaOptim, NonFiniteRowsAreLeftAndCounted) {
  std::mt19937_64 rng(3106);
  for (OptimizerKind kind : testing::kAllOptimizers) {
    for (DType dtype : {DType::kFloat16, DType::kFloat32}) {
      OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kNone, rng);
      std::vector<std::int64_t> indices = {4, 9, 4, 2};
      indices.insert(indices.end(), 130, 6);
      StepCase base = MakeStepCase(o, dtype, dtype, 12, 9, indices, false, rng);
      base.grad.Set(2, 5, std::nan(""));  // row 4's second occurrence
      base.grad.Set(3, 0, -INFINITY);     // row 2
      base.grad.Set(100, 4, INFINITY);    // row 6, in its second repeat group
      StepCase dev = base;
      RowStats ds;
      ASSERT_TRUE(RunOnDevice(&dev, IndexType::kInt64, &ds).ok());
      const std::string what = std::string(testing::OptimizerName(kind)) + " " + DTypeName(dtype);
      EXPECT_EQ(ds.nonfinite_rows, 3) << what;
      EXPECT_EQ(ds.distinct_rows, 4) << what;
      for (std::int64_t r : {4, 2, 6}) {
        for (std::int64_t k = 0; k < 9; ++k) EXPECT_EQ(dev.table.Bits(r, k), base.table.Bits(r, k)) << what << " row " << r;
        for (int i = 0; i < 2; ++i) {
          for (std::int64_t k = 0; k < dev.state[i].cols; ++k) {
            EXPECT_EQ(dev.state[i].Bits(r, k), base.state[i].Bits(r, k)) << what << " row " << r;
          }
        }
      }
      DeviceAndCompare(base, IndexType::kInt64, Entry::kAsync, what);
    }
  }
  // A finite gradient whose update overflows; and a state that is already
  // infinite.
  StepCase c = MakeStepCase(SgdOptions(2.0), DType::kFloat32, DType::kFloat32, 2, 2, {0, 1}, false, rng);
  c.table.Set(0, 0, 3e38);
  c.grad.Set(0, 0, -3e38);
  StepCase dev = c;
  RowStats ds;
  ASSERT_TRUE(RunOnDevice(&dev, IndexType::kInt64, &ds).ok());
  EXPECT_EQ(ds.nonfinite_rows, 1);
  EXPECT_EQ(dev.table.Bits(0, 0), c.table.Bits(0, 0));
  EXPECT_EQ(dev.table.Bits(0, 1), c.table.Bits(0, 1));
  StepCase a = MakeStepCase(AdagradOptions(0.1), DType::kFloat32, DType::kFloat32, 3, 5, {0, 1, 2}, false, rng);
  a.state[0].Set(1, 2, INFINITY);
  DeviceAndCompare(a, IndexType::kInt64, Entry::kSync, "infinite state");
  StepCase after = a;
  RowStats as;
  ASSERT_TRUE(RunOnDevice(&after, IndexType::kInt64, &as).ok());
  EXPECT_EQ(as.nonfinite_rows, 1);
}

// An empty list (a null pointer), rows of no column, a table of one row (no
// key bits to sort on), a dense gradient of no rows, a list naming one row
// of a large table.
TEST_F(CudaOptim, DegenerateShapes) {
  std::mt19937_64 rng(3107);
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
                            {"no rows dense", 0, 3, {}, true},
                            {"one of many rows", 100000, 5, {99999}, false}};
    for (const Shape& s : shapes) {
      for (Entry entry : {Entry::kSync, Entry::kAsync}) {
        const std::string what = std::string(testing::OptimizerName(kind)) + " " + s.name +
                                 (entry == Entry::kAsync ? " async" : "");
        const StepCase base = MakeStepCase(o, DType::kFloat32, DType::kFloat32, s.rows, s.cols, s.indices, s.dense, rng);
        StepCase dev = base, cpu = base;
        RowStats ds, cs;
        const Status d = RunOnDevice(&dev, IndexType::kInt64, &ds, entry);
        ASSERT_TRUE(d.ok()) << what << ": " << d.message();
        ASSERT_TRUE(cpu.Run(IndexType::kInt64, &cs).ok()) << what;
        CompareStats(ds, cs, false, what);
        EXPECT_TRUE(SameBytes(dev.table, cpu.table)) << what;
        EXPECT_TRUE(SameBytes(dev.state[0], cpu.state[0])) << what;
        EXPECT_TRUE(SameBytes(dev.state[1], cpu.state[1])) << what;
        if (s.cols == 0 || (s.indices.empty() && !s.dense)) {
          EXPECT_TRUE(SameBytes(dev.table, base.table)) << what;
          EXPECT_TRUE(SameBytes(dev.state[0], base.state[0])) << what;
        }
      }
    }
  }
}

// Strides: the table, the gradient and the state tables padded (the
// sentinels in the padding must survive), and a misaligned table.
TEST_F(CudaOptim, PaddedAndMisalignedArrays) {
  std::mt19937_64 rng(3108);
  for (OptimizerKind kind : testing::kAllOptimizers) {
    OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kDecoupled, rng);
    o.constraint = RowConstraint{ConstraintKind::kConstantNorm, 1.5, 2.0, 1e-9};
    StepCase base = MakeStepCase(o, DType::kFloat16, DType::kFloat16, 50, 37, testing::RandomIndices<std::int64_t>(90, 50, rng),
                                 false, rng);
    TestTable wide_grad(DType::kFloat16, base.grad.rows, 37, 41);
    for (std::int64_t r = 0; r < wide_grad.rows; ++r) {
      for (std::int64_t k = 0; k < 37; ++k) wide_grad.Set(r, k, base.grad.Get(r, k));
    }
    base.grad = wide_grad;
    DeviceAndCompare(base, IndexType::kInt32, Entry::kSync, std::string(testing::OptimizerName(kind)) + " padded");
  }
  // A float32 table 4 bytes past an aligned address.
  const StepCase base = MakeStepCase(AdamOptions(0.01), DType::kFloat32, DType::kFloat32, 64, 128,
                                     testing::RandomIndices<std::int64_t>(100, 64, rng), false, rng);
  DeviceStep d(base, IndexType::kInt64);
  DeviceBuffer shifted(base.table.bytes.size() + 16);
  ASSERT_TRUE(shifted.ok());
  shifted.Upload(base.table.bytes.data(), base.table.bytes.size(), 4);
  Table t{shifted.as<char>() + 4, DType::kFloat32, 64, 128, 128 + 3};
  ASSERT_TRUE(cuda::OptimizerStep(t, d.state_view(), d.indices(), d.grad.const_view(), base.options).ok());
  const std::vector<unsigned char> all = shifted.Download();
  StepCase emu = base;
  RowStats es;
  ASSERT_TRUE(ReplayStep(&emu, IndexType::kInt64, &es).ok());
  EXPECT_TRUE(std::equal(emu.table.bytes.begin(), emu.table.bytes.end(), all.begin() + 4));
  EXPECT_TRUE(SameBytes(d.state[0].Fetch(), emu.state[0]));
  EXPECT_TRUE(SameBytes(d.state[1].Fetch(), emu.state[1]));
}

// Steps 1 to 6 of each optimizer through the asynchronous entry points on
// a stream, one scratch buffer (sized for the longest list) reused: the
// state carries from step to step as on the replay, bit for bit.
TEST_F(CudaOptim, StepsOnAStreamWithReusedScratch) {
  std::mt19937_64 rng(3109);
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  for (OptimizerKind kind : testing::kAllOptimizers) {
    for (DType dtype : {DType::kBFloat16, DType::kFloat64}) {
      OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kL2, rng);
      o.constraint = RowConstraint{ConstraintKind::kMaxNorm, 0.7, 2.0, 1e-7};
      const std::int64_t rows = 3000, cols = 48, longest = 5000;
      StepCase emu = MakeStepCase(o, dtype, dtype, rows, cols, {}, false, rng);
      DeviceStep d(emu, IndexType::kInt64);
      DeviceBuffer scratch(cuda::OptimizerScratchBytes(d.table.view(), Indices(nullptr, IndexType::kInt64, longest)));
      ASSERT_TRUE(scratch.ok());
      for (std::int64_t step = 1; step <= 6; ++step) {
        const std::int64_t n = step == 3 ? 0 : longest - 700 * step;
        emu.indices = testing::RandomIndices<std::int64_t>(n, rows, rng);
        emu.grad = TestTable(dtype, n, cols);
        testing::FillRandom(&emu.grad, rng, 1.0);
        emu.options.step = step;
        DeviceBuffer list(emu.indices);
        DeviceTable grad(emu.grad);
        const Status enq = cuda::OptimizerStepAsync(d.table.view(), d.state_view(), Indices(list.get(), IndexType::kInt64, n),
                                                    grad.const_view(), emu.options, scratch.get(), scratch.bytes(), stream);
        ASSERT_TRUE(enq.ok()) << enq.message();
        RowStats ds, es;
        const Status r = cuda::OptimizerResult(scratch.get(), stream, &ds);
        ASSERT_TRUE(r.ok()) << r.message();
        ASSERT_TRUE(ReplayStep(&emu, IndexType::kInt64, &es).ok());
        const std::string what = std::string(testing::OptimizerName(kind)) + " " + DTypeName(dtype) + " step " +
                                 std::to_string(step);
        EXPECT_EQ(ds.indices_seen, n) << what;
        EXPECT_EQ(ds.distinct_rows, es.distinct_rows) << what;
        EXPECT_EQ(ds.rows_scaled, es.rows_scaled) << what;
        ASSERT_TRUE(SameBytes(d.table.Fetch(), emu.table)) << what;
        ASSERT_TRUE(SameBytes(d.state[0].Fetch(), emu.state[0])) << what;
        ASSERT_TRUE(SameBytes(d.state[1].Fetch(), emu.state[1])) << what;
      }
    }
  }
  cudaStreamDestroy(stream);
}

// 17,000,000 x 128 float32 is 2.18e9 elements, past 2^31: offsets must be
// 64-bit in every kernel (the table's and row-wise Adagrad's state).
TEST_F(CudaOptim, TablesBeyond2To31Elements) {
  const std::int64_t rows = 17000000, cols = 128;
  DeviceBuffer table(static_cast<std::size_t>(rows * cols) * 4);
  DeviceBuffer sums(static_cast<std::size_t>(rows) * 4);
  if (!table.ok() || !sums.ok()) GTEST_SKIP() << "cannot allocate 8.8 GB of device memory";
  std::mt19937_64 rng(3110);
  const std::vector<std::int64_t> picked = {rows - 1, 0, 8388608, rows - 2, rows - 1};
  for (OptimizerKind kind : {OptimizerKind::kSGD, OptimizerKind::kRowWiseAdagrad}) {
    ASSERT_EQ(cudaMemset(table.get(), 0, table.bytes()), cudaSuccess);
    ASSERT_EQ(cudaMemset(sums.get(), 0, sums.bytes()), cudaSuccess);
    OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kNone, rng);
    o.constraint = RowConstraint{ConstraintKind::kConstantNorm, 1.0, 2.0, 1e-12};
    // The replay on a 4-row table standing for the picked rows: rows - 1,
    // 0, 8388608 and rows - 2 are its rows 3, 0, 1 and 2 (the same order).
    const std::vector<std::int64_t> small_list = {3, 0, 1, 2, 3};
    StepCase small = MakeStepCase(o, DType::kFloat32, DType::kFloat32, 4, cols, small_list, false, rng);
    small.table = TestTable(DType::kFloat32, 4, cols);
    for (std::int64_t r = 0; r < 4; ++r) {
      for (std::int64_t k = 0; k < cols; ++k) small.table.Set(r, k, 0.0);
    }
    if (kind == OptimizerKind::kRowWiseAdagrad) {
      small.state[0] = TestTable(DType::kFloat32, 4, 1);
      for (std::int64_t r = 0; r < 4; ++r) small.state[0].Set(r, 0, 0.0);
    }
    for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
      DeviceTable grad(small.grad);
      const std::vector<unsigned char> bytes = ListBytes(picked, itype);
      DeviceBuffer idx(bytes);
      const OptimizerState s = StateOf(kind, Table{sums.get(), DType::kFloat32, rows, 1, 0}, Table{});
      const Status st = cuda::OptimizerStep(Table{table.get(), DType::kFloat32, rows, cols, 0}, s,
                                            Indices(idx.get(), itype, 5), grad.const_view(), o);
      ASSERT_TRUE(st.ok()) << st.message();
      RowStats es;
      ASSERT_TRUE(ReplayStep(&small, IndexType::kInt64, &es).ok());
    }
    const std::int64_t small_row[] = {3, 0, 1, 2};  // picked[0..3]'s rows in `small`
    for (std::size_t i = 0; i < 4; ++i) {
      std::vector<unsigned char> got(cols * 4);
      ASSERT_EQ(cudaMemcpy(got.data(), table.as<char>() + picked[i] * cols * 4, cols * 4, cudaMemcpyDeviceToHost),
                cudaSuccess);
      const auto* want = small.table.bytes.data() + small_row[i] * cols * 4;
      EXPECT_TRUE(std::equal(got.begin(), got.end(), want)) << testing::OptimizerName(kind) << " row " << picked[i];
    }
  }
}

// ---------------------------------------------------------------------------
// Errors: the CPU's status and words, and every device array unchanged.

class CudaOptimErrors : public GpuTest {
 protected:
  static void ExpectStatus(const Status& s, StatusCode code, const std::vector<std::string>& fragments,
                           const std::string& what) {
    EXPECT_EQ(s.code(), code) << what << ": " << s.message();
    for (const std::string& f : fragments) {
      EXPECT_NE(s.message().find(f), std::string::npos) << what << ": message \"" << s.message() << "\" lacks \"" << f << "\"";
    }
  }

  // `c` on the device through both entry points: rejected with `code`, a
  // message holding `fragments` and, where the CPU can run `c` (host
  // memory), the CPU's very message; nothing written, statistics included.
  static void ExpectRejected(const StepCase& c, IndexType itype, StatusCode code,
                             const std::vector<std::string>& fragments, const std::string& what) {
    StepCase cpu = c;
    RowStats cs;
    const Status want = cpu.Run(itype, &cs);
    ExpectStatus(want, code, fragments, what + " (cpu)");
    for (Entry entry : {Entry::kSync, Entry::kAsync}) {
      const std::string how = what + (entry == Entry::kSync ? " sync" : " async");
      DeviceStep d(c, itype);
      RowStats stats;
      stats.indices_seen = -42;
      const Status got = StepOn(&d, c, entry, &stats);
      ExpectStatus(got, code, fragments, how);
      EXPECT_EQ(got.message(), want.message()) << how;
      EXPECT_EQ(stats.indices_seen, -42) << how << ": statistics written by a rejected call";
      EXPECT_TRUE(d.Unchanged()) << how << ": a rejected call modified the device's data";
    }
  }
};

StepCase ErrorCase(const OptimizerOptions& o, DType dtype, std::vector<std::int64_t> list, bool dense = false) {
  std::mt19937_64 rng(3200);
  return MakeStepCase(o, dtype, dtype, 100, 16, list, dense, rng);
}

TEST_F(CudaOptimErrors, IndexOutOfRangeNamesPositionAndValue) {
  for (OptimizerKind kind : testing::kAllOptimizers) {
    std::mt19937_64 rng(3201);
    const OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kL2, rng);
    for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
      const std::string what = std::string(testing::OptimizerName(kind)) + " " + IndexTypeName(itype);
      ExpectRejected(ErrorCase(o, DType::kFloat32, {1, 2, 100, 3}), itype, StatusCode::kOutOfRange,
                     {"indices[2] = 100", "100 table rows"}, what + " too large");
      ExpectRejected(ErrorCase(o, DType::kBFloat16, {0, -1, 5}), itype, StatusCode::kOutOfRange, {"indices[1] = -1"},
                     what + " negative");
      // Repeats past one group before the bad index: nothing summed is written.
      std::vector<std::int64_t> list(200, 4);
      list.push_back(250);
      ExpectRejected(ErrorCase(o, DType::kFloat16, list), itype, StatusCode::kOutOfRange, {"indices[200] = 250"},
                     what + " after repeats");
    }
  }
}

TEST_F(CudaOptimErrors, FirstBadPositionWhateverTheScheduling) {
  std::vector<std::int64_t> list(2000000, 5);
  list[1999999] = -7;
  list[1234567] = 100;
  list[777777] = 1000;
  std::mt19937_64 rng(3202);
  StepCase c = MakeStepCase(AdagradOptions(0.1), DType::kFloat32, DType::kFloat32, 100, 4, list, false, rng);
  ExpectRejected(c, IndexType::kInt64, StatusCode::kOutOfRange, {"indices[777777] = 1000"}, "2M list");
}

TEST_F(CudaOptimErrors, AnyIndexIntoAnEmptyTable) {
  std::mt19937_64 rng(3203);
  StepCase c = MakeStepCase(SgdOptions(0.1), DType::kFloat32, DType::kFloat32, 0, 3, {0}, false, rng);
  ExpectRejected(c, IndexType::kInt64, StatusCode::kOutOfRange, {"indices[0] = 0"}, "no rows");
}

// Under NonFinitePolicy::kError every gradient element is checked before
// anything is written; the first gradient row is reported; an index out of
// range is reported before it, as on the CPU.
TEST_F(CudaOptimErrors, NonFiniteGradientUnderTheErrorPolicy) {
  for (OptimizerKind kind : testing::kAllOptimizers) {
    std::mt19937_64 rng(3204);
    OptimizerOptions o = OptionsFor(kind, WeightDecayMode::kNone, rng);
    o.non_finite = NonFinitePolicy::kError;
    for (DType dtype : testing::kAllDTypes) {
      const std::string what = std::string(testing::OptimizerName(kind)) + " " + DTypeName(dtype);
      StepCase c = ErrorCase(o, dtype, {3, 7, 3, 0, 9, 3});
      c.grad.Set(4, 15, std::nan(""));
      c.grad.Set(2, 3, INFINITY);
      ExpectRejected(c, IndexType::kInt64, StatusCode::kNonFinite, {"gradient row 2 (for table row 3)"}, what);
      StepCase both = c;
      both.indices[5] = 120;
      ExpectRejected(both, IndexType::kInt32, StatusCode::kOutOfRange, {"indices[5] = 120"}, what + " and a bad index");
      StepCase dense = ErrorCase(o, dtype, {}, true);
      dense.grad.Set(66, 0, -INFINITY);
      dense.grad.Set(90, 7, std::nan(""));
      ExpectRejected(dense, IndexType::kInt64, StatusCode::kNonFinite, {"gradient row 66 (for table row 66)"},
                     what + " dense");
    }
  }
  // The gradient in the arithmetic type of a 16-bit table; a long list.
  std::mt19937_64 rng(3205);
  OptimizerOptions o = AdamOptions(0.01);
  o.non_finite = NonFinitePolicy::kError;
  std::vector<std::int64_t> list = testing::RandomIndices<std::int64_t>(300000, 100, rng);
  StepCase c = MakeStepCase(o, DType::kBFloat16, DType::kFloat32, 100, 16, list, false, rng);
  c.grad.Set(299999, 0, std::nan(""));
  c.grad.Set(123456, 15, INFINITY);
  ExpectRejected(c, IndexType::kInt64, StatusCode::kNonFinite,
                 {"gradient row 123456 (for table row " + std::to_string(list[123456]) + ")"}, "float32 gradient, long list");
}

// What the host checks: the CPU's words, nothing enqueued.
TEST_F(CudaOptimErrors, HostSideChecksReadAsTheCpus) {
  struct Case {
    const char* name;
    StatusCode code;
    const char* fragment;
    void (*spoil)(StepCase*);
  };
  const Case cases[] = {
      {"lr", StatusCode::kInvalidArgument, "options.lr", [](StepCase* c) { c->options.lr = -1; }},
      {"beta2", StatusCode::kInvalidArgument, "beta2", [](StepCase* c) { c->options.beta2 = 1.5; }},
      {"step", StatusCode::kInvalidArgument, "step", [](StepCase* c) { c->options.step = 0; }},
      {"decay without a mode", StatusCode::kInvalidArgument, "weight_decay",
       [](StepCase* c) {
         c->options.weight_decay = 0.1;
         c->options.weight_decay_mode = WeightDecayMode::kNone;
       }},
      {"stochastic float32", StatusCode::kInvalidArgument, "", [](StepCase* c) { c->options.rounding = Rounding::kStochastic; }},
      {"constraint p", StatusCode::kInvalidArgument, "", [](StepCase* c) { c->options.constraint = {ConstraintKind::kMaxNorm, 1.0, -2.0, 0.0}; }},
      {"gradient rows", StatusCode::kInvalidArgument, "", [](StepCase* c) { c->grad.rows = 2; }},
      {"gradient cols", StatusCode::kInvalidArgument, "", [](StepCase* c) { c->grad.cols = 15; }},
      {"gradient dtype", StatusCode::kInvalidArgument, "", [](StepCase* c) { c->grad.dtype = DType::kFloat64; }},
      {"state shape", StatusCode::kInvalidArgument, "", [](StepCase* c) { c->state[1].rows = 4; }},
      {"state dtype", StatusCode::kInvalidArgument, "", [](StepCase* c) { c->state[0].dtype = DType::kFloat64; }},
      {"threads", StatusCode::kInvalidArgument, "num_threads", [](StepCase* c) { c->options.num_threads = -1; }},
  };
  std::mt19937_64 rng(3206);
  for (const Case& k : cases) {
    StepCase c = MakeStepCase(AdamOptions(0.01), DType::kFloat32, DType::kFloat32, 100, 16, {1, 2, 3}, false, rng);
    k.spoil(&c);
    ExpectRejected(c, IndexType::kInt64, k.code, {k.fragment}, k.name);
  }
  StepCase missing = MakeStepCase(AdagradOptions(0.1), DType::kFloat32, DType::kFloat32, 100, 16, {1}, false, rng);
  missing.state[0] = TestTable();
  ExpectRejected(missing, IndexType::kInt64, StatusCode::kInvalidArgument, {"state.sum"}, "missing state");
  StepCase ref = MakeStepCase(SgdOptions(0.1), DType::kFloat32, DType::kFloat32, 100, 16, {1}, false, rng);
  ref.options.backend = Backend::kReference;
  DeviceStep d(ref, IndexType::kInt64);
  ExpectStatus(cuda::OptimizerStep(d.table.view(), {}, d.indices(), d.grad.const_view(), ref.options),
               StatusCode::kUnsupported, {"options.backend = kReference"}, "kReference");
  EXPECT_TRUE(d.Unchanged());
}

// A state table overlapping the table or another state table, on the
// device: the CPU's check and words.
TEST_F(CudaOptimErrors, OverlappingArrays) {
  std::mt19937_64 rng(3207);
  const StepCase c = MakeStepCase(AdamOptions(0.01), DType::kFloat32, DType::kFloat32, 100, 16, {1, 2}, false, rng);
  DeviceStep d(c, IndexType::kInt64);
  const Table t = d.table.view();
  OptimizerState s = d.state_view();
  s.exp_avg_sq = s.exp_avg;
  ExpectStatus(cuda::OptimizerStep(t, s, d.indices(), d.grad.const_view(), c.options), StatusCode::kInvalidArgument,
               {"overlap"}, "two moments");
  s = d.state_view();
  s.exp_avg = Table{t.data, DType::kFloat32, 100, 16, 0};
  ExpectStatus(cuda::OptimizerStep(t, s, d.indices(), d.grad.const_view(), c.options), StatusCode::kInvalidArgument,
               {"overlap"}, "moment on the table");
  EXPECT_TRUE(d.Unchanged());
}

TEST_F(CudaOptimErrors, HostPointersAreRejected) {
  std::mt19937_64 rng(3208);
  StepCase c = MakeStepCase(AdagradOptions(0.1), DType::kFloat32, DType::kFloat32, 100, 16, {1, 2}, false, rng);
  StepCase host = c;
  DeviceStep d(c, IndexType::kInt64);
  const OptimizerState ds = d.state_view();
  ExpectStatus(cuda::OptimizerStep(host.table.view(), ds, d.indices(), d.grad.const_view(), c.options),
               StatusCode::kInvalidArgument, {"table.data", "host memory"}, "table");
  ExpectStatus(cuda::OptimizerStep(d.table.view(), host.StateView(), d.indices(), d.grad.const_view(), c.options),
               StatusCode::kInvalidArgument, {"state.sum.data", "host memory"}, "state");
  ExpectStatus(cuda::OptimizerStep(d.table.view(), ds, Indices(std::span<const std::int64_t>(host.indices)),
                                   d.grad.const_view(), c.options),
               StatusCode::kInvalidArgument, {"indices.data", "host memory"}, "indices");
  ExpectStatus(cuda::OptimizerStep(d.table.view(), ds, d.indices(), host.grad.const_view(), c.options),
               StatusCode::kInvalidArgument, {"values.data", "host memory"}, "values");
  StepCase dense = MakeStepCase(SgdOptions(0.1), DType::kFloat32, DType::kFloat32, 100, 16, {}, true, rng);
  DeviceStep dd(dense, IndexType::kInt64);
  ExpectStatus(cuda::OptimizerStepDense(dd.table.view(), {}, dense.grad.const_view(), dense.options),
               StatusCode::kInvalidArgument, {"gradient.data", "host memory"}, "dense gradient");
  EXPECT_TRUE(SameBytes(host.table, c.table));
  EXPECT_TRUE(d.Unchanged());
  EXPECT_TRUE(dd.Unchanged());
}

TEST_F(CudaOptimErrors, BadScratch) {
  std::mt19937_64 rng(3209);
  const StepCase c = MakeStepCase(AdamOptions(0.01), DType::kFloat32, DType::kFloat32, 100, 16, {1, 2, 1}, false, rng);
  DeviceStep d(c, IndexType::kInt64);
  const Table t = d.table.view();
  const OptimizerState s = d.state_view();
  const ConstTable g = d.grad.const_view();
  const std::size_t need = cuda::OptimizerScratchBytes(t, d.indices());
  ASSERT_GT(need, 512u);
  DeviceBuffer scratch(need + 64);
  ExpectStatus(cuda::OptimizerStepAsync(t, s, d.indices(), g, c.options, nullptr, need, nullptr),
               StatusCode::kInvalidArgument, {"scratch is null"}, "null");
  ExpectStatus(cuda::OptimizerStepAsync(t, s, d.indices(), g, c.options, scratch.get(), need - 1, nullptr),
               StatusCode::kInvalidArgument, {"too small"}, "small");
  ExpectStatus(cuda::OptimizerStepAsync(t, s, d.indices(), g, c.options, scratch.as<char>() + 8, need, nullptr),
               StatusCode::kInvalidArgument, {"16-byte aligned"}, "misaligned");
  std::vector<unsigned char> host_scratch(need + 16);
  void* host_aligned = host_scratch.data() + (16 - reinterpret_cast<std::uintptr_t>(host_scratch.data()) % 16) % 16;
  ExpectStatus(cuda::OptimizerStepAsync(t, s, d.indices(), g, c.options, host_aligned, need, nullptr),
               StatusCode::kInvalidArgument, {"host memory"}, "host");
  // Scratch over each of the call's arrays (large enough to hold it).
  DeviceBuffer big(need + 100 * 16 * 4 + 64);
  const Table over_table{big.get(), DType::kFloat32, 100, 16, 0};
  ExpectStatus(cuda::OptimizerStepAsync(over_table, s, d.indices(), g, c.options, big.get(), need, nullptr),
               StatusCode::kInvalidArgument, {"scratch overlaps table"}, "over the table");
  OptimizerState over_state = s;
  over_state.exp_avg_sq = Table{big.get(), DType::kFloat32, 100, 16, 0};
  ExpectStatus(cuda::OptimizerStepAsync(t, over_state, d.indices(), g, c.options, big.get(), need, nullptr),
               StatusCode::kInvalidArgument, {"scratch overlaps state.exp_avg_sq"}, "over a state table");
  const ConstTable over_grad(big.get(), DType::kFloat32, 3, 16, 0);
  ExpectStatus(cuda::OptimizerStepAsync(t, s, d.indices(), over_grad, c.options, big.get(), need, nullptr),
               StatusCode::kInvalidArgument, {"scratch overlaps values"}, "over the gradient");
  ExpectStatus(cuda::OptimizerStepAsync(t, s, Indices(big.get(), IndexType::kInt64, 3), g, c.options, big.get(), need, nullptr),
               StatusCode::kInvalidArgument, {"scratch overlaps indices"}, "over the list");
  EXPECT_TRUE(d.Unchanged());
  // Memory that no step wrote; the row operator's outcome is not a step's.
  DeviceBuffer fresh(need);
  ASSERT_EQ(cudaMemset(fresh.get(), 0, need), cudaSuccess);
  ExpectStatus(cuda::OptimizerResult(fresh.get(), nullptr), StatusCode::kInvalidArgument, {"does not hold"}, "fresh");
  ExpectStatus(cuda::OptimizerResult(nullptr, nullptr), StatusCode::kInvalidArgument, {"scratch is null"}, "null result");
  DeviceBuffer rows_scratch(cuda::RowsScratchBytes(100, 3));
  ASSERT_TRUE(cuda::NormalizeRowsAsync(t, d.indices(), {}, rows_scratch.get(), rows_scratch.bytes(), nullptr).ok());
  ExpectStatus(cuda::OptimizerResult(rows_scratch.get(), nullptr), StatusCode::kInvalidArgument, {"does not hold"},
               "a row operator's scratch");
}

// A failed asynchronous step leaves its scratch fit for the next call,
// which must not see the old finding.
TEST_F(CudaOptimErrors, ScratchOfAFailedStepServesTheNext) {
  std::mt19937_64 rng(3210);
  StepCase bad = MakeStepCase(AdagradOptions(0.1), DType::kFloat32, DType::kFloat32, 100, 16, {1, 200, 3}, false, rng);
  DeviceStep d(bad, IndexType::kInt64);
  DeviceBuffer scratch(cuda::OptimizerScratchBytes(d.table.view(), d.indices()));
  ASSERT_TRUE(cuda::OptimizerStepAsync(d.table.view(), d.state_view(), d.indices(), d.grad.const_view(), bad.options,
                                       scratch.get(), scratch.bytes(), nullptr)
                  .ok());
  ExpectStatus(cuda::OptimizerResult(scratch.get(), nullptr), StatusCode::kOutOfRange, {"indices[1] = 200"}, "bad");
  EXPECT_TRUE(d.Unchanged());
  StepCase good = bad;
  good.indices = {1, 20, 3};
  DeviceStep g(good, IndexType::kInt64);
  ASSERT_TRUE(cuda::OptimizerStepAsync(g.table.view(), g.state_view(), g.indices(), g.grad.const_view(), good.options,
                                       scratch.get(), scratch.bytes(), nullptr)
                  .ok());
  RowStats s;
  const Status r = cuda::OptimizerResult(scratch.get(), nullptr, &s);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(s.distinct_rows, 3);
  StepCase emu = good;
  RowStats es;
  ASSERT_TRUE(ReplayStep(&emu, IndexType::kInt64, &es).ok());
  EXPECT_TRUE(SameBytes(g.table.Fetch(), emu.table));
}

}  // namespace
}  // namespace sparsenorm

// ---------------------------------------------------------------------------
// The host side of the front end: runs everywhere, GPU or not.

namespace sparsenorm {
namespace {

TEST(CudaOptimFrontEnd, HostChecksComeFirstAndNeedNoDevice) {
  float table[16] = {};
  float grad[4] = {};
  std::int64_t list[1] = {0};
  const Table t{table, DType::kFloat32, 4, 4, 0};
  const ConstTable g(grad, DType::kFloat32, 1, 4, 0);
  const Indices one(list, IndexType::kInt64, 1);
  OptimizerOptions o = SgdOptions(0.1);
  o.lr = -1;
  Status s = cuda::OptimizerStep(t, {}, one, g, o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("options.lr = -1"), std::string::npos) << s.message();
  o = SgdOptions(0.1);
  o.backend = Backend::kReference;
  EXPECT_EQ(cuda::OptimizerStep(t, {}, one, g, o).code(), StatusCode::kUnsupported);
  EXPECT_EQ(cuda::OptimizerStepAsync(t, {}, one, g, o, nullptr, 0, nullptr).code(), StatusCode::kUnsupported);
  s = cuda::OptimizerStepDense(t, {}, g, SgdOptions(0.1));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(table[0], 0.0f);
}

TEST(CudaOptimFrontEnd, WithoutADeviceAValidCallIsADeviceError) {
  if (cuda::DeviceCount() > 0) GTEST_SKIP() << "a device is present";
  float table[16] = {};
  float grad[4] = {1, 2, 3, 4};
  std::int64_t list[1] = {0};
  const Status s = cuda::OptimizerStep(Table{table, DType::kFloat32, 4, 4, 0}, {}, Indices(list, IndexType::kInt64, 1),
                                       ConstTable(grad, DType::kFloat32, 1, 4, 0), SgdOptions(0.1));
  EXPECT_EQ(s.code(), StatusCode::kDeviceError) << s.message();
  EXPECT_NE(s.message().find("CUDA error"), std::string::npos) << s.message();
  EXPECT_EQ(table[0], 0.0f);
  // A sparse list's size depends on CUB's storage, which needs a device.
  EXPECT_EQ(cuda::OptimizerScratchBytes(Table{table, DType::kFloat32, 4, 4, 0}, Indices(list, IndexType::kInt64, 1)), 0u);
}

TEST(CudaOptimFrontEnd, ScratchSizes) {
  float table[16] = {};
  const Table t{table, DType::kFloat32, 4, 4, 0};
  // A dense gradient, or an empty list, needs the report alone.
  EXPECT_EQ(cuda::OptimizerScratchBytesDense(t), 512u);
  EXPECT_EQ(cuda::OptimizerScratchBytes(t, Indices(nullptr, IndexType::kInt64, 0)), 512u);
  // Invalid shapes and types: 0.
  EXPECT_EQ(cuda::OptimizerScratchBytesDense(Table{table, DType::kFloat32, -1, 4, 0}), 0u);
  EXPECT_EQ(cuda::OptimizerScratchBytesDense(Table{table, static_cast<DType>(9), 4, 4, 0}), 0u);
  EXPECT_EQ(cuda::OptimizerScratchBytes(t, Indices(nullptr, IndexType::kInt64, -3)), 0u);
  EXPECT_EQ(cuda::OptimizerScratchBytes(t, Indices(nullptr, static_cast<IndexType>(7), 3)), 0u);
  if (cuda::DeviceCount() == 0) return;
  // With a device: the list's arrays, the partial sums and CUB's storage,
  // growing with the list and the row width.
  const std::size_t small = cuda::OptimizerScratchBytes(t, Indices(nullptr, IndexType::kInt64, 1000));
  const std::size_t wide = cuda::OptimizerScratchBytes(Table{table, DType::kFloat32, 4, 400, 0},
                                                       Indices(nullptr, IndexType::kInt64, 1000));
  const std::size_t narrow_index = cuda::OptimizerScratchBytes(t, Indices(nullptr, IndexType::kInt32, 1000));
  EXPECT_GE(small, 512u + 2 * 8000 + 2 * 8000 + 2 * 8008 + 1000 / 32 * 4 * 4);
  EXPECT_GT(wide, small);
  EXPECT_LT(narrow_index, small);
}

}  // namespace
}  // namespace sparsenorm
