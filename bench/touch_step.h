// The access-pattern ceiling of the optimizer step on the CPU, for the
// benchmarks (optim_bench.cc; compare_optim.py through ctypes): exactly the
// reads and writes of src/cpu/optim.cc on a float32 table and a sparse
// float32 gradient, in its order, with trivial arithmetic.
//
// What it shares with the CPU path:
//   - the visiting order: rows ascending (the CPU path's order from
//     Tuning::hash_groups_below indices up; shorter lists it visits in the
//     order the list first names the rows, scattered either way); each
//     row's gradient rows in list order, summed into a per-thread row; a row named more than
//     kRepeatGroup times has its repeat groups summed first, spread over
//     the threads, and the sums then added by the thread that updates it;
//   - the work split (cpu/parallel.h, the same chunk sizes) and the
//     prefetching (the table row, its state rows and its first four
//     gradient rows, about 4 KiB of rows ahead);
//   - each table row and state row read and written once.
// What it leaves out: the grouping (computed once, when the plan is made),
// validation, the optimizer's arithmetic (here w += f * g and s += f * g,
// which leave the arrays unchanged when f = 0), the finiteness check, the
// norm and the scratch rows of the new row and state.
#ifndef SPARSENORM_BENCH_TOUCH_STEP_H_
#define SPARSENORM_BENCH_TOUCH_STEP_H_

#include <cstdint>
#include <vector>

namespace sparsenorm::bench {

class TouchPlan {
 public:
  // The grouping of an index list of `count` rows in [0, table rows).
  TouchPlan(const std::int64_t* indices, std::int64_t count);

  std::int64_t distinct_rows() const { return static_cast<std::int64_t>(rows_.size()); }
  // The rows named more than kRepeatGroup times.
  std::int64_t long_groups() const { return long_groups_; }

  // One pass over a table of `cols` columns (rows contiguous) and up to two
  // state tables of state_cols[i] elements per row (0: no such table; 1:
  // row-wise Adagrad's one sum per row); gradient row i at grad + i * cols.
  // A null table (with no state): the gradient sums alone, for the
  // breakdown of the time. threads 0: every thread OpenMP offers. The
  // first call with a larger `cols` or thread count allocates the scratch
  // rows; later calls do not.
  void Run(float* table, std::int64_t cols, float* const state[2], const std::int64_t state_cols[2],
           const float* grad, float factor, int threads);

  struct RepeatSum {
    std::int64_t group;
    std::int64_t first;  // its first position in positions_
    std::int64_t last;
  };

 private:
  std::vector<std::int64_t> rows_, positions_, begin_;
  std::vector<std::int64_t> partial_;  // each group's first repeat sum, or -1
  std::vector<RepeatSum> sums_;
  std::int64_t long_groups_ = 0;
  std::vector<float> partials_, scratch_;
};

// Whether the step's planner groups a list of `count` indices through the
// hash table (rows in the order first named) rather than the sort.
bool StepGroupsFirstSeen(std::int64_t count);

// The CPU path's grouping of an index list alone (src/cpu/group_rows.h),
// which the ceiling leaves out, through the hash table or the sort, into a
// fresh RowGroups as the step makes one per call: its distinct rows, or -1
// for an index out of [0, table_rows). threads 0: every thread OpenMP
// offers.
std::int64_t GroupRows(const std::int64_t* indices, std::int64_t count, std::int64_t table_rows,
                       int threads, bool first_seen);

}  // namespace sparsenorm::bench

// The same for ctypes. table may be null (the gradient sums alone),
// state0/state1 too (state_cols 0).
extern "C" {
void* sparsenorm_bench_touch_plan(const std::int64_t* indices, std::int64_t count);
std::int64_t sparsenorm_bench_touch_distinct(const void* plan);
std::int64_t sparsenorm_bench_touch_long_groups(const void* plan);
void sparsenorm_bench_touch_run(void* plan, float* table, std::int64_t cols, float* state0,
                                std::int64_t state0_cols, float* state1, std::int64_t state1_cols,
                                const float* grad, float factor, int threads);
void sparsenorm_bench_touch_free(void* plan);
// GroupRows in the order the step's planner picks for the list's length.
std::int64_t sparsenorm_bench_group_rows(const std::int64_t* indices, std::int64_t count,
                                         std::int64_t table_rows, int threads);
}

#endif  // SPARSENORM_BENCH_TOUCH_STEP_H_
