// sparsenorm/mpi.h: the optimizer step on a table sharded by columns,
// through MPI: the split phases of sparsenorm/sharded_step.h with the
// agreement and exchanges of mpi/protocol.h between them.

#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <span>
#include <vector>

#include "mpi/protocol.h"
#include "sparsenorm/mpi.h"
#include "sparsenorm/sharded_step.h"

namespace sparsenorm::mpi {
namespace {

using namespace detail;  // the protocol's steps

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Where this rank's columns lie: the blocks tile the global columns in rank
// order, so its first column is the lower ranks' column count.
Status Columns(const Comm& c, const std::vector<std::int64_t>& all, ColumnSlice* out) {
  std::int64_t total = 0;
  for (int k = 0; k < c.size; ++k) {
    const std::int64_t cols = all[static_cast<std::size_t>(k) * kFields + kCols];
    if (cols > std::numeric_limits<std::int64_t>::max() - total) {
      return Status(StatusCode::kInvalidArgument, "the ranks' column counts overflow 64 bits.");
    }
    if (k == c.rank) out->col_offset = total;
    total += cols;
  }
  out->global_cols = total;
  return Status::Ok();
}

Status ColumnShardedStep(MPI_Comm comm, Table slice, const OptimizerState& state, Indices indices,
                         ConstTable values, const OptimizerOptions& options, RowStats* stats_out) {
  Comm c;
  if (Status s = Open(comm, &c); !s.ok()) return s;
  const bool row_wise = options.kind == OptimizerKind::kRowWiseAdagrad;

  // Local work first: the checks and the first phase (row-wise Adagrad's
  // sums of squares, else the parts), and every buffer of the exchanges.
  // The first phase does not depend on where the slice lies (the offset
  // keys the stochastic rounding of the last phase, the global column count
  // is row-wise Adagrad's divisor in the later phases), so it runs before
  // the ranks have agreed on the columns.
  const ColumnSlice alone{0, slice.cols};
  std::vector<std::int64_t> rows;
  std::vector<double> squares;
  std::vector<NormPart> parts;
  Exchange<double> square_exchange;
  Exchange<NormPart> part_exchange;
  Status local = row_wise ? ColumnShardedStepSquares(slice, state, indices, values, options, alone, &rows, &squares)
                          : ColumnShardedStepParts(slice, state, indices, values, options, alone, {}, &rows, &parts);
  const char* too_many =
      " distinct rows in one call exceed what one MPI collective of int counts carries; split the index list.";
  // One part more than the rows: a flag that the second phase failed on this
  // rank (row-wise Adagrad), so that every rank learns it from the exchange.
  if (local.ok()) local = part_exchange.Reserve(c, rows.size() + 1, too_many);
  if (local.ok() && row_wise) local = square_exchange.Reserve(c, rows.size(), too_many);
  if (local.ok()) {
    try {
      parts.reserve(rows.size() + 1);
    } catch (const std::bad_alloc&) {
      local = Status(StatusCode::kOutOfMemory, "could not allocate the parts of the column-sharded step.");
    }
  }
  Header mine{};
  mine[kStatusCode] = static_cast<std::int64_t>(local.code());
  mine[kDType] = static_cast<std::int64_t>(slice.dtype);
  mine[kGradDType] = static_cast<std::int64_t>(values.dtype);
  mine[kRows] = slice.rows;
  mine[kCols] = slice.cols;
  mine[kCount] = indices.size;
  mine[kIndexDigest] = static_cast<std::int64_t>(IndexListDigest(indices));
  mine[kStepOptionsDigest] = static_cast<std::int64_t>(OptionsDigest(options));
  mine[kDistinct] = static_cast<std::int64_t>(rows.size());
  std::vector<std::int64_t> all;
  if (Status s = Agree(c, mine, local,
                       {kStepOptionsDigest, kDType, kGradDType, kRows, kCount, kIndexDigest, kDistinct}, &all);
      !s.ok()) {
    return s;
  }
  ColumnSlice columns;
  if (Status s = Columns(c, all, &columns); !s.ok()) return s;

  // Row-wise Adagrad: the sums of squares combined in rank order, then this
  // slice's parts under the combined sums.
  std::span<const double> combined_squares;
  if (row_wise) {
    if (Status s = CombineEverywhere(c, squares, CombineGatheredSquares, &square_exchange); !s.ok()) return s;
    combined_squares = square_exchange.combined;
    std::vector<std::int64_t> again;
    std::vector<NormPart> second;
    local = ColumnShardedStepParts(slice, state, indices, values, options, columns, combined_squares, &again,
                                   &second);
    // Into the buffer reserved before the agreement: nothing to allocate.
    if (local.ok()) {
      parts.assign(second.begin(), second.end());
    } else {
      parts.assign(rows.size(), NormPart{});
    }
  }
  parts.push_back(NormPart{local.ok() ? 0.0 : kNaN, 0.0});
  if (Status s = CombineEverywhere(c, parts, options.constraint.p, &part_exchange); !s.ok()) return s;
  std::vector<NormPart>& combined = part_exchange.combined;
  if (std::isnan(combined.back().scale)) {
    return Status(local.ok() ? StatusCode::kOutOfMemory : local.code(),
                  Cat("the parts of the column-sharded step could not be made on some rank",
                      local.ok() ? "" : Cat(" (this one: ", local.message(), ")"), "; nothing was modified on any rank."));
  }
  combined.pop_back();

  // Every rank holds the same rows and the same combined bits, so every
  // rank leaves and scales the same rows.
  return ApplyColumnShardedStep(slice, state, indices, values, options, columns, combined_squares, combined,
                                stats_out);
}

}  // namespace

Status ColumnShardedOptimizerStep(MPI_Comm comm, Table slice, const OptimizerState& state, Indices indices,
                                  ConstTable values, const OptimizerOptions& options, RowStats* stats) noexcept {
  try {
    return ColumnShardedStep(comm, slice, state, indices, values, options, stats);
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, "could not allocate the column-sharded step's buffers.");
  }
}

}  // namespace sparsenorm::mpi
