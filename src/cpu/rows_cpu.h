// Inside the CPU backend of the row operator: the per-target kernels of
// rows_kernels.cc, reached through Highway's run-time dispatch, and what
// rows.cc (which runs a call) hands them.
#ifndef SPARSENORM_CPU_ROWS_CPU_H_
#define SPARSENORM_CPU_ROWS_CPU_H_

#include <cstddef>
#include <cstdint>

#include "common/decision.h"
#include "core/rows_backend.h"

namespace sparsenorm::cpu {

// A validated call (core/rows_backend.h) with its deduplication structure.
struct RowJob : RowsProblem {
  // RowBitmap's words and summary. The in-place scan clears what it
  // collects; the out-of-place one only reads the words.
  std::uint64_t* marks = nullptr;
  std::uint64_t* summary = nullptr;
  const std::uint8_t* owner = nullptr;   // RowClaimSet::ClaimAll's flags, for OwnedRowsInPlace
  std::int64_t prefetch_rows = 4;        // how far ahead rows are prefetched
};

struct RowCounts {
  std::int64_t distinct = 0;
  std::int64_t scaled = 0;
  std::int64_t nonfinite = 0;
};

// In place: the marked rows under summary words [summary_begin,
// summary_end) (rows 4096 * summary_begin to 4096 * summary_end), found
// through the summary; their words and summary words are cleared.
void MarkedRowsInPlace(const RowJob& job, std::int64_t summary_begin, std::int64_t summary_end,
                       RowCounts* counts);

// Out of place: rows [row_begin, row_end), marked ones normalized, others copied.
void AllRowsOutOfPlace(const RowJob& job, std::int64_t row_begin, std::int64_t row_end,
                       RowCounts* counts);

// In place: the rows named at the positions [begin, end) of the index list
// whose owner flag is set (one position per distinct row).
void OwnedRowsInPlace(const RowJob& job, std::int64_t begin, std::int64_t end,
                      RowCounts* counts);

// Rows of one table named by a list, for the split-phase calls on a
// sharded table (core/sharded.cc): each call dispatches once for the whole
// list and prefetches the rows ahead, as the row operator's kernels do.
struct RowList {
  unsigned char* base = nullptr;
  DType dtype = DType::kFloat32;
  std::int64_t stride_bytes = 0;
  std::int64_t cols = 0;
  const std::int64_t* rows = nullptr;
  std::int64_t count = 0;
  std::int64_t prefetch_rows = 4;
};

// The marked rows of a RowBitmap (its words and summary) as row numbers,
// ascending, into rows[] (`capacity` entries, at least 64 more than there
// are bits set); returns their count. Clears the words and the summary as
// it collects them, as the in-place kernel does (RowBitmap::SetCleared).
std::int64_t MarkedRows(std::uint64_t* words, std::uint64_t* summary, std::int64_t summary_count,
                        std::int64_t* rows, std::int64_t capacity);

// out[i] = the norm of row rows[i], as the row operator computes it.
void NormsOfRows(const RowList& list, double p, VectorNorm* out);

// Row rows[i] scaled by scales[i] where that scale's action is kScale, as
// the row operator scales.
void ScaleRows(const RowList& list, const Scale* scales);

// The first position in [begin, end) whose row (in job.in) holds NaN or
// infinity, or -1.
std::int64_t FirstNonFinitePosition(const RowJob& job, std::int64_t begin, std::int64_t end);

// The name of the SIMD target the dispatcher picks on this CPU.
const char* DispatchedTargetName();

// For the tests: one vector through the dispatched kernels.
VectorNorm NormOfVector(DType dtype, const void* x, std::size_t n, double p);
void ScaleVector(DType dtype, const void* in, void* out, std::size_t n, double scale);
// A narrow dtype widened to float32 and float32 rounded to it, through the
// target's SIMD conversions or, with lane_by_lane, through the fallback any
// storage type without SIMD conversions takes (vector_math-inl.h).
// n: a multiple of 16.
void WidenVector(DType dtype, const void* in, float* out, std::size_t n, bool lane_by_lane);
void NarrowVector(DType dtype, const float* in, void* out, std::size_t n, bool lane_by_lane);

}  // namespace sparsenorm::cpu

#endif  // SPARSENORM_CPU_ROWS_CPU_H_
