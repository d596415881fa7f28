// The split phases of include/sparsenorm/sharded_step.h: the optimizer
// step's front end (core/validate_step.cc) on the slice, then a phase of the
// CPU backend (cpu::OptimizerStepPhase), which groups, checks and sums as
// the whole step does and runs its kernels with the combined row
// statistics in place of the slice's. Parts are made and combined as
// core/sharded.cc makes and combines the row operator's.

#include "sparsenorm/sharded_step.h"

#include <cmath>
#include <new>
#include <vector>

#include "core/messages.h"
#include "core/optim_backend.h"
#include "core/plan.h"
#include "core/sharded_parts.h"
#include "core/status.h"
#include "core/validate.h"

namespace sparsenorm {
namespace detail {
namespace {

// OptimizerStep's checks on the slice and its columns' place, then the
// problem with the row-wise mean over the global columns.
Status PrepareSlice(const Table& slice, const OptimizerState& state, const Indices& indices,
                    const ConstTable& values, const OptimizerOptions& options,
                    const ColumnSlice& columns, StepProblem* problem) {
  if (Status s = PrepareStep(slice, state, &indices, values, options, problem, nullptr); !s.ok()) {
    return s;
  }
  if (options.backend != Backend::kAuto) {
    return Unsupported("options.backend = ", static_cast<int>(options.backend),
                       ": the column-sharded step runs on the CPU kernels only (Backend::kAuto).");
  }
  if (columns.global_cols < slice.cols || columns.col_offset < 0 ||
      columns.col_offset > columns.global_cols - slice.cols) {
    return InvalidArgument("columns.col_offset = ", columns.col_offset, " with a slice of ", slice.cols,
                           " columns does not lie within columns.global_cols = ", columns.global_cols,
                           ": the slice holds global columns [col_offset, col_offset + slice.cols).");
  }
  problem->rule = StepRuleOf(options, columns.global_cols);
  return Status::Ok();
}

// Row-wise Adagrad's combined sums: one per distinct row, none otherwise
// (their count is checked against the rows once they are grouped).
Status CheckSquaresGiven(const OptimizerOptions& options, std::span<const double> squares) {
  if (options.kind != OptimizerKind::kRowWiseAdagrad && !squares.empty()) {
    return InvalidArgument("squares has ", squares.size(),
                           " entries but only row-wise Adagrad combines sums of squares: pass none.");
  }
  return Status::Ok();
}

Status CheckRowCount(const char* name, std::size_t given, const StepPhaseOutput& out) {
  if (given == out.rows.size()) return Status::Ok();
  return InvalidArgument(name, " has ", given, " entries but the index list names ", out.rows.size(),
                         " distinct rows: pass one per distinct row, in ascending row order.");
}

Status RunPhase(const StepProblem& problem, const OptimizerOptions& options, const StepShard& shard,
                StepPhaseOutput* out, RowStats* stats) {
  const Finding f = cpu::OptimizerStepPhase(problem, PlanStep(problem, options.num_threads, Tuning{}),
                                            shard, out, stats);
  return StatusOf(f);
}

StepShard ShardOf(StepPhase phase, const ColumnSlice& columns, std::span<const double> squares) {
  StepShard shard;
  shard.phase = phase;
  shard.global_cols = columns.global_cols;
  shard.col_offset = columns.col_offset;
  // The kernels write only in kSquares, into the output's own buffer.
  shard.squares = squares.empty() ? nullptr : const_cast<double*>(squares.data());
  return shard;
}

}  // namespace

Status ColumnShardedStepSquares(const Table& slice, const OptimizerState& state, const Indices& indices,
                                const ConstTable& values, const OptimizerOptions& options,
                                const ColumnSlice& columns, std::vector<std::int64_t>* rows,
                                std::vector<double>* squares) {
  if (rows == nullptr || squares == nullptr) return InvalidArgument("rows and squares must not be null.");
  StepProblem problem;
  if (Status s = PrepareSlice(slice, state, indices, values, options, columns, &problem); !s.ok()) return s;
  if (options.kind != OptimizerKind::kRowWiseAdagrad) {
    return InvalidArgument("options.kind = ", static_cast<int>(options.kind),
                           ": only row-wise Adagrad (2) has a phase 1; start at ColumnShardedStepParts.");
  }
  StepPhaseOutput out;
  RowStats stats;
  if (Status s = RunPhase(problem, options, ShardOf(StepPhase::kSquares, columns, {}), &out, &stats); !s.ok()) {
    return s;
  }
  *rows = std::move(out.rows);
  *squares = std::move(out.squares);
  return Status::Ok();
}

Status ColumnShardedStepParts(const Table& slice, const OptimizerState& state, const Indices& indices,
                              const ConstTable& values, const OptimizerOptions& options,
                              const ColumnSlice& columns, std::span<const double> squares,
                              std::vector<std::int64_t>* rows, std::vector<NormPart>* parts) {
  if (rows == nullptr || parts == nullptr) return InvalidArgument("rows and parts must not be null.");
  StepProblem problem;
  if (Status s = PrepareSlice(slice, state, indices, values, options, columns, &problem); !s.ok()) return s;
  if (Status s = CheckSquaresGiven(options, squares); !s.ok()) return s;
  const bool row_wise = options.kind == OptimizerKind::kRowWiseAdagrad;
  StepShard shard = ShardOf(StepPhase::kParts, columns, squares);
  if (row_wise) shard.inputs = static_cast<std::int64_t>(squares.size());
  StepPhaseOutput out;
  RowStats stats;
  if (Status s = RunPhase(problem, options, shard, &out, &stats); !s.ok()) return s;
  if (row_wise) {
    if (Status s = CheckRowCount("squares", squares.size(), out); !s.ok()) return s;
  }
  std::vector<NormPart> result(out.norms.size());
  for (std::size_t i = 0; i < result.size(); ++i) result[i] = PartOf(out.norms[i]);
  *rows = std::move(out.rows);
  *parts = std::move(result);
  return Status::Ok();
}

Status ApplyColumnShardedStep(const Table& slice, const OptimizerState& state, const Indices& indices,
                              const ConstTable& values, const OptimizerOptions& options,
                              const ColumnSlice& columns, std::span<const double> squares,
                              std::span<const NormPart> combined, RowStats* stats_out) {
  StepProblem problem;
  if (Status s = PrepareSlice(slice, state, indices, values, options, columns, &problem); !s.ok()) return s;
  if (Status s = CheckSquaresGiven(options, squares); !s.ok()) return s;
  const bool row_wise = options.kind == OptimizerKind::kRowWiseAdagrad;
  if (row_wise && squares.size() != combined.size()) {
    return InvalidArgument("squares has ", squares.size(), " entries but combined has ", combined.size(),
                           ": pass one of each per distinct row.");
  }
  // The combined norms as the kernels take them; a part that is neither
  // NaN nor valid is a caller's mistake, not a row to leave.
  const double p = options.constraint.p;
  std::vector<VectorNorm> norms(combined.size());
  for (std::size_t i = 0; i < combined.size(); ++i) {
    const NormPart& q = combined[i];
    if (Status s = CheckCombinedPart(q, i); !s.ok()) return s;
    const double n = NormOfPart(q, p);
    norms[i] = VectorNorm{std::isnan(n) ? 0.0 : n, !std::isnan(n)};
  }
  StepShard shard = ShardOf(StepPhase::kApply, columns, squares);
  shard.combined = norms.data();
  shard.inputs = static_cast<std::int64_t>(combined.size());
  StepPhaseOutput out;
  RowStats stats;
  if (Status s = RunPhase(problem, options, shard, &out, &stats); !s.ok()) return s;
  // A count that does not match left everything unwritten (the runner only
  // grouped the rows).
  if (Status s = CheckRowCount("combined", combined.size(), out); !s.ok()) return s;
  stats.indices_seen = indices.size;
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

std::uint64_t OptionsDigest(const OptimizerOptions& o) {
  std::uint64_t h = Fold(0x5e9, static_cast<std::uint64_t>(o.kind));
  for (double d : {o.lr, o.eps, o.weight_decay, o.lr_decay, o.beta1, o.beta2, o.constraint.target,
                   o.constraint.p, o.constraint.eps}) {
    h = Fold(h, DoubleWord(d));
  }
  for (std::uint64_t v : {static_cast<std::uint64_t>(o.weight_decay_mode), static_cast<std::uint64_t>(o.caffe2_sign),
                          static_cast<std::uint64_t>(o.step), static_cast<std::uint64_t>(o.constraint.kind),
                          static_cast<std::uint64_t>(o.rounding), o.seed,
                          static_cast<std::uint64_t>(o.non_finite)}) {
    h = Fold(h, v);
  }
  return h;
}

}  // namespace detail

Status ColumnShardedStepSquares(Table slice, const OptimizerState& state, Indices indices,
                                ConstTable values, const OptimizerOptions& options, ColumnSlice columns,
                                std::vector<std::int64_t>* rows, std::vector<double>* squares) noexcept {
  try {
    return detail::ColumnShardedStepSquares(slice, state, indices, values, options, columns, rows, squares);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("the sums of squares of the column-sharded step");
  }
}

Status CombineGatheredSquares(std::span<const double> gathered, int shards,
                              std::vector<double>* combined) noexcept {
  try {
    if (combined == nullptr) return detail::InvalidArgument("combined must not be null.");
    if (shards < 1 || gathered.size() % static_cast<std::size_t>(shards) != 0) {
      return detail::InvalidArgument("gathered has ", gathered.size(), " sums, which is not ", shards,
                                     " shards of equal length (shards must be >= 1).");
    }
    const std::size_t n = gathered.size() / static_cast<std::size_t>(shards);
    combined->resize(n);  // no allocation when its capacity suffices
    for (std::size_t i = 0; i < n; ++i) {
      double s = gathered[i];
      for (std::size_t k = 1; k < static_cast<std::size_t>(shards); ++k) s += gathered[k * n + i];
      (*combined)[i] = s;
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("the combined sums of squares");
  }
}

Status ColumnShardedStepParts(Table slice, const OptimizerState& state, Indices indices, ConstTable values,
                              const OptimizerOptions& options, ColumnSlice columns,
                              std::span<const double> squares, std::vector<std::int64_t>* rows,
                              std::vector<NormPart>* parts) noexcept {
  try {
    return detail::ColumnShardedStepParts(slice, state, indices, values, options, columns, squares, rows, parts);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("the parts of the column-sharded step");
  }
}

Status ApplyColumnShardedStep(Table slice, const OptimizerState& state, Indices indices, ConstTable values,
                              const OptimizerOptions& options, ColumnSlice columns,
                              std::span<const double> squares, std::span<const NormPart> combined,
                              RowStats* stats) noexcept {
  try {
    return detail::ApplyColumnShardedStep(slice, state, indices, values, options, columns, squares, combined,
                                          stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the column-sharded step");
  }
}

std::uint64_t OptionsDigest(const OptimizerOptions& options) noexcept { return detail::OptionsDigest(options); }

}  // namespace sparsenorm
