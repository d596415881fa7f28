#include "core/row_set.h"

#include <algorithm>
#include <new>
#include <vector>

#include "core/parallel.h"

namespace sparsenorm::detail {

bool RowBitmap::Init(std::int64_t rows) noexcept {
  rows_ = rows;
  words_count_ = (rows + 63) / 64;
  words_.reset(new (std::nothrow) std::uint64_t[static_cast<std::size_t>(std::max<std::int64_t>(words_count_, 1))]());
  return words_ != nullptr;
}

namespace {
template <class I>
std::int64_t MarkSlice(const I* idx, std::int64_t begin, std::int64_t end, std::uint64_t limit,
                       std::uint64_t* words) {
  for (std::int64_t i = begin; i < end; ++i) {
    const auto row = static_cast<std::uint64_t>(static_cast<std::int64_t>(idx[i]));
    if (row >= limit) return i;
    const std::uint64_t bit = std::uint64_t{1} << (row & 63);
    std::atomic_ref<std::uint64_t> word(words[row >> 6]);
    // Reading first avoids a locked write for repeated indices.
    if ((word.load(std::memory_order_relaxed) & bit) == 0) {
      word.fetch_or(bit, std::memory_order_relaxed);
    }
  }
  return -1;
}
}  // namespace

std::int64_t RowBitmap::MarkAll(const void* indices, IndexType type, std::int64_t size,
                                int threads) {
  std::vector<std::int64_t> first(static_cast<std::size_t>(std::max(threads, 1)), -1);
  const auto limit = static_cast<std::uint64_t>(rows_);
  std::uint64_t* words = words_.get();
  ParallelFor(threads, size, [&](std::int64_t begin, std::int64_t end, int t) {
    first[t] = type == IndexType::kInt32
                   ? MarkSlice(static_cast<const std::int32_t*>(indices), begin, end, limit, words)
                   : MarkSlice(static_cast<const std::int64_t*>(indices), begin, end, limit, words);
  });
  for (std::int64_t f : first) {
    if (f >= 0) return f;
  }
  return -1;
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

}  // namespace sparsenorm::detail
