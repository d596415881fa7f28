// Grouping an index list by row value, stably: the positions of each
// distinct row in list order, the rows in ascending order. The optimizer
// step sums a row's gradient rows in list order (include/sparsenorm/optim.h,
// "Repeats"), so it needs exactly this, and a sort that is parallel and
// deterministic: a least-significant-digit radix sort over the bits the
// table's row count needs, each pass split into per-thread slices whose
// histograms are laid out slice after slice, so every pass is stable
// whatever the thread count. Lists of a few thousand indices are sorted by
// one thread with std::sort on (row, position) packed into one integer,
// which is stable by construction.
#ifndef SPARSENORM_CPU_GROUP_ROWS_H_
#define SPARSENORM_CPU_GROUP_ROWS_H_

#include <cstdint>
#include <vector>

#include "sparsenorm/dtype.h"

namespace sparsenorm::cpu {

struct RowGroups {
  // positions[begin[s] .. begin[s + 1]) are the positions of row rows[s],
  // ascending; rows ascending. begin has rows.size() + 1 entries.
  std::vector<std::int64_t> positions;
  std::vector<std::int64_t> rows;
  std::vector<std::int64_t> begin;
};

// Groups the `n` indices, checking them on the way: returns the first
// position whose value lies outside [0, table_rows) (then `out` holds
// nothing useful), or -1. Throws std::bad_alloc when memory runs out.
std::int64_t GroupRows(const void* indices, IndexType type, std::int64_t n,
                       std::int64_t table_rows, int threads, RowGroups* out);

}  // namespace sparsenorm::cpu

#endif  // SPARSENORM_CPU_GROUP_ROWS_H_
