// The row operator's part of the backend contract (core/backend.h): the
// problem, the plan of a CPU run, and each backend's entry points.
#ifndef SPARSENORM_CORE_ROWS_BACKEND_H_
#define SPARSENORM_CORE_ROWS_BACKEND_H_

#include <cstddef>
#include <cstdint>

#include "core/backend.h"
#include "sparsenorm/types.h"

namespace sparsenorm {

struct RowsProblem {
  const unsigned char* in = nullptr;  // row r at in + r * in_stride_bytes
  unsigned char* out = nullptr;       // == in for the in-place operator
  std::int64_t in_stride_bytes = 0;
  std::int64_t out_stride_bytes = 0;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_bytes = 0;  // cols * element size
  DType dtype = DType::kFloat32;
  bool in_place = true;

  const void* indices = nullptr;
  IndexType index_type = IndexType::kInt64;
  std::int64_t num_indices = 0;

  NormRule rule{};
  bool nonfinite_error = false;
};

struct RowsPlan {
  int index_threads = 1;    // validating and deduplicating the indices
  int row_threads = 1;      // the rows themselves
  bool use_bitmap = true;   // false: the hash set of the indices
  std::int64_t prefetch_rows = 4;
};

namespace cpu {
// Row bitmaps up to this size are kept between calls (cpu/row_set.h).
inline constexpr std::int64_t kPooledBitmapBytes = std::int64_t{32} << 20;

Finding NormalizeRows(const RowsProblem& problem, const RowsPlan& plan, RowStats* stats);
// In place, every table of the list; checks them all before writing any.
// `stats` has `count` entries.
BatchFinding NormalizeRowsMany(const RowsProblem* problems, const RowsPlan* plans,
                               std::int64_t count, int threads, RowStats* stats);
}  // namespace cpu

namespace reference {
Finding NormalizeRows(const RowsProblem& problem, RowStats* stats);
BatchFinding NormalizeRowsMany(const RowsProblem* problems, std::int64_t count, RowStats* stats);
}  // namespace reference

namespace cuda::dev {
std::size_t RowsScratchBytes(const RowsProblem& problem);
Finding EnqueueRows(const RowsProblem& problem, void* scratch, void* stream);
// Waits for the stream; the outcome the device recorded in `scratch`.
// kNone with *valid = false when scratch holds no row-operator outcome.
Finding RowsOutcome(const void* scratch, void* stream, bool* valid, RowStats* stats);
}  // namespace cuda::dev

}  // namespace sparsenorm

#endif  // SPARSENORM_CORE_ROWS_BACKEND_H_
