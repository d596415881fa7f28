#include "cpu/group_rows.h"

#include <algorithm>
#include <bit>

#include "common/element_types.h"
#include "cpu/parallel.h"

namespace sparsenorm::cpu {
namespace {

// Below this many indices one thread sorts: the radix passes' fixed cost
// (clearing and summing 2,048 counters per slice and pass) would dominate.
constexpr std::int64_t kSerialBelow = 4096;
constexpr int kDigitBits = 11;
// GroupByHash numbers groups in 32 bits.
constexpr std::int64_t kMaxHashedIndices = std::int64_t{1} << 30;

int BitsFor(std::uint64_t v) { return v == 0 ? 0 : 64 - std::countl_zero(v); }

// (row, position) packed into one integer, the row in the high bits: its
// integer order is the stable order by row. Used when both fit in 64 bits.
struct Packed {
  using Item = std::uint64_t;
  int pos_bits;
  Item Make(std::uint64_t row, std::uint64_t pos) const { return row << pos_bits | pos; }
  std::uint64_t Row(Item x) const { return x >> pos_bits; }
  std::int64_t Pos(Item x) const {
    return static_cast<std::int64_t>(x & ((std::uint64_t{1} << pos_bits) - 1));
  }
  int RowShift() const { return pos_bits; }
};

// Otherwise (a table of more than 2^(64 - log2 n) rows): a pair.
struct Pair {
  struct Item {
    std::uint64_t row;
    std::uint64_t pos;
    bool operator<(const Item& o) const { return row != o.row ? row < o.row : pos < o.pos; }
  };
  Item Make(std::uint64_t row, std::uint64_t pos) const { return Item{row, pos}; }
  std::uint64_t Row(const Item& x) const { return x.row; }
  std::int64_t Pos(const Item& x) const { return static_cast<std::int64_t>(x.pos); }
  int RowShift() const { return 0; }
};

std::uint64_t Key(const std::uint64_t& x) { return x; }
std::uint64_t Key(const Pair::Item& x) { return x.row; }

// The slices every parallel pass uses: fixed by n and the slice count, not
// by how many threads the runtime starts, so the histogram and the scatter
// of a pass see the same slices.
struct Slices {
  std::int64_t n;
  int count;
  std::int64_t Begin(int s) const { return n * s / count; }
  std::int64_t End(int s) const { return n * (s + 1) / count; }
};

// One stable counting pass on bits [shift, shift + bits) of the key, by the
// team; `counts` holds at least 2^bits counters per slice.
template <class Item>
void RadixPass(const Team& team, const std::vector<Item>& in, std::vector<Item>& out, int shift,
               int bits, const Slices& slices, std::vector<std::int64_t>& counts) {
  const std::size_t buckets = std::size_t{1} << bits;
  const std::uint64_t mask = buckets - 1;
  team.ForEach(slices.count, [&](std::int64_t s) {
    std::int64_t* c = counts.data() + static_cast<std::size_t>(s) * buckets;
    std::fill(c, c + buckets, 0);
    for (std::int64_t i = slices.Begin(s); i < slices.End(s); ++i) {
      ++c[(Key(in[static_cast<std::size_t>(i)]) >> shift) & mask];
    }
  });
  // Exclusive prefix over (digit, slice): slice s's items of a digit go
  // after those of every earlier slice, which keeps the pass stable.
  team.Single([&] {
    std::int64_t offset = 0;
    for (std::size_t d = 0; d < buckets; ++d) {
      for (int s = 0; s < slices.count; ++s) {
        std::int64_t& c = counts[static_cast<std::size_t>(s) * buckets + d];
        const std::int64_t k = c;
        c = offset;
        offset += k;
      }
    }
  });
  team.ForEach(slices.count, [&](std::int64_t s) {
    std::int64_t* c = counts.data() + static_cast<std::size_t>(s) * buckets;
    for (std::int64_t i = slices.Begin(s); i < slices.End(s); ++i) {
      const Item& x = in[static_cast<std::size_t>(i)];
      out[static_cast<std::size_t>(c[(Key(x) >> shift) & mask]++)] = x;
    }
  });
}

template <class Traits, class I>
std::int64_t Group(const Traits& traits, const I* idx, std::int64_t n, std::int64_t table_rows,
                   int threads, RowGroups* out) {
  using Item = typename Traits::Item;
  // Short lists: std::sort on one thread. Longer ones: the radix passes, on
  // one slice when there is one thread (no parallel region at all; a
  // comparison sort of 100,000 items took 6.4 ms there, a third of a step).
  // All of it runs in one team (one parallel region: the passes are short),
  // so everything it writes is allocated first, the groups at their most
  // (one per index) and shrunk at the end.
  const bool serial = n < kSerialBelow;
  const int team_size = serial ? 1 : threads;
  const Slices slices{n, team_size <= 1 ? 1 : team_size * 4};
  const int row_bits = BitsFor(static_cast<std::uint64_t>(table_rows - 1));
  // Equal digits per pass, at most kDigitBits each.
  const int passes = serial ? 0 : (row_bits + kDigitBits - 1) / kDigitBits;
  std::vector<Item> a(static_cast<std::size_t>(n)), b(serial ? 0 : static_cast<std::size_t>(n));
  std::vector<std::int64_t> counts(serial ? 0 : (std::size_t{1} << kDigitBits) * static_cast<std::size_t>(slices.count));
  // Each slice's first index out of range, and its count of group starts.
  std::vector<std::int64_t> bad(static_cast<std::size_t>(slices.count), -1);
  std::vector<std::int64_t> starts(static_cast<std::size_t>(slices.count) + 1, 0);
  out->positions.resize(static_cast<std::size_t>(n));
  out->rows.resize(static_cast<std::size_t>(n));
  out->begin.resize(static_cast<std::size_t>(n) + 1);
  std::int64_t first_bad = -1;

  const auto limit = static_cast<std::uint64_t>(table_rows);
  auto is_start = [&](std::int64_t i) {
    return i == 0 || traits.Row(a[static_cast<std::size_t>(i)]) !=
                         traits.Row(a[static_cast<std::size_t>(i - 1)]);
  };
  RunTeam(team_size, [&](const Team& team) {
    team.ForEach(slices.count, [&](std::int64_t s) {
      for (std::int64_t i = slices.Begin(s); i < slices.End(s); ++i) {
        const auto row = static_cast<std::uint64_t>(static_cast<std::int64_t>(idx[i]));
        if (row >= limit) {
          bad[static_cast<std::size_t>(s)] = i;
          return;
        }
        a[static_cast<std::size_t>(i)] = traits.Make(row, static_cast<std::uint64_t>(i));
      }
    });
    // Slices are in position order: the first one that found one wins.
    // Every thread reads the same answer and leaves together.
    team.Single([&] {
      for (std::int64_t f : bad) {
        if (f >= 0) {
          first_bad = f;
          break;
        }
      }
    });
    if (first_bad >= 0) return;
    if (serial) {
      std::sort(a.begin(), a.end());
    }
    for (int k = 0; k < passes; ++k) {
      const int lo = row_bits * k / passes, hi = row_bits * (k + 1) / passes;
      RadixPass(team, a, b, traits.RowShift() + lo, hi - lo, slices, counts);
      team.Single([&] { a.swap(b); });
    }

    // The groups: a new one wherever the row changes.
    team.ForEach(slices.count, [&](std::int64_t s) {
      std::int64_t c = 0;
      for (std::int64_t i = slices.Begin(s); i < slices.End(s); ++i) c += is_start(i);
      starts[static_cast<std::size_t>(s) + 1] = c;
    });
    team.Single([&] {
      for (int s = 0; s < slices.count; ++s) starts[s + 1] += starts[s];
    });
    team.ForEach(slices.count, [&](std::int64_t s) {
      std::int64_t g = starts[static_cast<std::size_t>(s)];
      for (std::int64_t i = slices.Begin(s); i < slices.End(s); ++i) {
        const Item& x = a[static_cast<std::size_t>(i)];
        out->positions[static_cast<std::size_t>(i)] = traits.Pos(x);
        if (is_start(i)) {
          out->rows[static_cast<std::size_t>(g)] = static_cast<std::int64_t>(traits.Row(x));
          out->begin[static_cast<std::size_t>(g)] = i;
          ++g;
        }
      }
    });
  });
  if (first_bad >= 0) return first_bad;
  const std::int64_t groups = starts.back();
  out->rows.resize(static_cast<std::size_t>(groups));
  out->begin.resize(static_cast<std::size_t>(groups) + 1);
  out->begin[static_cast<std::size_t>(groups)] = n;
  return -1;
}

// GroupOrder::kFirstSeen: one pass through an open-addressing hash table
// of group numbers (at least two slots per index, so probes stay short)
// gives each position its group, a counting pass then lays the positions
// out group after group. Both passes go in list order, which keeps every
// group's positions ascending, and each costs a few nanoseconds per index
// where the sort's comparisons or the radix passes' fixed cost (2,048
// counters per slice and pass) cost far more on short lists.
template <class I>
std::int64_t GroupByHash(const I* idx, std::int64_t n, std::int64_t table_rows, RowGroups* out) {
  const int bits = std::max(4, BitsFor(static_cast<std::uint64_t>(2 * n - 1)));
  // slot holds 1 + a group number, 0 when free.
  std::vector<std::uint32_t> slot(std::size_t{1} << bits, 0);
  std::vector<std::uint32_t> group_of(static_cast<std::size_t>(n));
  out->rows.resize(static_cast<std::size_t>(n));
  out->begin.resize(static_cast<std::size_t>(n) + 1);
  out->positions.resize(static_cast<std::size_t>(n));
  std::int64_t* rows = out->rows.data();
  std::int64_t* next = out->begin.data() + 1;  // group g's count, then where its next position goes
  const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
  const auto limit = static_cast<std::uint64_t>(table_rows);
  std::uint32_t groups = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto row = static_cast<std::uint64_t>(static_cast<std::int64_t>(idx[i]));
    if (row >= limit) return i;
    std::uint64_t h = (row * 0x9e3779b97f4a7c15ull) >> (64 - bits);
    for (;; h = (h + 1) & mask) {
      const std::uint32_t s = slot[h];
      if (s == 0) {
        slot[h] = groups + 1;
        rows[groups] = static_cast<std::int64_t>(row);
        next[groups] = 1;
        group_of[static_cast<std::size_t>(i)] = groups++;
        break;
      }
      if (static_cast<std::uint64_t>(rows[s - 1]) == row) {
        ++next[s - 1];
        group_of[static_cast<std::size_t>(i)] = s - 1;
        break;
      }
    }
  }
  // next[g] (which is begin[g + 1]) turns from group g's count into where
  // the group begins; the scatter then moves it to where the group ends,
  // which is what begin[g + 1] must hold.
  std::int64_t start = 0;
  for (std::uint32_t g = 0; g < groups; ++g) {
    const std::int64_t count = next[g];
    next[g] = start;
    start += count;
  }
  for (std::int64_t i = 0; i < n; ++i) {
    out->positions[static_cast<std::size_t>(next[group_of[static_cast<std::size_t>(i)]]++)] = i;
  }
  out->begin[0] = 0;
  out->rows.resize(groups);
  out->begin.resize(std::size_t{groups} + 1);
  return -1;
}

}  // namespace

std::int64_t GroupRows(const void* indices, IndexType type, std::int64_t n,
                       std::int64_t table_rows, int threads, GroupOrder order, RowGroups* out) {
  if (order == GroupOrder::kFirstSeen && n > 0 && n <= kMaxHashedIndices) {
    std::int64_t bad = -1;
    VisitIndexType(type, [&](auto tag) {
      bad = GroupByHash(static_cast<const TypeOf<decltype(tag)>*>(indices), n, table_rows, out);
    });
    return bad;
  }
  const int pos_bits = std::max(1, BitsFor(static_cast<std::uint64_t>(std::max<std::int64_t>(n - 1, 0))));
  const int row_bits = BitsFor(static_cast<std::uint64_t>(std::max<std::int64_t>(table_rows - 1, 0)));
  std::int64_t bad = -1;
  VisitIndexType(type, [&](auto tag) {
    const auto* idx = static_cast<const TypeOf<decltype(tag)>*>(indices);
    bad = pos_bits + row_bits <= 64 ? Group(Packed{pos_bits}, idx, n, table_rows, threads, out)
                                    : Group(Pair{}, idx, n, table_rows, threads, out);
  });
  return bad;
}

}  // namespace sparsenorm::cpu
