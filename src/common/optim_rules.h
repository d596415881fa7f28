// The optimizers' update of one element (and the row-wise Adagrad's one
// row statistic), in one place for the CPU kernels' scalar code, the CUDA
// kernels and the host replay of the device arithmetic. The CPU's SIMD
// kernels (src/cpu/optim_kernels.cc) perform the same operations in the
// same order, lane by lane, so that every backend stores the same bits for
// the same summed gradient; src/reference/optim.cc writes the rules again,
// independently, to judge them. The contract is include/sparsenorm/optim.h.
//
// Every operation is a separately rounded IEEE operation of the arithmetic
// type C (float or double): the library is compiled without contraction
// into fused multiply-adds (-ffp-contract=off, nvcc --fmad=false), and
// division and square root are correctly rounded on both sides.
#ifndef SPARSENORM_COMMON_OPTIM_RULES_H_
#define SPARSENORM_COMMON_OPTIM_RULES_H_

#include <math.h>
#include <stdint.h>

#include "common/host_device.h"

namespace sparsenorm {

SN_HD float Sqrt(float x) { return sqrtf(x); }
SN_HD double Sqrt(double x) { return sqrt(x); }

// The occurrences of one row whose gradient rows are summed before their
// partial sums are added (include/sparsenorm/optim.h, "Repeats", where it is
// kRepeatGroup; src/core/optim.cc checks that the two agree).
inline constexpr int64_t kRepeatGroupSize = 64;

// Mirrors of the public enumerations of include/sparsenorm/optim.h (which
// is C++20 and not for the device).
enum class StepKind : int { kSGD = 0, kAdagrad = 1, kRowWiseAdagrad = 2, kAdam = 3 };
enum class DecayKind : int { kNone = 0, kL2 = 1, kDecoupled = 2 };

// The hyperparameters as they enter element arithmetic: evaluated in
// float64 by the front end, then rounded to C.
template <class C>
struct StepCoefficients {
  C step;       // added multiple of the update: -lr (SGD), -clr or +lr (Adagrad,
                // caffe2_sign), -step_size (Adam); unused by row-wise Adagrad
  C lr;         // row-wise Adagrad's lr
  C eps;
  C wd;         // weight_decay
  C decay;      // kDecoupled: 1 - lr * wd (Adagrad: 1 - clr * wd)
  C one_minus_beta1;
  C one_minus_beta2;
  C cols;       // row-wise Adagrad: the row length the mean divides by
};

struct StepRule {
  StepKind kind;
  DecayKind decay;
  StepCoefficients<float> f;
  StepCoefficients<double> d;
};

template <class C>
SN_HD const StepCoefficients<C>& CoefficientsOf(const StepRule& rule) {
  if constexpr (sizeof(C) == sizeof(float)) {
    return rule.f;
  } else {
    return rule.d;
  }
}

// How many state values each table element has (Adagrad: its sum; Adam: its
// two moments), and whether the state is one value per row instead.
SN_HD int ElementStateCount(StepKind kind) {
  return kind == StepKind::kAdagrad ? 1 : kind == StepKind::kAdam ? 2 : 0;
}
SN_HD bool HasRowState(StepKind kind) { return kind == StepKind::kRowWiseAdagrad; }

// ---------------------------------------------------------------------------
// One element. `w` is the table element widened to C, `g` the summed
// gradient element; the results are written through the pointers.

// g + wd * w under kL2, g otherwise.
template <class C>
SN_HD C DecayedGradient(C g, C w, DecayKind decay, const StepCoefficients<C>& k) {
  return decay == DecayKind::kL2 ? g + k.wd * w : g;
}

// w * (1 - lr * wd) under kDecoupled, w otherwise.
template <class C>
SN_HD C DecoupledWeight(C w, DecayKind decay, const StepCoefficients<C>& k) {
  return decay == DecayKind::kDecoupled ? w * k.decay : w;
}

template <class C>
SN_HD C SgdElement(C w, C g, DecayKind decay, const StepCoefficients<C>& k) {
  const C gd = DecayedGradient(g, w, decay, k);
  return DecoupledWeight(w, decay, k) + k.step * gd;
}

template <class C>
SN_HD C AdagradElement(C w, C g, C* sum, DecayKind decay, const StepCoefficients<C>& k) {
  const C gd = DecayedGradient(g, w, decay, k);
  const C s = *sum + gd * gd;
  *sum = s;
  return DecoupledWeight(w, decay, k) + k.step * (gd / (Sqrt(s) + k.eps));
}

template <class C>
SN_HD C AdamElement(C w, C g, C* exp_avg, C* exp_avg_sq, DecayKind decay,
                    const StepCoefficients<C>& k) {
  const C gd = DecayedGradient(g, w, decay, k);
  const C m = *exp_avg + (gd - *exp_avg) * k.one_minus_beta1;
  const C v = *exp_avg_sq + (gd * gd - *exp_avg_sq) * k.one_minus_beta2;
  *exp_avg = m;
  *exp_avg_sq = v;
  return DecoupledWeight(w, decay, k) + (m / (Sqrt(v) + k.eps)) * k.step;
}

// Row-wise Adagrad. Per row: the term each element adds to the sum of
// squares (in any order the backend fixes), then the row's multiplier and
// correction from that sum, then each element.
template <class C>
SN_HD C RowWiseSquare(C w, C g, DecayKind decay, const StepCoefficients<C>& k) {
  const C gd = DecayedGradient(g, w, decay, k);
  return gd * gd;
}

template <class C>
struct RowWiseFactors {
  C sum;         // the row's new state
  C multiplier;  // lr / (sqrt(sum) + eps)
  C correction;  // 1 - multiplier * wd (kL2), 1 - lr * wd (kDecoupled), 1
};

template <class C>
SN_HD RowWiseFactors<C> RowWiseRow(C old_sum, C sum_of_squares, DecayKind decay,
                                   const StepCoefficients<C>& k) {
  RowWiseFactors<C> r;
  r.sum = old_sum + sum_of_squares / k.cols;
  r.multiplier = k.lr / (Sqrt(r.sum) + k.eps);
  r.correction = decay == DecayKind::kL2          ? C(1) - r.multiplier * k.wd
                 : decay == DecayKind::kDecoupled ? k.decay
                                                  : C(1);
  return r;
}

template <class C>
SN_HD C RowWiseElement(C w, C g, const RowWiseFactors<C>& r) {
  return r.correction * w - r.multiplier * g;
}

}  // namespace sparsenorm

#endif  // SPARSENORM_COMMON_OPTIM_RULES_H_
