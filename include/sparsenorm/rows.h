// The indexed-row operator: renormalize the rows of a table named by a list
// of indices, in place or into a separate output table.
//
// Contract (in place):
//
//   for each distinct r in indices:            // repeats are processed once
//     x = table[r, 0:cols]
//     n = ||x||_p                              // p = 2 by default
//     if x holds NaN or +-inf:   leave x; count it (or fail, NonFinitePolicy::kError)
//     elif n == 0:               leave x
//     elif mode == kMaxNorm and n <= target:   leave x
//     else:                      x[k] = round(x[k] * s),  s = target / (n + eps)
//
// Numerics:
//   - float32, float16 and bfloat16 tables: the elements are widened to
//     float32 and the p = 1 and p = 2 sums are accumulated in float32; p = inf
//     is exact. Sums that overflow or underflow float32 (values near the ends
//     of the float32 range) are recomputed in float64 after dividing by
//     max |x|, so the norm is right for every finite row. Other p are computed
//     in float64 with the same scaling. float64 tables use float64 throughout,
//     with the same fallback.
//   - s is evaluated in float64 and rounded to float32 (float64 tables keep
//     it in float64); where it falls outside float32's normal range it stays
//     in float64.
//   - each stored element is the exact product x[k] * s rounded once to the
//     storage type, to nearest, ties to even.
//   - the result is bit-for-bit independent of the order of the indices, of
//     repeats, and of the thread count. It may differ in the last bit between
//     SIMD instruction sets (the lane count changes the summation order).
//
// Errors (nothing is written when a call fails):
//   kOutOfRange       an index < 0 or >= rows (the message names its position)
//   kInvalidArgument  target < 0 or NaN or infinite, eps < 0 or not finite,
//                     p <= 0 or NaN, a null pointer with a non-zero size,
//                     negative sizes, row_stride < cols, byte sizes that
//                     overflow 64 bits, num_threads < 0, in/out shapes that
//                     differ or overlapping in/out memory
//   kUnsupported      a dtype or index type outside the enumerations
//   kNonFinite        a NaN/inf row under NonFinitePolicy::kError
//   kOutOfMemory      scratch memory could not be allocated
//
// Scratch memory: one bit per table row, or, when the table is much larger
// than the index list, a hash set of 8 to 16 bytes per index.
#ifndef SPARSENORM_ROWS_H_
#define SPARSENORM_ROWS_H_

#include <span>

#include "sparsenorm/export.h"
#include "sparsenorm/types.h"

namespace sparsenorm {

// In place: the indexed rows of `table` are renormalized.
SPARSENORM_API Status NormalizeRows(Table table, Indices indices,
                                    const NormalizeOptions& options = {},
                                    RowStats* stats = nullptr) noexcept;

// Out of place: every row of `input` is written to `output` (same shape and
// dtype; strides may differ), the indexed rows normalized. `output` may be
// the very same memory as `input` (then this is the in-place call), but may
// not otherwise overlap it.
SPARSENORM_API Status NormalizeRows(ConstTable input, Table output, Indices indices,
                                    const NormalizeOptions& options = {},
                                    RowStats* stats = nullptr) noexcept;

// One table of NormalizeRowsMany.
struct RowsBatchEntry {
  Table table;
  Indices indices;
  NormalizeOptions options;
};

// In place, the indexed rows of every table of the list, each with its own
// dtype, shape and options, in one call. Everything is checked before
// anything is written: each entry's options, layout and indices, every
// indexed row under NonFinitePolicy::kError, and that no two tables share
// memory (the same table named twice is an error too). When an entry is bad,
// nothing in any table changes and the message starts with "entries[k]: ".
// Then the rows of all the tables go to the threads as one piece of work,
// balanced across tables. options.num_threads and options.backend must be
// the same in every entry. `stats`, when not empty, has one element per
// entry and receives each table's statistics.
SPARSENORM_API Status NormalizeRowsMany(std::span<const RowsBatchEntry> entries,
                                        std::span<RowStats> stats = {}) noexcept;

// The thread count a call with options.num_threads == 0 uses.
SPARSENORM_API int DefaultThreadCount() noexcept;

// The SIMD instruction set the fast path dispatches to on this CPU, for
// example "AVX2" (run-time detection; informational).
SPARSENORM_API const char* ActiveSimdTarget() noexcept;

}  // namespace sparsenorm

#endif  // SPARSENORM_ROWS_H_
