#include "cpu/row_set.h"

#include <algorithm>
#include <bit>
#include <mutex>
#include <new>
#include <vector>

#include "core/rows_backend.h"
#include "cpu/parallel.h"

namespace sparsenorm::cpu {

namespace {

// Bitmaps kept between calls, all clear, shared by the threads of the
// process: at most kPooledBitmapBytes of them (the bitmap of a table of
// 2^28 rows, or the many smaller ones of a call on many tables). A bitmap
// too large for the pool is allocated and cleared by each call, as any
// would be without it.
struct PooledBitmap {
  std::unique_ptr<std::uint64_t[]> memory;
  std::int64_t capacity;  // words
};

struct BitmapPool {
  std::mutex mutex;
  std::vector<PooledBitmap> free;
  std::int64_t bytes = 0;
};

// Never destroyed: a call still running on another thread while the
// process exits may release its bitmap after static destructors have run.
BitmapPool& Pool() {
  static BitmapPool* const pool = new BitmapPool;
  return *pool;
}

// Words of memory for `capacity` bitmap words and their summary.
std::int64_t MemoryWords(std::int64_t capacity) { return capacity + (capacity + 63) / 64; }
std::int64_t MemoryBytes(std::int64_t capacity) { return MemoryWords(capacity) * 8; }

}  // namespace

bool RowBitmap::Init(std::int64_t rows) noexcept {
  Release();
  rows_ = rows;
  words_count_ = (rows + 63) / 64;
  const std::int64_t needed = std::max<std::int64_t>(words_count_, 1);
  {
    BitmapPool& pool = Pool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    // The smallest pooled bitmap that is large enough.
    auto best = pool.free.end();
    for (auto it = pool.free.begin(); it != pool.free.end(); ++it) {
      if (it->capacity >= needed && (best == pool.free.end() || it->capacity < best->capacity)) best = it;
    }
    if (best != pool.free.end()) {
      memory_ = std::move(best->memory);
      capacity_ = best->capacity;
      pool.bytes -= MemoryBytes(capacity_);
      pool.free.erase(best);
    }
  }
  if (!memory_) {
    memory_.reset(new (std::nothrow) std::uint64_t[static_cast<std::size_t>(MemoryWords(needed))]());
    if (!memory_) return false;
    capacity_ = needed;
  }
  words_ = memory_.get();
  summary_ = memory_.get() + capacity_;
  return true;
}

void RowBitmap::Release() noexcept {
  if (!memory_) return;
  for (std::int64_t s = 0; s < (cleared_ ? 0 : summary_count()); ++s) {
    for (std::uint64_t bits = summary_[s]; bits != 0; bits &= bits - 1) {
      words_[s * 64 + std::countr_zero(bits)] = 0;
    }
    summary_[s] = 0;
  }
  words_ = summary_ = nullptr;
  words_count_ = rows_ = 0;
  cleared_ = false;
  const std::int64_t bytes = MemoryBytes(capacity_);
  BitmapPool& pool = Pool();
  std::lock_guard<std::mutex> lock(pool.mutex);
  if (pool.bytes + bytes <= kPooledBitmapBytes) {
    try {
      pool.free.push_back(PooledBitmap{std::move(memory_), capacity_});
      pool.bytes += bytes;
    } catch (const std::bad_alloc&) {
      // No room in the list: the block is freed instead (by the temporary
      // that held it).
    }
  }
  memory_.reset();
  capacity_ = 0;
}

namespace {
// Sets the bit of every index in [begin, end) of the list and, where
// `summary` is given, the summary bit of its word; returns the first
// position whose value is outside [0, limit), or -1.
template <bool kAtomic, class I>
std::int64_t MarkSlice(const I* idx, std::int64_t begin, std::int64_t end, std::uint64_t limit,
                       std::uint64_t* words, std::uint64_t* summary) {
  for (std::int64_t i = begin; i < end; ++i) {
    const auto row = static_cast<std::uint64_t>(static_cast<std::int64_t>(idx[i]));
    if (row >= limit) return i;
    const std::uint64_t w = row >> 6;
    const std::uint64_t bit = std::uint64_t{1} << (row & 63);
    const std::uint64_t flag = std::uint64_t{1} << (w & 63);
    if constexpr (kAtomic) {
      // Reading first avoids a locked write for repeated indices and
      // for the summary words, which every thread shares.
      std::atomic_ref<std::uint64_t> word(words[w]);
      if ((word.load(std::memory_order_relaxed) & bit) == 0) word.fetch_or(bit, std::memory_order_relaxed);
      std::atomic_ref<std::uint64_t> group(summary[w >> 6]);
      if ((group.load(std::memory_order_relaxed) & flag) == 0) group.fetch_or(flag, std::memory_order_relaxed);
    } else {
      words[w] |= bit;
      if (summary != nullptr) summary[w >> 6] |= flag;
    }
  }
  return -1;
}

// The first bad position found by slices that ran in position order.
std::int64_t FirstOf(const std::vector<std::int64_t>& first) {
  for (std::int64_t f : first) {
    if (f >= 0) return f;
  }
  return -1;
}

// Lists shorter than this are marked by one thread: a parallel region costs
// microseconds.
constexpr std::int64_t kSplitIndices = std::int64_t{1} << 14;

template <class I>
std::int64_t MarkList(const I* idx, std::int64_t size, std::uint64_t limit, std::uint64_t* words,
                      std::uint64_t* summary, std::int64_t word_count, int threads) {
  if (threads <= 1 || size < kSplitIndices) return MarkSlice<false>(idx, 0, size, limit, words, summary);
  std::vector<std::int64_t> first(static_cast<std::size_t>(threads), -1);
  // An atomic OR costs more than twice a plain one (docs/PERFORMANCE.md), so
  // with two or three threads each slice of the list is marked into a
  // bitmap of its own with plain ORs and the bitmaps are then ORed together,
  // blocks of words at a time, in the same parallel region; that pays while
  // the extra bitmaps are no larger than the list. From four threads on, or for bitmaps too large to
  // copy, the threads share one bitmap and OR atomically, which pays only
  // for long lists. The private bitmaps have no summary: the merge sets the
  // summary bit of every word it leaves non-zero.
  if (threads < 4 && word_count <= size) {
    const auto extra = static_cast<std::size_t>(threads - 1) * static_cast<std::size_t>(word_count);
    std::unique_ptr<std::uint64_t[]> own(new (std::nothrow) std::uint64_t[extra]());
    if (own) {
      auto bitmap_of = [&](int t) { return t == 0 ? words : own.get() + (t - 1) * word_count; };
      constexpr std::int64_t kMergeWords = 2048;
      static_assert(kMergeWords % 64 == 0);
      RunTeam(threads, [&](const Team& team) {
        team.ForEach(threads, [&](std::int64_t t) {
          first[t] = MarkSlice<false>(idx, size * t / threads, size * (t + 1) / threads, limit,
                                      bitmap_of(static_cast<int>(t)), t == 0 ? summary : nullptr);
        });
        team.ForEach((word_count + kMergeWords - 1) / kMergeWords, [&](std::int64_t block) {
          const std::int64_t begin = block * kMergeWords;
          const std::int64_t end = std::min(word_count, begin + kMergeWords);
          for (int t = 1; t < threads; ++t) {
            const std::uint64_t* other = bitmap_of(t);
            for (std::int64_t w = begin; w < end; ++w) words[w] |= other[w];
          }
          // Blocks are whole summary words (kMergeWords is a multiple of 64).
          for (std::int64_t w = begin; w < end; ++w) {
            summary[w >> 6] |= static_cast<std::uint64_t>(words[w] != 0) << (w & 63);
          }
        });
      });
      return FirstOf(first);
    }
    // No memory for the copies: the shared bitmap below works as well.
  } else if (threads < 4 || size < (std::int64_t{1} << 18)) {
    return MarkSlice<false>(idx, 0, size, limit, words, summary);
  }
  ParallelFor(threads, size, [&](std::int64_t begin, std::int64_t end, int t) {
    first[t] = MarkSlice<true>(idx, begin, end, limit, words, summary);
  });
  return FirstOf(first);
}
}  // namespace

std::int64_t RowBitmap::MarkAll(const void* indices, IndexType type, std::int64_t size,
                                int threads) {
  const auto limit = static_cast<std::uint64_t>(rows_);
  return type == IndexType::kInt32
             ? MarkList(static_cast<const std::int32_t*>(indices), size, limit, words_, summary_,
                        words_count_, threads)
             : MarkList(static_cast<const std::int64_t*>(indices), size, limit, words_, summary_,
                        words_count_, threads);
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
  return FirstOf(first);
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
