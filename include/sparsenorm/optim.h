// The training step: a sparse optimizer update of the rows a gradient
// touches, with the norm constraint of the row operator (rows.h) applied to
// each updated row in the same pass.
//
// On a table sharded by columns across processes the same step runs as
// split phases (sharded_step.h; over MPI: mpi.h's ColumnShardedOptimizerStep).
//
// Input: the table, the optimizer's state tables, and either a sparse
// gradient (an index list with one gradient row per index, as
// nn.Embedding(sparse=True) produces; repeats allowed) or a dense gradient
// (one row per table row).
//
// Contract, for each distinct row r of the index list (every row for a
// dense gradient):
//
//   g  = the sum of the gradient rows of r's occurrences (see "Repeats")
//   w  = table[r]                      widened to the arithmetic type
//   (w', state') = the optimizer's rule below applied to (w, g, state[r])
//   if g, w' or state' holds NaN or +-inf:  leave table[r] and state[r];
//                                           count r in nonfinite_rows
//   state[r] = state'
//   n = ||w'||_p                       when a constraint is set
//   table[r] = round(w' * s)           when the constraint scales (rows.h:
//                                      max-norm: n > target; constant-norm:
//                                      n > 0; s = target / (n + eps))
//   table[r] = round(w')               otherwise
//
// The arithmetic type is float32 for float32, float16 and bfloat16 tables
// and float64 for float64 tables; the state tables have that type. Each
// stored table element is rounded once (round(w' * s) is the exact product
// rounded once, as in rows.h). Hyperparameters are evaluated in float64 and
// rounded to the arithmetic type where they enter element arithmetic.
//
// The rules (g is the summed gradient row, j a column, t = options.step):
//
//   kSGD            g' = g + wd * w     (kL2)
//                   w' = w - lr * g'
//                   w' = (1 - lr * wd) * w - lr * g     (kDecoupled)
//                   state: none
//   kAdagrad        as torch.optim.Adagrad:
//                   clr = lr / (1 + (t - 1) * lr_decay)
//                   g' = g + wd * w     (kL2)
//                   sum[j] += g'[j]^2
//                   w' = w - clr * (g'[j] / (sqrt(sum[j]) + eps))
//                   (kDecoupled: w' = (1 - clr * wd) * w - clr * (g / ...))
//                   state: `sum`, rows x cols
//                   caffe2_sign (Caffe2's SparseAdagrad): w' = w + lr * (...),
//                   descent with lr < 0, as Caffe2 passes it
//   kRowWiseAdagrad as FBGEMM's exact row-wise Adagrad:
//                   g' = g + wd * w     (kL2; only in the mean)
//                   sum += mean_j(g'[j]^2)
//                   m = lr / (sqrt(sum) + eps)
//                   c = 1 - m * wd (kL2), 1 - lr * wd (kDecoupled), 1 (kNone)
//                   w' = c * w - m * g
//                   state: `sum`, rows x 1
//   kAdam           lazy, as torch.optim.SparseAdam (only touched rows'
//                   moments move):
//                   exp_avg    += (g - exp_avg) * (1 - beta1)
//                   exp_avg_sq += (g^2 - exp_avg_sq) * (1 - beta2)
//                   step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
//                   w' = w - step_size * (exp_avg / (sqrt(exp_avg_sq) + eps))
//                   (kL2: g' = g + wd * w in place of g; kDecoupled: w is
//                   first multiplied by 1 - lr * wd, as AdamW)
//                   state: `exp_avg`, `exp_avg_sq`, rows x cols
//
// Weight decay (wd = options.weight_decay) touches only the rows the
// gradient names, for a sparse gradient: this is the lazy form, as every
// sparse optimizer has it. kNone with a nonzero weight_decay is an error, not
// a silent no-op.
//
// Repeats: the gradient rows of one table row's occurrences are summed in
// the order they stand in the index list, in groups of kRepeatGroup
// consecutive occurrences whose sums are then added in order. The result is
// bit-for-bit independent of the thread count and of the backend's
// scheduling; reordering the list may change the last bits, as in any float
// sum. The norm is summed as in rows.h (it may differ in the last bit
// between SIMD instruction sets and between the CPU and the GPU).
//
// Rounding of 16-bit tables: to nearest, ties to even (Rounding::
// kNearestEven), or stochastic (kStochastic): a value between two 16-bit
// neighbours goes to the one away from zero with probability equal to its
// distance from the one toward zero, in units of their spacing (resolved to
// 2^-24 of the spacing after an exact product, to the float32 bits
// otherwise); a magnitude above the largest finite 16-bit value rounds to
// nearest. The random bits come from a counter-based generator keyed on
// (seed, step, row, column), so they do not depend on threads and are the
// same on the CPU and the GPU. Stochastic rounding of a float32 or float64
// table is an error.
//
// Errors (nothing is written, to the table or to any state table, when a
// call fails):
//   kOutOfRange       an index < 0 or >= rows (the message names its position)
//   kInvalidArgument  a gradient whose row count differs from the index
//                     count (sparse) or the table's (dense), or whose column
//                     count differs from the table's; a state table of the
//                     wrong shape or dtype, missing, or overlapping the
//                     table, the gradient or another state table; lr < 0
//                     (except caffe2_sign); lr, eps, weight_decay, lr_decay,
//                     beta1, beta2 not finite or out of range; step < 1;
//                     the constraint's target, p or eps invalid (rows.h);
//                     stochastic rounding of a float32/float64 table
//   kUnsupported      a dtype or index type outside the enumerations
//   kNonFinite        under NonFinitePolicy::kError, a gradient element that
//                     is NaN or infinite (checked before anything is written;
//                     a row whose sum or update overflows is still left and
//                     counted, as under kSkip)
//   kOutOfMemory      scratch memory could not be allocated
//
// Statistics (RowStats): indices_seen, distinct_rows (updated rows),
// rows_scaled (rows the constraint scaled), nonfinite_rows (rows left alone).
#ifndef SPARSENORM_OPTIM_H_
#define SPARSENORM_OPTIM_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "sparsenorm/export.h"
#include "sparsenorm/types.h"

namespace sparsenorm {

enum class OptimizerKind : std::uint8_t { kSGD = 0, kAdagrad = 1, kRowWiseAdagrad = 2, kAdam = 3 };

// FBGEMM's numbering (WeightDecayMode.NONE, L2, DECOUPLE).
enum class WeightDecayMode : std::uint8_t { kNone = 0, kL2 = 1, kDecoupled = 2 };

enum class ConstraintKind : std::uint8_t { kNone = 0, kMaxNorm = 1, kConstantNorm = 2 };

enum class Rounding : std::uint8_t { kNearestEven = 0, kStochastic = 1 };

// The occurrences of one row summed before their partial sums are added
// (see "Repeats" above).
inline constexpr std::int64_t kRepeatGroup = 64;

// The norm constraint on each updated row: the row operator's rule (rows.h).
struct RowConstraint {
  ConstraintKind kind = ConstraintKind::kNone;
  double target = 1.0;  // finite, >= 0
  double p = 2.0;       // > 0; kInfinity selects max |x|
  double eps = 1e-12;   // finite, >= 0; torch.embedding_renorm_ uses 1e-7
};

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kSGD;
  double lr = 0.01;
  double eps = 1e-10;  // Adagrad 1e-10, row-wise Adagrad 1e-8, Adam 1e-8
  double weight_decay = 0.0;
  WeightDecayMode weight_decay_mode = WeightDecayMode::kL2;
  double lr_decay = 0.0;  // kAdagrad only
  double beta1 = 0.9;     // kAdam only, in [0, 1)
  double beta2 = 0.999;   // kAdam only, in [0, 1)
  bool caffe2_sign = false;  // kAdagrad only: w += lr * update, any sign of lr
  std::int64_t step = 1;     // this step's number, from 1 (Adagrad's lr_decay,
                             // Adam's bias correction, stochastic rounding)
  double initial_accumulator_value = 0.0;  // SparseOptimizer's new Adagrad sums
  RowConstraint constraint;
  Rounding rounding = Rounding::kNearestEven;
  std::uint64_t seed = 0;  // stochastic rounding
  NonFinitePolicy non_finite = NonFinitePolicy::kSkip;
  int num_threads = 0;  // 0: every core the OpenMP runtime offers
  Backend backend = Backend::kAuto;
};

// The options of each optimizer with its torch (or FBGEMM) defaults.
SPARSENORM_API OptimizerOptions SgdOptions(double lr, double weight_decay = 0.0);
SPARSENORM_API OptimizerOptions AdagradOptions(double lr = 0.01, double lr_decay = 0.0,
                                               double weight_decay = 0.0, double eps = 1e-10);
SPARSENORM_API OptimizerOptions RowWiseAdagradOptions(
    double lr = 0.01, double eps = 1e-8, double weight_decay = 0.0,
    WeightDecayMode weight_decay_mode = WeightDecayMode::kNone);
SPARSENORM_API OptimizerOptions AdamOptions(double lr = 1e-3, double beta1 = 0.9,
                                            double beta2 = 0.999, double eps = 1e-8);
// Caffe2's SparseAdagrad: lr as Caffe2 passes it (negative for descent),
// epsilon 1e-5, weight decay fused into the gradient.
SPARSENORM_API OptimizerOptions Caffe2SparseAdagradOptions(double lr, double epsilon = 1e-5,
                                                           double weight_decay = 0.0);

// The state tables of one table's optimizer. Which ones are used depends on
// the kind (see the rules above); the others are ignored. Their dtype is
// the table's arithmetic type (float64 for float64 tables, float32 else).
struct OptimizerState {
  Table sum;         // kAdagrad: rows x cols; kRowWiseAdagrad: rows x 1
  Table exp_avg;     // kAdam: rows x cols
  Table exp_avg_sq;  // kAdam: rows x cols
};

// A sparse gradient: row i of `values` belongs to table row indices[i].
SPARSENORM_API Status OptimizerStep(Table table, const OptimizerState& state, Indices indices,
                                    ConstTable values, const OptimizerOptions& options,
                                    RowStats* stats = nullptr) noexcept;

// A dense gradient: `gradient` has the table's shape; every row is updated.
SPARSENORM_API Status OptimizerStepDense(Table table, const OptimizerState& state,
                                         ConstTable gradient, const OptimizerOptions& options,
                                         RowStats* stats = nullptr) noexcept;

// One table of OptimizerStepMany: the arguments of OptimizerStep (sparse:
// `indices` and one row of `values` per index) or, with dense = true, of
// OptimizerStepDense (`values` has the table's shape; `indices` unused).
struct StepBatchEntry {
  Table table;
  OptimizerState state;
  Indices indices;
  ConstTable values;
  OptimizerOptions options;
  bool dense = false;
};

// The step on many tables in one call (an embedding model's tables, as
// FBGEMM's table-batched embeddings update them), each with its own dtype,
// shape, optimizer, options and state. Everything is checked before
// anything is written: each entry as OptimizerStep checks it, every index
// and, under NonFinitePolicy::kError, every gradient element; and that no
// table or state table shares memory with another entry's table, state,
// gradient or indices. When an entry is bad, no table or state changes and
// the message starts with "entries[k]: " (or names the two entries that
// share memory). Then the rows of all the tables go to the threads as one
// piece of work. options.num_threads and options.backend must be the same
// in every entry. Each table's result is bit-for-bit the result of its own
// OptimizerStep call. `stats`, when not empty, has one element per entry.
SPARSENORM_API Status OptimizerStepMany(std::span<const StepBatchEntry> entries,
                                        std::span<RowStats> stats = {}) noexcept;

// An optimizer that owns its state and counts its steps: state allocated
// (zero; Adagrad sums at initial_accumulator_value) when it is created,
// options.step set by Step.
class SPARSENORM_API SparseOptimizer {
 public:
  // Fails (kInvalidArgument, kUnsupported, kOutOfMemory) where the options
  // or the table's shape are invalid; `*out` is then left empty.
  static Status Create(Table table, const OptimizerOptions& options,
                       std::unique_ptr<SparseOptimizer>* out) noexcept;

  // One step; the step count advances only when the call succeeds.
  Status Step(Indices indices, ConstTable values, RowStats* stats = nullptr) noexcept;
  Status StepDense(ConstTable gradient, RowStats* stats = nullptr) noexcept;

  const OptimizerState& state() const noexcept { return state_; }
  std::int64_t steps_taken() const noexcept { return steps_; }
  // Hyperparameters may change between steps (a learning-rate schedule);
  // `step` is overwritten by Step.
  OptimizerOptions& options() noexcept { return options_; }

 private:
  SparseOptimizer(Table table, const OptimizerOptions& options) : table_(table), options_(options) {}

  Table table_;
  OptimizerOptions options_;
  OptimizerState state_;
  std::vector<unsigned char> storage_;  // the state tables
  std::int64_t steps_ = 0;
};

}  // namespace sparsenorm

#endif  // SPARSENORM_OPTIM_H_
