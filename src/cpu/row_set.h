// Deduplication of row indices without sorting: which rows of the table an
// index list names, each reported once.
//
// RowBitmap: one bit per table row, set while the indices are validated;
// the rows are then visited in ascending order by scanning the words.
// RowClaimSet: a lock-free open-addressing hash set of 2 to 4 slots per
// index, for tables so much larger than the index list that a bitmap would
// cost more to clear and scan than the rows themselves (core/plan.cc
// chooses).
#ifndef SPARSENORM_CPU_ROW_SET_H_
#define SPARSENORM_CPU_ROW_SET_H_

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>

#include "sparsenorm/dtype.h"

namespace sparsenorm::cpu {

class RowBitmap {
 public:
  // false when the memory cannot be had.
  bool Init(std::int64_t rows) noexcept;

  // Sets the bit of every index of the list. Returns the first position whose
  // value is outside [0, rows), or -1. On error the bitmap is garbage.
  std::int64_t MarkAll(const void* indices, IndexType type, std::int64_t size,
                       int threads);

  std::int64_t word_count() const noexcept { return words_count_; }
  const std::uint64_t* words() const noexcept { return words_.get(); }
  bool Test(std::int64_t row) const noexcept {
    return (words_[row >> 6] >> (row & 63)) & 1u;
  }

 private:
  std::unique_ptr<std::uint64_t[]> words_;
  std::int64_t words_count_ = 0;
  std::int64_t rows_ = 0;
};

// Iterates the set bits of words [begin, end) in ascending order.
class SetBitCursor {
 public:
  SetBitCursor(const std::uint64_t* words, std::int64_t begin, std::int64_t end)
      : words_(words), word_(begin), end_(end), bits_(begin < end ? words[begin] : 0) {}

  // The next set bit's row number, or -1 when none is left.
  std::int64_t Next() noexcept {
    while (bits_ == 0) {
      if (word_ + 1 >= end_) {
        word_ = end_;
        return -1;
      }
      bits_ = words_[++word_];
    }
    const int bit = std::countr_zero(bits_);
    bits_ &= bits_ - 1;
    return word_ * 64 + bit;
  }

 private:
  const std::uint64_t* words_;
  std::int64_t word_;
  std::int64_t end_;
  std::uint64_t bits_;
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
