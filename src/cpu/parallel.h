// The CPU backend's thread pool: OpenMP, used through these helpers so that
// every operator splits work the same way. How many threads a call uses is
// the front end's decision (core/plan.cc).
//
// Work is split into contiguous ranges. Static splits depend only on the
// range length and the thread count, so any per-thread partial results are
// combined in a fixed order and results are reproducible for a given thread
// count.
#ifndef SPARSENORM_CPU_PARALLEL_H_
#define SPARSENORM_CPU_PARALLEL_H_

#include <algorithm>
#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace sparsenorm::cpu {

// Calls fn(begin, end, thread) on `threads` contiguous slices of [0, n).
// Slice t is [n * t / T, n * (t + 1) / T) where T is the number of threads
// the runtime actually started; fn must not throw.
template <class Fn>
void ParallelFor(int threads, std::int64_t n, Fn&& fn) {
  if (n <= 0) return;
  if (threads <= 1) {
    fn(std::int64_t{0}, n, 0);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num();
    const std::int64_t count = omp_get_num_threads();
    const std::int64_t begin = n * t / count;
    const std::int64_t end = n * (t + 1) / count;
    if (begin < end) fn(begin, end, static_cast<int>(t));
  }
#else
  fn(std::int64_t{0}, n, 0);
#endif
}

// Two passes in one parallel region: first(begin, end, thread) on the
// slices of [0, n_first) as ParallelFor cuts them, then, once every thread
// has finished its slice, second(begin, end, thread) on the slices of
// [0, n_second). One fork and join instead of two, which on two cores is
// worth a few microseconds per call.
template <class First, class Second>
void ParallelForTwoPasses(int threads, std::int64_t n_first, First&& first, std::int64_t n_second,
                          Second&& second) {
  if (threads <= 1) {
    if (n_first > 0) first(std::int64_t{0}, n_first, 0);
    if (n_second > 0) second(std::int64_t{0}, n_second, 0);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num();
    const std::int64_t count = omp_get_num_threads();
    if (n_first * t / count < n_first * (t + 1) / count) {
      first(n_first * t / count, n_first * (t + 1) / count, static_cast<int>(t));
    }
#pragma omp barrier
    if (n_second * t / count < n_second * (t + 1) / count) {
      second(n_second * t / count, n_second * (t + 1) / count, static_cast<int>(t));
    }
  }
#else
  if (n_first > 0) first(std::int64_t{0}, n_first, 0);
  if (n_second > 0) second(std::int64_t{0}, n_second, 0);
#endif
}

// Calls fn(begin, end, thread) on chunks of `grain` items of [0, n), handed
// out to threads as they finish: for work whose cost per item is uneven.
template <class Fn>
void ParallelForDynamic(int threads, std::int64_t n, std::int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(1, grain);
  const std::int64_t chunks = (n + grain - 1) / grain;
  if (threads <= 1 || chunks == 1) {
    fn(std::int64_t{0}, n, 0);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t begin = c * grain;
    fn(begin, std::min(n, begin + grain), omp_get_thread_num());
  }
#else
  fn(std::int64_t{0}, n, 0);
#endif
}

}  // namespace sparsenorm::cpu

#endif  // SPARSENORM_CPU_PARALLEL_H_
