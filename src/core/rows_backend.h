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

// How a CPU call finds the distinct rows of its list (cpu/row_set.h has
// the structures; core/plan.cc chooses).
enum class RowDedup : std::uint8_t {
  // The row bitmap, marked by one thread that lists each row as the list
  // first names it; the rows are then shared out by their place in that
  // list, so no thread reads bitmap words another thread wrote.
  kBitmapList,
  // The row bitmap, marked by every thread; the rows are found through its
  // summary, ascending, in chunks of summary words.
  kBitmapScan,
  // A hash set of the indices; the rows in list order.
  kHashSet,
};

struct RowsPlan {
  int index_threads = 1;    // validating and deduplicating the indices
  int row_threads = 1;      // the rows themselves
  RowDedup dedup = RowDedup::kBitmapScan;
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
