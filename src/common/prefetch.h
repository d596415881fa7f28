// Software prefetching of a table row on the host: the CPU kernels and the
// benchmarks that measure their ceilings prefetch through this one
// function, so that both ask the memory system for the same lines.
#ifndef SPARSENORM_COMMON_PREFETCH_H_
#define SPARSENORM_COMMON_PREFETCH_H_

#include <cstdint>

namespace sparsenorm {

// Prefetch for writing (the row is read, then usually rewritten) of every
// cache line the row touches. A row need not start on a line: a 64-byte row
// of a table whose base is 16-byte aligned (glibc's large malloc, hence
// NumPy's and std::vector's arrays) spans two lines, and prefetching from
// the row's start in steps of 64 bytes would miss the second one.
//
// The empty asm statement in the loop is what keeps the loop. GCC treats
// a prefetch as having no effect and, for C++11 and later, assumes that a
// loop without effects ends (-ffinite-loops), so it deletes a loop whose
// body is only prefetches. It did so in most places this loop was inlined
// into: GCC 12 builds of the optimizer step, of the row operator's hash-set
// path and split-phase calls, and of the step's ceiling benchmark had no
// prefetch instruction at all (objdump; tests/build/check_prefetch.py now
// looks). The asm statement is an effect GCC must keep; it emits no
// instruction and touches no memory. (Both builtins are GNU C, which every
// compiler this project builds with, GCC and Clang, speaks.)
inline void PrefetchRow(const void* row, std::int64_t bytes) {
  if (bytes <= 0) return;
  const auto start = reinterpret_cast<std::uintptr_t>(row);
  const std::uintptr_t first = start & ~std::uintptr_t{63};
  const std::uintptr_t last = start + static_cast<std::uintptr_t>(bytes) - 1;
  for (std::uintptr_t a = first; a <= last; a += 64) {
    __builtin_prefetch(reinterpret_cast<const void*>(a), 1, 3);
    asm volatile("");
  }
}

}  // namespace sparsenorm

#endif  // SPARSENORM_COMMON_PREFETCH_H_
