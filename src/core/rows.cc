// Front end of the row operator: validates everything, chooses how to
// deduplicate, splits the work over threads and hands slices to a backend.
//
// Order of work, so that a rejected call writes nothing:
//   1. options, table layout(s), index list shape;
//   2. every index value (fused with marking the row bitmap when one is used);
//   3. under NonFinitePolicy::kError, every indexed row's finiteness;
//   4. only then the rows are written.

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "core/parallel.h"
#include "core/row_set.h"
#include "core/validate.h"
#include "cpu/rows_cpu.h"
#include "reference/reference.h"
#include "sparsenorm/rows.h"

namespace sparsenorm {
namespace {

using detail::RowOperands;

Status CheckArguments(const ConstTable& in, const Table& out, const Indices& indices,
                      const NormalizeOptions& options, bool out_of_place, RowOperands* prep) {
  if (Status s = detail::ValidateOptions(options); !s.ok()) return s;
  return detail::CheckRowOperands(in, out, indices, out_of_place, prep);
}

cpu::RowJob MakeJob(const ConstTable& in, const Table& out, const Indices& indices,
                    const NormalizeOptions& options, const RowOperands& prep) {
  cpu::RowJob job;
  job.in = static_cast<const unsigned char*>(in.data);
  job.out = static_cast<unsigned char*>(out.data);
  const auto element = static_cast<std::int64_t>(prep.out_layout.element_size);
  job.in_stride_bytes = prep.in_layout.stride * element;
  job.out_stride_bytes = prep.out_layout.stride * element;
  job.rows = out.rows;
  job.cols = out.cols;
  job.dtype = out.dtype;
  job.row_bytes = out.cols * element;
  job.indices = indices.data;
  job.index_type = indices.type;
  job.kind = detail::KindOf(options.p);
  job.options = options;
  // About 4 KiB of rows in flight per thread: enough to cover memory latency
  // at the per-core bandwidth of current servers, at least two rows.
  job.prefetch_rows = std::clamp<std::int64_t>(4096 / std::max<std::int64_t>(job.row_bytes, 1), 2, 16);
  return job;
}

void Accumulate(const std::vector<cpu::RowCounts>& per_thread, RowStats* stats) {
  for (const cpu::RowCounts& c : per_thread) {
    stats->distinct_rows += c.distinct;
    stats->rows_scaled += c.scaled;
    stats->nonfinite_rows += c.nonfinite;
  }
}

Status NonFiniteError(const cpu::RowJob& job, std::int64_t position) {
  return Status(StatusCode::kNonFinite,
                detail::StrCat("row ", detail::IndexAt(job.indices, job.index_type, position),
                               " (indices[", position,
                               "]) holds NaN or infinity and options.non_finite is kError; "
                               "nothing was modified."));
}

// Step 3: with NonFinitePolicy::kError, find the first index whose row is not
// finite before anything is written.
Status CheckFinite(const cpu::RowJob& job, std::int64_t num_indices, int threads) {
  if (job.options.non_finite != NonFinitePolicy::kError || job.cols == 0) return Status::Ok();
  std::vector<std::int64_t> first(static_cast<std::size_t>(std::max(threads, 1)), -1);
  detail::ParallelFor(threads, num_indices, [&](std::int64_t b, std::int64_t e, int t) {
    first[t] = cpu::FirstNonFinitePosition(job, b, e);
  });
  for (std::int64_t f : first) {
    if (f >= 0) return NonFiniteError(job, f);
  }
  return Status::Ok();
}

Status RunReference(const ConstTable& in, const Table& out, const Indices& indices,
                    const NormalizeOptions& options, const RowOperands& prep, RowStats* stats) {
  const std::int64_t bad = detail::FirstInvalidIndex(indices.data, indices.type, indices.size,
                                                     out.rows, 1);
  if (bad >= 0) {
    return detail::IndexOutOfRange("indices", bad,
                                   detail::IndexAt(indices.data, indices.type, bad), out.rows,
                                   "table row");
  }
  const cpu::RowJob job = MakeJob(in, out, indices, options, prep);
  if (options.non_finite == NonFinitePolicy::kError) {
    const std::int64_t f = reference::FirstNonFiniteRow(in, indices);
    if (f >= 0) return NonFiniteError(job, f);
  }
  if (!prep.in_place) reference::CopyTable(in, out);
  *stats = reference::NormalizeRows(out, indices, options);
  return Status::Ok();
}

Status Run(const ConstTable& in, const Table& out, const Indices& indices,
           const NormalizeOptions& options, bool out_of_place, RowStats* stats_out) {
  RowOperands prep;
  if (Status s = CheckArguments(in, out, indices, options, out_of_place, &prep); !s.ok()) return s;

  RowStats stats;
  stats.indices_seen = indices.size;
  if (options.backend == Backend::kReference || detail::EnvironmentForcesReference()) {
    Status s = RunReference(in, out, indices, options, prep, &stats);
    if (s.ok() && stats_out != nullptr) {
      stats.indices_seen = indices.size;
      *stats_out = stats;
    }
    return s;
  }

  cpu::RowJob job = MakeJob(in, out, indices, options, prep);
  const std::int64_t n = indices.size;
  if (n == 0 && prep.in_place) {
    if (stats_out != nullptr) *stats_out = stats;
    return Status::Ok();
  }
  const std::int64_t rows = out.rows;
  // ~64 bytes of work per index when validating or marking.
  const int index_threads = detail::ThreadsFor(options.num_threads, n * 64);
  const bool use_bitmap = !prep.in_place || detail::PreferBitmap(rows, n);

  detail::RowBitmap bitmap;
  detail::RowClaimSet claims;
  std::unique_ptr<std::uint8_t[]> owner;
  if (use_bitmap) {
    if (!bitmap.Init(rows)) return detail::OutOfMemory("the row bitmap");
    const std::int64_t bad = bitmap.MarkAll(indices.data, indices.type, n, index_threads);
    if (bad >= 0) {
      return detail::IndexOutOfRange("indices", bad, detail::IndexAt(indices.data, indices.type, bad),
                                     rows, "table row");
    }
    job.marks = bitmap.words();
  } else {
    owner.reset(new (std::nothrow) std::uint8_t[static_cast<std::size_t>(n)]);
    if (!claims.Init(n) || !owner) return detail::OutOfMemory("the row claim set");
    const std::int64_t bad = claims.ClaimAll(indices.data, indices.type, n, rows, owner.get(), index_threads);
    if (bad >= 0) {
      return detail::IndexOutOfRange("indices", bad, detail::IndexAt(indices.data, indices.type, bad),
                                     rows, "table row");
    }
    job.owner = owner.get();
  }

  const int row_threads = detail::ThreadsFor(
      options.num_threads, (prep.in_place ? n : rows) * std::max<std::int64_t>(job.row_bytes, 1));
  if (Status s = CheckFinite(job, n, row_threads); !s.ok()) return s;

  std::vector<cpu::RowCounts> counts(static_cast<std::size_t>(std::max(row_threads, 1)));
  if (!prep.in_place) {
    // Whole words per chunk, so no two threads' chunks share a bitmap word
    // (they only read it, but the chunking stays simple to reason about).
    detail::ParallelForDynamic(row_threads, rows, 4096,
                               [&](std::int64_t b, std::int64_t e, int t) {
                                 cpu::AllRowsOutOfPlace(job, b, e, &counts[t]);
                               });
  } else if (use_bitmap) {
    // About eight chunks per thread: enough to even out skewed index lists,
    // few enough that restarting the prefetch at each chunk costs nothing.
    const std::int64_t grain = std::max<std::int64_t>(16, bitmap.word_count() / (8 * row_threads));
    detail::ParallelForDynamic(row_threads, bitmap.word_count(), grain,
                               [&](std::int64_t b, std::int64_t e, int t) {
                                 cpu::MarkedRowsInPlace(job, b, e, &counts[t]);
                               });
  } else {
    detail::ParallelFor(row_threads, n, [&](std::int64_t b, std::int64_t e, int t) {
      cpu::OwnedRowsInPlace(job, b, e, &counts[t]);
    });
  }
  Accumulate(counts, &stats);
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

}  // namespace

Status NormalizeRows(Table table, Indices indices, const NormalizeOptions& options,
                     RowStats* stats) noexcept {
  try {
    return Run(ConstTable(table), table, indices, options, /*out_of_place=*/false, stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the row operator");
  }
}

Status NormalizeRows(ConstTable input, Table output, Indices indices,
                     const NormalizeOptions& options, RowStats* stats) noexcept {
  try {
    return Run(input, output, indices, options, /*out_of_place=*/true, stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the row operator");
  }
}

int DefaultThreadCount() noexcept { return detail::MaxThreads(); }

const char* ActiveSimdTarget() noexcept { return cpu::DispatchedTargetName(); }

}  // namespace sparsenorm
