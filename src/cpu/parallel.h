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

// A team of threads that runs several phases of one algorithm in one
// parallel region, with a barrier after each phase: for multi-pass work
// (a radix sort, marking then merging) whose passes are each too short to
// pay for a fork and join of their own, which cost microseconds each on an
// idle machine and far more on a busy one. RunTeam calls body(team) on
// every thread of the team; every thread must make the same sequence of
// ForEach and Single calls, and nothing in body may throw (allocate before).
class Team {
 public:
  explicit Team(bool parallel) : parallel_(parallel) {}

  // fn(i) for every i of [0, n), items handed to threads as they finish;
  // returns on every thread once all items are done.
  template <class Fn>
  void ForEach(std::int64_t n, Fn&& fn) const {
    if (!parallel_) {
      for (std::int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
#if defined(_OPENMP)
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t i = 0; i < n; ++i) fn(i);
#endif
  }

  // fn() on one thread; returns on every thread once it is done.
  template <class Fn>
  void Single(Fn&& fn) const {
    if (!parallel_) {
      fn();
      return;
    }
#if defined(_OPENMP)
#pragma omp single
    fn();
#endif
  }

 private:
  bool parallel_;
};

template <class Body>
void RunTeam(int threads, Body&& body) {
#if defined(_OPENMP)
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    body(Team(true));
    return;
  }
#endif
  body(Team(false));
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
