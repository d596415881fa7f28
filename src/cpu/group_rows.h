// Grouping an index list by row value, stably: the positions of each
// distinct row in list order. The optimizer step sums a row's gradient rows
// in list order (include/sparsenorm/optim.h, "Repeats"), so it needs
// exactly this, and a grouping that is deterministic whatever the thread
// count. The groups themselves come in one of two orders:
//   - kAscending: rows ascending, as the sharded step's phases promise and
//     as a long list's rows are best visited (neighbouring rows share
//     pages). A least-significant-digit radix sort over the bits the
//     table's row count needs, each pass split into per-thread slices whose
//     histograms are laid out slice after slice, so every pass is stable;
//     lists of a few thousand indices are sorted by one thread with
//     std::sort on (row, position) packed into one integer, which is
//     stable by construction.
//   - kFirstSeen: rows in the order the list first names them, through a
//     hash table on one thread: several times less than either sort on
//     lists of up to some ten thousand indices (docs/PERFORMANCE.md), whose
//     rows are scattered anyway. Lists of more than 2^30 indices (the hash
//     table numbers groups in 32 bits) are sorted, rows ascending.
#ifndef SPARSENORM_CPU_GROUP_ROWS_H_
#define SPARSENORM_CPU_GROUP_ROWS_H_

#include <cstdint>
#include <vector>

#include "sparsenorm/dtype.h"

namespace sparsenorm::cpu {

enum class GroupOrder : std::uint8_t { kAscending, kFirstSeen };

struct RowGroups {
  // positions[begin[s] .. begin[s + 1]) are the positions of row rows[s],
  // ascending; rows in the GroupOrder asked for. begin has rows.size() + 1
  // entries.
  std::vector<std::int64_t> positions;
  std::vector<std::int64_t> rows;
  std::vector<std::int64_t> begin;
};

// Groups the `n` indices on up to `threads` threads (the sort; the hash
// table runs on one), checking them on the way: returns the first
// position whose value lies outside [0, table_rows) (then `out` holds
// nothing useful), or -1. Throws std::bad_alloc when memory runs out.
std::int64_t GroupRows(const void* indices, IndexType type, std::int64_t n,
                       std::int64_t table_rows, int threads, GroupOrder order, RowGroups* out);

}  // namespace sparsenorm::cpu

#endif  // SPARSENORM_CPU_GROUP_ROWS_H_
