#include "touch_step.h"

#include <algorithm>
#include <cstring>
#include <utility>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "common/prefetch.h"
#include "core/optim_backend.h"
#include "core/plan.h"
#include "cpu/group_rows.h"
#include "cpu/parallel.h"
#include "sparsenorm/optim.h"

// The loops below are plain C++ for the compiler to vectorize; built for the
// baseline ISA they would run on 16-byte vectors while the step dispatches
// to AVX2 or AVX-512, so the hot functions get an AVX2 clone too (chosen by
// the loader on CPUs that have it). The ceiling is bound by memory either
// way; this keeps it from being bound by the vector width on rows in cache.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SPARSENORM_TOUCH_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SPARSENORM_TOUCH_CLONES
#endif

namespace sparsenorm::bench {

struct TouchJob {
  const std::int64_t* rows;
  const std::int64_t* positions;
  const std::int64_t* begin;
  const std::int64_t* partial;
  const TouchPlan::RepeatSum* sums;
  float* table;
  std::int64_t cols;
  float* state[2];
  std::int64_t state_cols[2];
  const float* grad;
  float* partials;
  std::int64_t stride;  // of the partial sums and scratch rows, in floats
  std::int64_t ahead;   // groups prefetched ahead
  float factor;
};

namespace {

// Row arithmetic in explicit 8-float vectors: left to itself, GCC -O3
// jams the loops of two consecutive gradient rows into one scalar loop,
// which made this "ceiling" slower than the step it bounds.
using Vec = float __attribute__((vector_size(32)));
constexpr std::int64_t kLanes = 8;

inline Vec Load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void Store(float* p, Vec v) { std::memcpy(p, &v, sizeof v); }

// y += f * x (f = 1: a plain sum).
inline void AddScaled(float* __restrict y, const float* __restrict x, float f, std::int64_t n) {
  std::int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) Store(y + j, Load(y + j) + f * Load(x + j));
  for (; j < n; ++j) y[j] += f * x[j];
}

inline void Add(float* __restrict acc, const float* __restrict x, std::int64_t n) {
  std::int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) Store(acc + j, Load(acc + j) + Load(x + j));
  for (; j < n; ++j) acc[j] += x[j];
}

// acc = the sum, in list order, of the gradient rows at positions[b .. e).
inline void SumRows(const TouchJob& job, std::int64_t b, std::int64_t e, float* acc) {
  const std::int64_t n = job.cols;
  std::memcpy(acc, job.grad + job.positions[b] * n, static_cast<std::size_t>(n) * 4);
  for (std::int64_t i = b + 1; i < e; ++i) Add(acc, job.grad + job.positions[i] * n, n);
}

}  // namespace

SPARSENORM_TOUCH_CLONES
void TouchRepeatSums(const TouchJob& job, std::int64_t first, std::int64_t last) {
  for (std::int64_t k = first; k < last; ++k) {
    SumRows(job, job.sums[k].first, job.sums[k].last, job.partials + k * job.stride);
  }
}

SPARSENORM_TOUCH_CLONES
void TouchGroups(const TouchJob& job, std::int64_t first, std::int64_t last, float* acc) {
  const std::int64_t n = job.cols;
  auto prefetch = [&](std::int64_t s) {
    const std::int64_t r = job.rows[s];
    if (job.table != nullptr) sparsenorm::PrefetchRow(job.table + r * n, n * 4);
    for (int i = 0; i < 2; ++i) {
      if (job.state_cols[i] > 0) sparsenorm::PrefetchRow(job.state[i] + r * job.state_cols[i], job.state_cols[i] * 4);
    }
    const std::int64_t b = job.begin[s], e = std::min(job.begin[s + 1], b + 4);
    for (std::int64_t i = b; i < e; ++i) sparsenorm::PrefetchRow(job.grad + job.positions[i] * n, n * 4);
  };
  for (std::int64_t s = first; s < std::min(last, first + job.ahead); ++s) prefetch(s);
  const float f = job.factor;
  for (std::int64_t s = first; s < last; ++s) {
    if (s + job.ahead < last) prefetch(s + job.ahead);
    const std::int64_t b = job.begin[s], e = job.begin[s + 1];
    if (job.partial[s] < 0) {
      SumRows(job, b, e, acc);
    } else {
      const std::int64_t count = (e - b + kRepeatGroup - 1) / kRepeatGroup;
      const float* p = job.partials + job.partial[s] * job.stride;
      std::memcpy(acc, p, static_cast<std::size_t>(n) * 4);
      for (std::int64_t k = 1; k < count; ++k) Add(acc, p + k * job.stride, n);
    }
    const std::int64_t r = job.rows[s];
    if (job.table != nullptr) AddScaled(job.table + r * n, acc, f, n);
    for (int i = 0; i < 2; ++i) {
      const std::int64_t m = job.state_cols[i];
      if (m > 0) AddScaled(job.state[i] + r * m, acc, f, m);
    }
  }
}

TouchPlan::TouchPlan(const std::int64_t* indices, std::int64_t count) {
  // (row, position) sorted: rows ascending, each row's positions in list
  // order, as cpu/group_rows.cc's stable sort leaves them.
  std::vector<std::pair<std::int64_t, std::int64_t>> items(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) items[static_cast<std::size_t>(i)] = {indices[i], i};
  std::sort(items.begin(), items.end());
  positions_.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i == 0 || items[i].first != items[i - 1].first) {
      rows_.push_back(items[i].first);
      begin_.push_back(static_cast<std::int64_t>(i));
    }
    positions_.push_back(items[i].second);
  }
  begin_.push_back(count);
  partial_.assign(rows_.size(), -1);
  for (std::size_t s = 0; s < rows_.size(); ++s) {
    const std::int64_t b = begin_[s], e = begin_[s + 1];
    if (e - b <= kRepeatGroup) continue;
    ++long_groups_;
    partial_[s] = static_cast<std::int64_t>(sums_.size());
    for (std::int64_t k = b; k < e; k += kRepeatGroup) {
      sums_.push_back(RepeatSum{static_cast<std::int64_t>(s), k, std::min(e, k + kRepeatGroup)});
    }
  }
}

void TouchPlan::Run(float* table, std::int64_t cols, float* const state[2],
                    const std::int64_t state_cols[2], const float* grad, float factor, int threads) {
#if defined(_OPENMP)
  if (threads <= 0) threads = omp_get_max_threads();
#else
  threads = 1;
#endif
  const std::int64_t groups = distinct_rows();
  if (groups == 0 || cols == 0) return;
  // As src/cpu/optim.cc: rows of 64-byte multiples, about 4 KiB of rows in
  // flight, about sixteen chunks of groups per thread.
  const std::int64_t stride = (cols + 15) / 16 * 16;
  const std::int64_t ahead = std::clamp<std::int64_t>(4096 / (stride * 4), 2, 16);
  const std::int64_t grain = std::max<std::int64_t>(8, groups / (16 * threads));
  const auto need_partials = static_cast<std::size_t>(static_cast<std::int64_t>(sums_.size()) * stride);
  if (partials_.size() < need_partials) partials_.resize(need_partials);
  const auto need_scratch = static_cast<std::size_t>(threads * stride);
  if (scratch_.size() < need_scratch) scratch_.resize(need_scratch);

  TouchJob job{rows_.data(), positions_.data(), begin_.data(), partial_.data(), sums_.data(),
               table, cols, {state[0], state[1]}, {state_cols[0], state_cols[1]}, grad,
               partials_.data(), stride, ahead, factor};
  cpu::ParallelForDynamic(threads, static_cast<std::int64_t>(sums_.size()), 4,
                          [&](std::int64_t b, std::int64_t e, int) { TouchRepeatSums(job, b, e); });
  cpu::ParallelForDynamic(threads, groups, grain, [&](std::int64_t b, std::int64_t e, int t) {
    TouchGroups(job, b, e, scratch_.data() + t * stride);
  });
}

bool StepGroupsFirstSeen(std::int64_t count) {
  StepProblem problem;
  problem.num_indices = count;
  return detail::PlanStep(problem, 0, Tuning{}).groups_first_seen;
}

std::int64_t GroupRows(const std::int64_t* indices, std::int64_t count, std::int64_t table_rows,
                       int threads, bool first_seen) {
#if defined(_OPENMP)
  if (threads <= 0) threads = omp_get_max_threads();
#else
  threads = 1;
#endif
  cpu::RowGroups groups;
  const std::int64_t bad =
      cpu::GroupRows(indices, IndexType::kInt64, count, table_rows, threads,
                     first_seen ? cpu::GroupOrder::kFirstSeen : cpu::GroupOrder::kAscending, &groups);
  return bad >= 0 ? -1 : static_cast<std::int64_t>(groups.rows.size());
}

}  // namespace sparsenorm::bench

extern "C" {

void* sparsenorm_bench_touch_plan(const std::int64_t* indices, std::int64_t count) {
  return new sparsenorm::bench::TouchPlan(indices, count);
}

std::int64_t sparsenorm_bench_touch_distinct(const void* plan) {
  return static_cast<const sparsenorm::bench::TouchPlan*>(plan)->distinct_rows();
}

std::int64_t sparsenorm_bench_touch_long_groups(const void* plan) {
  return static_cast<const sparsenorm::bench::TouchPlan*>(plan)->long_groups();
}

void sparsenorm_bench_touch_run(void* plan, float* table, std::int64_t cols, float* state0,
                                std::int64_t state0_cols, float* state1, std::int64_t state1_cols,
                                const float* grad, float factor, int threads) {
  float* const state[2] = {state0, state1};
  const std::int64_t state_cols[2] = {state0 != nullptr ? state0_cols : 0,
                                      state1 != nullptr ? state1_cols : 0};
  static_cast<sparsenorm::bench::TouchPlan*>(plan)->Run(table, cols, state, state_cols, grad, factor,
                                                        threads);
}

void sparsenorm_bench_touch_free(void* plan) { delete static_cast<sparsenorm::bench::TouchPlan*>(plan); }

std::int64_t sparsenorm_bench_group_rows(const std::int64_t* indices, std::int64_t count,
                                         std::int64_t table_rows, int threads) {
  return sparsenorm::bench::GroupRows(indices, count, table_rows, threads,
                                      sparsenorm::bench::StepGroupsFirstSeen(count));
}

}  // extern "C"
