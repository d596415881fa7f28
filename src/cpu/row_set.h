// Deduplication of row indices without sorting: which rows of the table an
// index list names, each reported once.
//
// RowBitmap: one bit per table row, set while the indices are validated,
// and a summary of one bit per 64-row word; the rows are then visited in
// ascending order through the summary, so that finding them costs time in
// proportion to them plus one summary word per 4,096 table rows, not to
// the table. Its memory is kept between calls (a pool shared by the
// process's threads) and cleared through the summary, so a call neither
// allocates nor clears a bitmap the size of the table.
// RowClaimSet: a lock-free open-addressing hash set of 2 to 4 slots per
// index, for tables so much larger than the index list that even the
// summary would cost more to scan than the rows themselves (core/plan.cc
// chooses).
#ifndef SPARSENORM_CPU_ROW_SET_H_
#define SPARSENORM_CPU_ROW_SET_H_

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>

#include "sparsenorm/dtype.h"

namespace sparsenorm::cpu {

// Invariant: whatever sets a bit of words() also sets the bit of its word
// in summary() (bit w % 64 of summary()[w / 64] for word w): the summary is
// what clears the bitmap when it goes back to the pool. A summary bit may
// be set over a word that is zero (a kernel that clears words as it
// collects them, cpu/rows.cc's in-place path, leaves none set).
class RowBitmap {
 public:
  RowBitmap() = default;
  RowBitmap(const RowBitmap&) = delete;
  RowBitmap& operator=(const RowBitmap&) = delete;
  ~RowBitmap() { Release(); }

  // All bits clear. false when the memory cannot be had.
  bool Init(std::int64_t rows) noexcept;

  // Sets the bit of every index of the list. Returns the first position whose
  // value is outside [0, rows), or -1. On error some bits may be set.
  std::int64_t MarkAll(const void* indices, IndexType type, std::int64_t size,
                       int threads);

  std::int64_t word_count() const noexcept { return words_count_; }
  std::int64_t summary_count() const noexcept { return (words_count_ + 63) / 64; }
  const std::uint64_t* words() const noexcept { return words_; }
  // For kernels that clear what they collect (and so keep the invariant).
  std::uint64_t* mutable_words() noexcept { return words_; }
  std::uint64_t* summary() noexcept { return summary_; }
  bool Test(std::int64_t row) const noexcept {
    return (words_[row >> 6] >> (row & 63)) & 1u;
  }
  // Says that a kernel has cleared every word and summary word (the
  // in-place scan of cpu/rows.cc, MarkedRows), so the release need not look.
  void SetCleared() noexcept { cleared_ = true; }

 private:
  // Clears the set words through the summary and returns the memory to
  // the pool (or frees it, past the pool's size).
  void Release() noexcept;

  std::unique_ptr<std::uint64_t[]> memory_;  // capacity_ words, then their summary
  std::int64_t capacity_ = 0;
  std::uint64_t* words_ = nullptr;
  std::uint64_t* summary_ = nullptr;
  std::int64_t words_count_ = 0;
  std::int64_t rows_ = 0;
  bool cleared_ = false;
};

class RowClaimSet {
 public:
  bool Init(std::int64_t num_indices) noexcept;

  // Claims the row of every index of the list, setting owner[i] = 1 for the
  // one position per distinct row that claimed it first and 0 elsewhere.
  // Returns the first position whose value is outside [0, rows), or -1.
  // Claiming up front keeps the atomics out of the pass that moves the rows.
  std::int64_t ClaimAll(const void* indices, IndexType type, std::int64_t size,
                        std::int64_t rows, std::uint8_t* owner, int threads);

  // True for exactly one caller per distinct row, whatever the threads.
  // kAtomic false: only one thread claims (a plain store where the
  // compare-exchange's locked write would cost several times more).
  template <bool kAtomic = true>
  bool Claim(std::int64_t row) noexcept {
    const std::uint64_t key = static_cast<std::uint64_t>(row) + 1;  // 0 marks a free slot
    std::uint64_t slot = (key * 0x9e3779b97f4a7c15ull) >> shift_;
    for (;;) {
      if constexpr (kAtomic) {
        std::atomic_ref<std::uint64_t> cell(slots_[slot]);
        std::uint64_t seen = cell.load(std::memory_order_relaxed);
        if (seen == 0) {
          if (cell.compare_exchange_strong(seen, key, std::memory_order_relaxed)) return true;
        }
        if (seen == key) return false;
      } else {
        const std::uint64_t seen = slots_[slot];
        if (seen == 0) {
          slots_[slot] = key;
          return true;
        }
        if (seen == key) return false;
      }
      slot = (slot + 1) & mask_;
    }
  }

 private:
  std::unique_ptr<std::uint64_t[]> slots_;
  std::uint64_t mask_ = 0;
  int shift_ = 64;
};

}  // namespace sparsenorm::cpu

#endif  // SPARSENORM_CPU_ROW_SET_H_
