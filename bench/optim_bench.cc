// Google Benchmark programs for the optimizer step (include/sparsenorm/
// optim.h), each beside its access-pattern ceiling (touch_step.h) and with
// the pieces that tell where the time goes.
//
// Case: a float32 table of 1,000,000 rows, a batch of Zipf-popular indices
// (zipf_batch.h: 100,000 indices name about 24,000 distinct rows), one
// uniform gradient row per index, max-norm 1 (torch's eps, 1e-7), every
// optimizer with its torch defaults (SGD lr 0.01).
//
// Bytes counted per call (the fewest that must move): every gradient row
// and the index list read once; every distinct row and its state read and
// written once. A 64 MiB read flushes the caches before each call (outside
// the timed region), as compare_optim.py does, so that no call finds the
// last one's rows in the cache.
//
// Per optimizer and case:
//   BM_Step          the public call, fused (the norm applied in the step)
//   BM_TouchStep     the ceiling: the step's reads and writes in its order,
//                    trivial arithmetic, the grouping done beforehand
//   BM_StepNoNorm    the step without the constraint: what the fused norm costs
//   BM_StepUnfused   the step without the constraint, then the row operator
//   BM_StepOtherGrouping  the step with its index list grouped the other
//                    way than the planner picks (cpu/group_rows.h): by the
//                    sort on short lists, through the hash table on long ones
// and per case, for all optimizers:
//   BM_TouchGradient the ceiling's gradient sums alone, no table or state
//   BM_StepGroupRows the CPU path's grouping of the index list alone, and
//   BM_StepGroupRowsOther  the other grouping's
//                    (cpu/group_rows.h), which the ceiling leaves out

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/entry.h"
#include "sparsenorm/optim.h"
#include "sparsenorm/rows.h"
#include "touch_step.h"
#include "zipf_batch.h"

namespace {

using sparsenorm::OptimizerKind;

constexpr std::int64_t kRows = 1000000;
constexpr double kZipfExponent = 1.1;
constexpr std::uint64_t kBatchSeed = 7;
// The cases (D, indices): the fused step and its ceiling for each; the
// breakdown variants (no norm, unfused, the gradient sums alone) for the
// benchmark batch, kBreakdownBatch. Small batches and short rows only where
// the tables are small: a case's setup fills a 1M-row table and its state,
// 6 GB for Adam at D = 512. Extend freely.
struct Case {
  std::int64_t cols, count;
};
constexpr std::int64_t kBreakdownBatch = 100000;
constexpr Case kCases[] = {{32, kBreakdownBatch}, {128, kBreakdownBatch}, {512, kBreakdownBatch},
                           {16, 256}, {64, 256}, {16, 4096}, {64, 4096}};

struct Optimizer {
  const char* name;
  OptimizerKind kind;
};
constexpr Optimizer kOptimizers[] = {{"sgd", OptimizerKind::kSGD},
                                     {"adagrad", OptimizerKind::kAdagrad},
                                     {"rowwise_adagrad", OptimizerKind::kRowWiseAdagrad},
                                     {"sparse_adam", OptimizerKind::kAdam}};

sparsenorm::OptimizerOptions OptionsFor(OptimizerKind kind, bool max_norm) {
  sparsenorm::OptimizerOptions o;
  switch (kind) {
    case OptimizerKind::kSGD: o = sparsenorm::SgdOptions(0.01); break;
    case OptimizerKind::kAdagrad: o = sparsenorm::AdagradOptions(); break;
    case OptimizerKind::kRowWiseAdagrad: o = sparsenorm::RowWiseAdagradOptions(); break;
    case OptimizerKind::kAdam: o = sparsenorm::AdamOptions(); break;
  }
  if (max_norm) o.constraint = {sparsenorm::ConstraintKind::kMaxNorm, 1.0, 2.0, 1e-7};
  return o;
}

// State elements per table row, per state table: row-wise Adagrad keeps one
// sum per row, Adam two tables.
std::int64_t StateCols(OptimizerKind kind, int table, std::int64_t cols) {
  switch (kind) {
    case OptimizerKind::kSGD: return 0;
    case OptimizerKind::kAdagrad: return table == 0 ? cols : 0;
    case OptimizerKind::kRowWiseAdagrad: return table == 0 ? 1 : 0;
    case OptimizerKind::kAdam: return cols;
  }
  return 0;
}

using Floats = std::unique_ptr<float[]>;

// One case's data, kept from one benchmark to the next (Google Benchmark
// calls each function several times while it picks an iteration count):
// made again only when the case changes, its state zeroed again when the
// optimizer changes. The registration order keeps a case's benchmarks
// together.
struct Workload {
  std::int64_t cols = -1, count = -1;
  std::vector<std::int64_t> indices;
  std::int64_t distinct = 0;
  Floats table, grad, state[2];
  std::unique_ptr<sparsenorm::bench::TouchPlan> plan;
  int state_of = -1;  // the optimizer the state belongs to
};

Workload& Load(std::int64_t cols, std::int64_t count, OptimizerKind kind) {
  static Workload w;
  if (w.cols != cols || w.count != count) {
    w = Workload{};  // frees the last case's arrays before allocating
    w.cols = cols;
    w.count = count;
    w.indices = sparsenorm::bench::ZipfBatch(count, kRows, kZipfExponent, kBatchSeed);
    w.plan = std::make_unique<sparsenorm::bench::TouchPlan>(w.indices.data(), count);
    w.distinct = w.plan->distinct_rows();
    w.table.reset(new float[static_cast<std::size_t>(kRows * cols)]);
    w.grad.reset(new float[static_cast<std::size_t>(count * cols)]);
    // Rows of norm about sqrt(cols / 3) > 1: the first step scales them all.
    sparsenorm::bench::FillUniform(w.table.get(), kRows * cols, 1.0f, 1);
    sparsenorm::bench::FillUniform(w.grad.get(), count * cols, 1.0f, 2);
  }
  if (w.state_of != static_cast<int>(kind)) {
    for (int i = 0; i < 2; ++i) {
      const std::int64_t n = kRows * StateCols(kind, i, cols);
      if (n == 0) {
        w.state[i].reset();
        continue;
      }
      w.state[i].reset(new float[static_cast<std::size_t>(n)]);
      std::memset(w.state[i].get(), 0, static_cast<std::size_t>(n) * 4);
    }
    w.state_of = static_cast<int>(kind);
  }
  return w;
}

double BytesMoved(const Workload& w, OptimizerKind kind) {
  const double state = static_cast<double>(StateCols(kind, 0, w.cols) + StateCols(kind, 1, w.cols));
  return 4.0 * static_cast<double>(w.count * w.cols) + 8.0 * static_cast<double>(w.count) +
         2.0 * 4.0 * static_cast<double>(w.distinct) * (static_cast<double>(w.cols) + state);
}

// 64 MiB read, twice the last-level cache of the machines we use: one load
// per cache line (a float sum in order would take longer than the step).
void FlushCaches(benchmark::State& state) {
  static std::vector<std::uint32_t> buffer(std::size_t{16} << 20, 1);
  state.PauseTiming();
  std::uint32_t bits = 0;
  for (std::size_t i = 0; i < buffer.size(); i += 16) bits ^= buffer[i];
  benchmark::DoNotOptimize(bits);
  state.ResumeTiming();
}

void Report(benchmark::State& state, const Workload& w, OptimizerKind kind) {
  state.counters["bytes_per_second"] = benchmark::Counter(
      BytesMoved(w, kind) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["distinct_rows"] = static_cast<double>(w.distinct);
}

enum class Variant { kFused, kNoNorm, kUnfused, kOtherGrouping };

void BM_Step(benchmark::State& state, OptimizerKind kind, Variant variant) {
  const std::int64_t cols = state.range(0), count = state.range(1);
  Workload& w = Load(cols, count, kind);
  const sparsenorm::Table table = sparsenorm::MakeTable(w.table.get(), kRows, cols);
  sparsenorm::OptimizerState s;
  sparsenorm::Table* slots[2] = {kind == OptimizerKind::kAdam ? &s.exp_avg : &s.sum, &s.exp_avg_sq};
  for (int i = 0; i < 2; ++i) {
    const std::int64_t n = StateCols(kind, i, cols);
    if (n > 0) *slots[i] = sparsenorm::MakeTable(w.state[i].get(), kRows, n);
  }
  const sparsenorm::Indices indices{std::span<const std::int64_t>(w.indices)};
  const sparsenorm::ConstTable values = sparsenorm::MakeConstTable(w.grad.get(), count, cols);
  const bool constrained = variant == Variant::kFused || variant == Variant::kOtherGrouping;
  sparsenorm::OptimizerOptions options = OptionsFor(kind, constrained);
  sparsenorm::NormalizeOptions renorm;
  renorm.target = 1.0;
  renorm.eps = 1e-7;
  sparsenorm::RowStats stats;
  sparsenorm::Tuning other;
  other.hash_groups_below =
      sparsenorm::bench::StepGroupsFirstSeen(count) ? 0 : std::numeric_limits<std::int64_t>::max();
  for (auto _ : state) {
    FlushCaches(state);
    sparsenorm::Status st =
        variant == Variant::kOtherGrouping
            ? sparsenorm::detail::OptimizerStep(table, s, &indices, values, options, other, &stats)
            : sparsenorm::OptimizerStep(table, s, indices, values, options, &stats);
    if (st.ok() && variant == Variant::kUnfused) st = sparsenorm::NormalizeRows(table, indices, renorm);
    if (!st.ok()) {
      state.SkipWithError(st.message().c_str());
      break;
    }
    ++options.step;  // Adam's bias correction moves on, as in training
  }
  Report(state, w, kind);
}

void BM_TouchStep(benchmark::State& state, OptimizerKind kind) {
  const std::int64_t cols = state.range(0), count = state.range(1);
  Workload& w = Load(cols, count, kind);
  float* const tables[2] = {w.state[0].get(), w.state[1].get()};
  const std::int64_t state_cols[2] = {StateCols(kind, 0, cols), StateCols(kind, 1, cols)};
  const int threads = sparsenorm::DefaultThreadCount();
  // factor 0: the arrays keep their values, so the step that follows sees
  // the same data.
  w.plan->Run(w.table.get(), cols, tables, state_cols, w.grad.get(), 0.0f, threads);  // allocates
  for (auto _ : state) {
    FlushCaches(state);
    w.plan->Run(w.table.get(), cols, tables, state_cols, w.grad.get(), 0.0f, threads);
    benchmark::ClobberMemory();
  }
  Report(state, w, kind);
}

void BM_TouchGradient(benchmark::State& state) {
  const std::int64_t cols = state.range(0), count = state.range(1);
  Workload& w = Load(cols, count, OptimizerKind::kSGD);
  float* const tables[2] = {nullptr, nullptr};
  const std::int64_t state_cols[2] = {0, 0};
  const int threads = sparsenorm::DefaultThreadCount();
  w.plan->Run(nullptr, cols, tables, state_cols, w.grad.get(), 0.0f, threads);
  for (auto _ : state) {
    FlushCaches(state);
    w.plan->Run(nullptr, cols, tables, state_cols, w.grad.get(), 0.0f, threads);
    benchmark::ClobberMemory();
  }
  state.counters["bytes_per_second"] = benchmark::Counter(
      (4.0 * static_cast<double>(cols) + 8.0) * static_cast<double>(count * state.iterations()),
      benchmark::Counter::kIsRate);
}

// other: the grouping the planner does not pick for this length.
void BM_StepGroupRows(benchmark::State& state, bool other) {
  const std::int64_t count = state.range(0);
  const std::vector<std::int64_t> indices =
      sparsenorm::bench::ZipfBatch(count, kRows, kZipfExponent, kBatchSeed);
  const int threads = sparsenorm::DefaultThreadCount();
  const bool first_seen = sparsenorm::bench::StepGroupsFirstSeen(count) != other;
  std::int64_t groups = 0;
  for (auto _ : state) {
    FlushCaches(state);
    groups = sparsenorm::bench::GroupRows(indices.data(), count, kRows, threads, first_seen);
    benchmark::DoNotOptimize(groups);
  }
  state.counters["distinct_rows"] = static_cast<double>(groups);
}

void Configure(benchmark::internal::Benchmark* b) {
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

const bool kRegistered = [] {
  for (const std::int64_t count : {std::int64_t{256}, std::int64_t{4096}, kBreakdownBatch}) {
    for (const bool other : {false, true}) {
      Configure(benchmark::RegisterBenchmark(other ? "BM_StepGroupRowsOther" : "BM_StepGroupRows",
                                             BM_StepGroupRows, other)
                    ->ArgNames({"indices"})
                    ->Arg(count));
    }
  }
  for (const Case& c : kCases) {
    const bool breakdown = c.count == kBreakdownBatch;
    auto args = [&](benchmark::internal::Benchmark* b) {
      Configure(b->ArgNames({"D", "indices"})->Args({c.cols, c.count}));
    };
    if (breakdown) args(benchmark::RegisterBenchmark("BM_TouchGradient", BM_TouchGradient));
    for (const Optimizer& o : kOptimizers) {
      const std::string suffix = std::string("/") + o.name;
      args(benchmark::RegisterBenchmark(("BM_Step" + suffix).c_str(), BM_Step, o.kind, Variant::kFused));
      args(benchmark::RegisterBenchmark(("BM_TouchStep" + suffix).c_str(), BM_TouchStep, o.kind));
      args(benchmark::RegisterBenchmark(("BM_StepOtherGrouping" + suffix).c_str(), BM_Step, o.kind,
                                        Variant::kOtherGrouping));
      if (!breakdown) continue;
      args(benchmark::RegisterBenchmark(("BM_StepNoNorm" + suffix).c_str(), BM_Step, o.kind,
                                        Variant::kNoNorm));
      args(benchmark::RegisterBenchmark(("BM_StepUnfused" + suffix).c_str(), BM_Step, o.kind,
                                        Variant::kUnfused));
    }
  }
  return true;
}();

}  // namespace
