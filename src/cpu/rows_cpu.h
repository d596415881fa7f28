// The CPU backend of the row operator: the per-target kernels of
// rows_kernels.cc, reached through Highway's run-time dispatch.
#ifndef SPARSENORM_CPU_ROWS_CPU_H_
#define SPARSENORM_CPU_ROWS_CPU_H_

#include <cstddef>
#include <cstdint>

#include "core/plan.h"
#include "core/row_set.h"
#include "sparsenorm/types.h"

namespace sparsenorm::cpu {

// Everything a kernel needs to know about one call; built and validated by
// the front end (src/core/rows.cc).
struct RowJob {
  const unsigned char* in = nullptr;  // row r starts at in + r * in_stride_bytes
  unsigned char* out = nullptr;       // equal to `in` for the in-place operator
  std::int64_t in_stride_bytes = 0;
  std::int64_t out_stride_bytes = 0;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  DType dtype = DType::kFloat32;
  std::int64_t row_bytes = 0;  // cols * element size

  const void* indices = nullptr;
  IndexType index_type = IndexType::kInt64;

  detail::NormKind kind = detail::NormKind::kL2;
  NormalizeOptions options;

  const std::uint64_t* marks = nullptr;  // RowBitmap words, for the scans
  const std::uint8_t* owner = nullptr;   // RowClaimSet::ClaimAll's flags, for OwnedRowsInPlace
  std::int64_t prefetch_rows = 4;          // how far ahead rows are prefetched
};

struct RowCounts {
  std::int64_t distinct = 0;
  std::int64_t scaled = 0;
  std::int64_t nonfinite = 0;
};

// In place: the marked rows whose bits lie in words [word_begin, word_end).
void MarkedRowsInPlace(const RowJob& job, std::int64_t word_begin, std::int64_t word_end,
                       RowCounts* counts);

// Out of place: rows [row_begin, row_end), marked ones normalized, others copied.
void AllRowsOutOfPlace(const RowJob& job, std::int64_t row_begin, std::int64_t row_end,
                       RowCounts* counts);

// In place: the rows named at the positions [begin, end) of the index list
// whose owner flag is set (one position per distinct row).
void OwnedRowsInPlace(const RowJob& job, std::int64_t begin, std::int64_t end,
                      RowCounts* counts);

// The first position in [begin, end) whose row (in job.in) holds NaN or
// infinity, or -1.
std::int64_t FirstNonFinitePosition(const RowJob& job, std::int64_t begin, std::int64_t end);

// The name of the SIMD target the dispatcher picks on this CPU.
const char* DispatchedTargetName();

// Test hooks: one vector through the dispatched kernels.
detail::VectorNorm NormOfVector(DType dtype, const void* x, std::size_t n, double p);
void ScaleVector(DType dtype, const void* in, void* out, std::size_t n, double scale);

}  // namespace sparsenorm::cpu

#endif  // SPARSENORM_CPU_ROWS_CPU_H_
