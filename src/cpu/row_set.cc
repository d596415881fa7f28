#include "cpu/row_set.h"

#include <algorithm>
#include <new>
#include <vector>

#include "cpu/parallel.h"

namespace sparsenorm::cpu {

bool RowBitmap::Init(std::int64_t rows) noexcept {
  rows_ = rows;
  words_count_ = (rows + 63) / 64;
  words_.reset(new (std::nothrow) std::uint64_t[static_cast<std::size_t>(std::max<std::int64_t>(words_count_, 1))]());
  return words_ != nullptr;
}

namespace {
// Sets the bit of every index in [begin, end) of the list; returns the first
// position whose value is outside [0, limit), or -1.
template <bool kAtomic, class I>
std::int64_t MarkSlice(const I* idx, std::int64_t begin, std::int64_t end, std::uint64_t limit,
                       std::uint64_t* words) {
  for (std::int64_t i = begin; i < end; ++i) {
    const auto row = static_cast<std::uint64_t>(static_cast<std::int64_t>(idx[i]));
    if (row >= limit) return i;
    const std::uint64_t bit = std::uint64_t{1} << (row & 63);
    if constexpr (kAtomic) {
      std::atomic_ref<std::uint64_t> word(words[row >> 6]);
      // Reading first avoids a locked write for repeated indices.
      if ((word.load(std::memory_order_relaxed) & bit) == 0) {
        word.fetch_or(bit, std::memory_order_relaxed);
      }
    } else {
      words[row >> 6] |= bit;
    }
  }
  return -1;
}

template <class I>
std::int64_t MarkList(const I* idx, std::int64_t size, std::uint64_t limit, std::uint64_t* words,
                      int threads) {
  // An atomic OR costs more than twice a plain one (docs/PERFORMANCE.md):
  // splitting the list pays only from about four threads on, and only for
  // long lists.
  if (threads < 4 || size < (std::int64_t{1} << 18)) return MarkSlice<false>(idx, 0, size, limit, words);
  std::vector<std::int64_t> first(static_cast<std::size_t>(threads), -1);
  ParallelFor(threads, size, [&](std::int64_t begin, std::int64_t end, int t) {
    first[t] = MarkSlice<true>(idx, begin, end, limit, words);
  });
  // Slices are in position order: the first slice that found one has the
  // first bad position.
  for (std::int64_t f : first) {
    if (f >= 0) return f;
  }
  return -1;
}
}  // namespace

std::int64_t RowBitmap::MarkAll(const void* indices, IndexType type, std::int64_t size,
                                int threads) {
  const auto limit = static_cast<std::uint64_t>(rows_);
  return type == IndexType::kInt32
             ? MarkList(static_cast<const std::int32_t*>(indices), size, limit, words_.get(), threads)
             : MarkList(static_cast<const std::int64_t*>(indices), size, limit, words_.get(), threads);
}

namespace {
template <bool kAtomic, class I>
std::int64_t ClaimSlice(RowClaimSet* set, const I* idx, std::int64_t begin, std::int64_t end,
                        std::uint64_t limit, std::uint8_t* owner) {
  for (std::int64_t i = begin; i < end; ++i) {
    const auto row = static_cast<std::uint64_t>(static_cast<std::int64_t>(idx[i]));
    if (row >= limit) return i;
    owner[i] = set->Claim<kAtomic>(static_cast<std::int64_t>(row)) ? 1 : 0;
  }
  return -1;
}

template <class I>
std::int64_t ClaimList(RowClaimSet* set, const I* idx, std::int64_t size, std::uint64_t limit,
                       std::uint8_t* owner, int threads) {
  if (threads <= 1) return ClaimSlice<false>(set, idx, 0, size, limit, owner);
  std::vector<std::int64_t> first(static_cast<std::size_t>(threads), -1);
  ParallelFor(threads, size, [&](std::int64_t begin, std::int64_t end, int t) {
    first[t] = ClaimSlice<true>(set, idx, begin, end, limit, owner);
  });
  // Slices are in position order: the first slice that found one has the
  // first bad position.
  for (std::int64_t f : first) {
    if (f >= 0) return f;
  }
  return -1;
}
}  // namespace

std::int64_t RowClaimSet::ClaimAll(const void* indices, IndexType type, std::int64_t size,
                                   std::int64_t rows, std::uint8_t* owner, int threads) {
  const auto limit = static_cast<std::uint64_t>(rows);
  return type == IndexType::kInt32
             ? ClaimList(this, static_cast<const std::int32_t*>(indices), size, limit, owner, threads)
             : ClaimList(this, static_cast<const std::int64_t*>(indices), size, limit, owner, threads);
}

bool RowClaimSet::Init(std::int64_t num_indices) noexcept {
  // Capacity: the power of two at or above twice the list length, so the
  // table is at most half full and probes stay short.
  int log2 = 4;
  while ((std::int64_t{1} << log2) < 2 * num_indices) ++log2;
  const std::size_t capacity = std::size_t{1} << log2;
  slots_.reset(new (std::nothrow) std::uint64_t[capacity]());
  mask_ = capacity - 1;
  shift_ = 64 - log2;
  return slots_ != nullptr;
}

}  // namespace sparsenorm::cpu
