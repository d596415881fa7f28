// Front end of the optimizer step on host memory: validate
// (core/validate_step.cc), plan, run on the CPU or the reference backend,
// turn what the backend found into a Status. Also the options' factories
// and SparseOptimizer, which owns its state.

#include <algorithm>
#include <cstdint>
#include <new>
#include <span>
#include <tuple>
#include <vector>

#include "core/entry.h"
#include "core/messages.h"
#include "core/optim_backend.h"
#include "core/plan.h"
#include "core/status.h"
#include "core/validate.h"
#include "sparsenorm/optim.h"

namespace sparsenorm {

static_assert(kRepeatGroup == kRepeatGroupSize, "one repeat group size for the contract and the kernels");
static_assert(static_cast<int>(OptimizerKind::kAdam) == static_cast<int>(StepKind::kAdam) &&
                  static_cast<int>(OptimizerKind::kRowWiseAdagrad) == static_cast<int>(StepKind::kRowWiseAdagrad) &&
                  static_cast<int>(OptimizerKind::kAdagrad) == static_cast<int>(StepKind::kAdagrad) &&
                  static_cast<int>(WeightDecayMode::kDecoupled) == static_cast<int>(DecayKind::kDecoupled) &&
                  static_cast<int>(WeightDecayMode::kL2) == static_cast<int>(DecayKind::kL2),
              "the device-side mirrors of the public enumerations");

namespace detail {

Status OptimizerStep(const Table& table, const OptimizerState& state, const Indices* indices,
                     const ConstTable& gradient, const OptimizerOptions& options,
                     const Tuning& tuning, RowStats* stats_out) {
  StepProblem problem;
  if (Status s = PrepareStep(table, state, indices, gradient, options, &problem, nullptr);
      !s.ok()) {
    return s;
  }
  RowStats stats;
  const Finding finding =
      UseReference(options.backend)
          ? reference::OptimizerStep(problem, &stats)
          : cpu::OptimizerStep(problem, PlanStep(problem, options.num_threads, tuning), &stats);
  if (finding) return StatusOf(finding);
  stats.indices_seen = problem.num_indices;
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

namespace {

// A byte range that an entry of a many-table call writes or reads; `part`
// orders an entry's ranges for the message (table, state, gradient, indices).
struct Extent {
  std::uintptr_t begin, end;
  std::int64_t entry;
  int part;
  const char* name;
  bool written;
};

// No entry may write memory that another entry writes or reads (an entry's
// own ranges were checked by PrepareStep). Sorted by address, a range can
// only overlap the ranges after it that begin before it ends. Of all the
// conflicts the one of the first entries (and parts) is named, so that the
// message does not depend on where the allocator put the arrays.
Status CheckSharedMemory(std::vector<Extent> extents) {
  std::sort(extents.begin(), extents.end(), [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
  auto key = [](const Extent& a, const Extent& b) { return std::make_tuple(a.entry, b.entry, a.part, b.part); };
  const Extent* first_a = nullptr;
  const Extent* first_b = nullptr;
  for (std::size_t i = 0; i < extents.size(); ++i) {
    for (std::size_t j = i + 1; j < extents.size() && extents[j].begin < extents[i].end; ++j) {
      const bool ordered = std::tie(extents[i].entry, extents[i].part) <= std::tie(extents[j].entry, extents[j].part);
      const Extent& a = ordered ? extents[i] : extents[j];
      const Extent& b = ordered ? extents[j] : extents[i];
      if (a.entry == b.entry || !(a.written || b.written)) continue;
      if (first_a == nullptr || key(a, b) < key(*first_a, *first_b)) {
        first_a = &a;
        first_b = &b;
      }
    }
  }
  if (first_a == nullptr) return Status::Ok();
  return InvalidArgument("entries[", first_a->entry, "].", first_a->name, " and entries[", first_b->entry, "].",
                         first_b->name, " share memory: a table or state table of one entry may not be "
                         "memory that another entry reads or writes.");
}

}  // namespace

Status OptimizerStepMany(std::span<const StepBatchEntry> entries, std::span<RowStats> stats_out,
                         const Tuning& tuning) {
  const auto count = static_cast<std::int64_t>(entries.size());
  if (!stats_out.empty() && stats_out.size() != entries.size()) {
    return InvalidArgument("stats has ", stats_out.size(), " elements but there are ", count,
                           " entries: pass one RowStats per entry, or none.");
  }
  std::vector<StepProblem> problems(entries.size());
  std::vector<StepPlan> plans(entries.size());
  std::vector<Extent> extents;
  extents.reserve(entries.size() * 5);
  for (std::int64_t k = 0; k < count; ++k) {
    const StepBatchEntry& e = entries[static_cast<std::size_t>(k)];
    StepExtents x;
    if (Status s = PrepareStep(e.table, e.state, e.dense ? nullptr : &e.indices, e.values, e.options,
                               &problems[k], &x);
        !s.ok()) {
      return Status(s.code(), StrCat("entries[", k, "]: ", s.message()));
    }
    const OptimizerOptions& first = entries[0].options;
    if (e.options.num_threads != first.num_threads || e.options.backend != first.backend) {
      return InvalidArgument("entries[", k, "].options has num_threads = ", e.options.num_threads,
                             " and backend = ", static_cast<int>(e.options.backend),
                             " but entries[0].options has ", first.num_threads, " and ",
                             static_cast<int>(first.backend),
                             ": one call runs on one thread count and one backend.");
    }
    const StepProblem& p = problems[k];
    plans[k] = PlanStep(p, first.num_threads, tuning);
    auto add = [&](const void* data, std::int64_t bytes, int part, const char* name, bool written) {
      if (bytes <= 0) return;
      const auto begin = reinterpret_cast<std::uintptr_t>(data);
      extents.push_back({begin, begin + static_cast<std::uintptr_t>(bytes), k, part, name, written});
    };
    add(p.table.data, x.table_bytes, 0, "table", true);
    add(p.state[0].data, x.state_bytes[0], 1, e.options.kind == OptimizerKind::kAdam ? "state.exp_avg" : "state.sum", true);
    add(p.state[1].data, x.state_bytes[1], 2, "state.exp_avg_sq", true);
    add(p.grad, x.grad_bytes, 3, e.dense ? "gradient" : "values", false);
    add(p.indices, x.index_bytes, 4, "indices", false);
  }
  if (Status s = CheckSharedMemory(std::move(extents)); !s.ok()) return s;

  std::vector<RowStats> stats(entries.size());
  const bool reference = count > 0 && UseReference(entries[0].options.backend);
  // The thread count from the work of all the tables together.
  std::int64_t work = 0;
  for (const StepProblem& p : problems) work += StepWorkBytes(p, tuning);
  const int threads = ThreadsFor(count > 0 ? entries[0].options.num_threads : 0, work, tuning.bytes_per_thread);
  const BatchFinding found = reference ? reference::OptimizerStepMany(problems.data(), count, stats.data())
                                       : cpu::OptimizerStepMany(problems.data(), plans.data(), count, threads, stats.data());
  if (found) {
    const Status s = StatusOf(found.finding);
    return Status(s.code(), StrCat("entries[", found.table, "]: ", s.message()));
  }
  for (std::int64_t k = 0; k < count; ++k) {
    stats[k].indices_seen = problems[k].num_indices;
    if (!stats_out.empty()) stats_out[static_cast<std::size_t>(k)] = stats[k];
  }
  return Status::Ok();
}

namespace {

Status StepOutOfMemory() { return OutOfMemory("scratch memory for the optimizer step"); }

}  // namespace
}  // namespace detail

Status OptimizerStepMany(std::span<const StepBatchEntry> entries, std::span<RowStats> stats) noexcept {
  try {
    return detail::OptimizerStepMany(entries, stats, Tuning{});
  } catch (const std::bad_alloc&) {
    return detail::StepOutOfMemory();
  }
}

Status OptimizerStep(Table table, const OptimizerState& state, Indices indices, ConstTable values,
                     const OptimizerOptions& options, RowStats* stats) noexcept {
  try {
    return detail::OptimizerStep(table, state, &indices, values, options, Tuning{}, stats);
  } catch (const std::bad_alloc&) {
    return detail::StepOutOfMemory();
  }
}

Status OptimizerStepDense(Table table, const OptimizerState& state, ConstTable gradient,
                          const OptimizerOptions& options, RowStats* stats) noexcept {
  try {
    return detail::OptimizerStep(table, state, nullptr, gradient, options, Tuning{}, stats);
  } catch (const std::bad_alloc&) {
    return detail::StepOutOfMemory();
  }
}

// ---------------------------------------------------------------------------
// Factories.

OptimizerOptions SgdOptions(double lr, double weight_decay) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kSGD;
  o.lr = lr;
  o.weight_decay = weight_decay;
  return o;
}

OptimizerOptions AdagradOptions(double lr, double lr_decay, double weight_decay, double eps) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kAdagrad;
  o.lr = lr;
  o.lr_decay = lr_decay;
  o.weight_decay = weight_decay;
  o.eps = eps;
  return o;
}

OptimizerOptions RowWiseAdagradOptions(double lr, double eps, double weight_decay,
                                       WeightDecayMode weight_decay_mode) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kRowWiseAdagrad;
  o.lr = lr;
  o.eps = eps;
  o.weight_decay = weight_decay;
  o.weight_decay_mode = weight_decay_mode;
  return o;
}

OptimizerOptions AdamOptions(double lr, double beta1, double beta2, double eps) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kAdam;
  o.lr = lr;
  o.beta1 = beta1;
  o.beta2 = beta2;
  o.eps = eps;
  return o;
}

OptimizerOptions Caffe2SparseAdagradOptions(double lr, double epsilon, double weight_decay) {
  OptimizerOptions o = AdagradOptions(lr, 0.0, weight_decay, epsilon);
  o.caffe2_sign = true;
  return o;
}

// ---------------------------------------------------------------------------
// SparseOptimizer.

Status SparseOptimizer::Create(Table table, const OptimizerOptions& options,
                               std::unique_ptr<SparseOptimizer>* out) noexcept {
  try {
    if (Status s = detail::CheckLayout(table.data, table.dtype, table.rows, table.cols,
                                       table.row_stride, "table", nullptr);
        !s.ok()) {
      return s;
    }
    if (Status s = detail::ValidateStepOptions(options, table.dtype); !s.ok()) return s;
    std::unique_ptr<SparseOptimizer> o(new SparseOptimizer(table, options));
    const int count = detail::StateTableCount(options.kind);
    const std::int64_t cols = detail::StateCols(options.kind, table.cols);
    const bool wide = table.dtype == DType::kFloat64;
    const DType dtype = wide ? DType::kFloat64 : DType::kFloat32;
    const std::int64_t elements = table.rows * cols;
    const std::int64_t bytes = elements * (wide ? 8 : 4);
    // Zero bytes are zero values; operator new aligns to 16 bytes.
    o->storage_.assign(static_cast<std::size_t>(bytes * count), 0);
    const double initial = options.kind == OptimizerKind::kAdagrad ||
                                   options.kind == OptimizerKind::kRowWiseAdagrad
                               ? options.initial_accumulator_value
                               : 0.0;
    Table* slots[2] = {options.kind == OptimizerKind::kAdam ? &o->state_.exp_avg : &o->state_.sum,
                       &o->state_.exp_avg_sq};
    for (int i = 0; i < count; ++i) {
      unsigned char* base = o->storage_.data() + i * bytes;
      *slots[i] = Table{base, dtype, table.rows, cols, 0};
      if (initial == 0.0) continue;
      if (wide) {
        std::fill_n(reinterpret_cast<double*>(base), elements, initial);
      } else {
        std::fill_n(reinterpret_cast<float*>(base), elements, static_cast<float>(initial));
      }
    }
    *out = std::move(o);
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("the optimizer's state tables");
  }
}

Status SparseOptimizer::Step(Indices indices, ConstTable values, RowStats* stats) noexcept {
  options_.step = steps_ + 1;
  Status s = OptimizerStep(table_, state_, indices, values, options_, stats);
  if (s.ok()) ++steps_;
  return s;
}

Status SparseOptimizer::StepDense(ConstTable gradient, RowStats* stats) noexcept {
  options_.step = steps_ + 1;
  Status s = OptimizerStepDense(table_, state_, gradient, options_, stats);
  if (s.ok()) ++steps_;
  return s;
}

}  // namespace sparsenorm
