// The optimizer step, scalar and serial, written from the contract in
// include/sparsenorm/optim.h: the rules again (not src/common/optim_rules.h),
// the grouping of repeats by a plain ordered map, the norm from
// reference::Norm and the scale from reference::EffectiveScale.
//
// The update is computed in the arithmetic type C, one IEEE operation at a
// time in the contract's order, so that the fast paths can be held to the
// same bits; only the sums over a row (row-wise Adagrad's sum of squares,
// the norm) differ from theirs in the order of the additions.

#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include "common/stochastic_rounding.h"
#include "core/optim_backend.h"
#include "reference/reference.h"
#include "sparsenorm/optim.h"

namespace sparsenorm::reference {
namespace {

template <class C>
C At(const unsigned char* row, DType dtype, std::int64_t k) {
  return static_cast<C>(Load(row, dtype, k));
}

template <class C>
C* StateRow(const StepArray& a, std::int64_t r) {
  return reinterpret_cast<C*>(a.data + r * a.stride_bytes);
}

template <class C>
bool AllFinite(const std::vector<C>& x) {
  for (C v : x) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

// The gradient row of table row r: its occurrences summed in list order,
// kRepeatGroup at a time, the group sums then added in order.
template <class C>
std::vector<C> SummedGradient(const StepProblem& p, const std::vector<std::int64_t>& positions) {
  std::vector<C> total;
  for (std::size_t start = 0; start < positions.size(); start += kRepeatGroup) {
    const std::size_t end = std::min(positions.size(), start + static_cast<std::size_t>(kRepeatGroup));
    std::vector<C> group(static_cast<std::size_t>(p.cols));
    for (std::size_t i = start; i < end; ++i) {
      const unsigned char* g = p.grad + positions[i] * p.grad_stride_bytes;
      for (std::int64_t k = 0; k < p.cols; ++k) {
        const C v = At<C>(g, p.grad_dtype, k);
        group[k] = i == start ? v : group[k] + v;
      }
    }
    if (start == 0) {
      total = group;
    } else {
      for (std::int64_t k = 0; k < p.cols; ++k) total[k] = total[k] + group[k];
    }
  }
  return total;
}

// The rules of include/sparsenorm/optim.h for one row: w becomes w', the
// row's state values become their new values.
template <class C>
void Update(const StepProblem& p, const StepCoefficients<C>& k, const std::vector<C>& g,
            std::vector<C>& w, std::vector<C>& s0, std::vector<C>& s1) {
  const bool l2 = p.rule.decay == DecayKind::kL2;
  const bool decoupled = p.rule.decay == DecayKind::kDecoupled;
  const auto n = static_cast<std::size_t>(p.cols);
  switch (p.rule.kind) {
    case StepKind::kSGD:
      for (std::size_t j = 0; j < n; ++j) {
        const C gd = l2 ? g[j] + k.wd * w[j] : g[j];
        const C base = decoupled ? w[j] * k.decay : w[j];
        w[j] = base + k.step * gd;
      }
      break;
    case StepKind::kAdagrad:
      for (std::size_t j = 0; j < n; ++j) {
        const C gd = l2 ? g[j] + k.wd * w[j] : g[j];
        s0[j] = s0[j] + gd * gd;
        const C base = decoupled ? w[j] * k.decay : w[j];
        w[j] = base + k.step * (gd / (std::sqrt(s0[j]) + k.eps));
      }
      break;
    case StepKind::kRowWiseAdagrad: {
      C squares = 0;
      for (std::size_t j = 0; j < n; ++j) {
        const C gd = l2 ? g[j] + k.wd * w[j] : g[j];
        squares = squares + gd * gd;
      }
      s0[0] = s0[0] + squares / k.cols;
      const C multiplier = k.lr / (std::sqrt(s0[0]) + k.eps);
      const C correction = l2 ? C(1) - multiplier * k.wd : decoupled ? k.decay : C(1);
      for (std::size_t j = 0; j < n; ++j) w[j] = correction * w[j] - multiplier * g[j];
      break;
    }
    case StepKind::kAdam:
      for (std::size_t j = 0; j < n; ++j) {
        const C gd = l2 ? g[j] + k.wd * w[j] : g[j];
        s0[j] = s0[j] + (gd - s0[j]) * k.one_minus_beta1;
        s1[j] = s1[j] + (gd * gd - s1[j]) * k.one_minus_beta2;
        const C base = decoupled ? w[j] * k.decay : w[j];
        w[j] = base + (s0[j] / (std::sqrt(s1[j]) + k.eps)) * k.step;
      }
      break;
  }
}

// Stores the exact value v (a C value, or the product of one and the scale)
// to element k of a table row, rounded once: to nearest, or stochastically.
void Store(const StepProblem& p, unsigned char* row, std::int64_t r, std::int64_t k, double v) {
  if (!p.stochastic) {
    StoreRounded(row, p.dtype, k, v);
    return;
  }
  const std::uint32_t u = stochastic::ElementBits(stochastic::RowKey(p.seed, p.step, r), k);
  const std::uint16_t bits = p.dtype == DType::kFloat16 ? stochastic::Round<stochastic::Half>(v, u)
                                                        : stochastic::Round<stochastic::BFloat16>(v, u);
  std::memcpy(row + 2 * k, &bits, 2);
}

// What must hold before anything is written: every index in range and,
// under NonFinitePolicy::kError, every gradient element finite.
Finding Check(const StepProblem& p) {
  for (std::int64_t i = 0; i < p.num_indices; ++i) {
    const std::int64_t r = p.dense() ? i : IndexValue(p.indices, p.index_type, i);
    if (r < 0 || r >= p.rows) return RowIndexFinding(i, r, p.rows);
  }
  if (p.nonfinite_error) {
    for (std::int64_t i = 0; i < p.num_indices; ++i) {
      const unsigned char* g = p.grad + i * p.grad_stride_bytes;
      for (std::int64_t k = 0; k < p.cols; ++k) {
        if (!std::isfinite(Load(g, p.grad_dtype, k))) {
          return NonFiniteGradientFinding(i, p.dense() ? i : IndexValue(p.indices, p.index_type, i));
        }
      }
    }
  }
  return {};
}

// The step on a checked problem.
template <class C>
void Write(const StepProblem& p, RowStats* stats) {
  // Every table row's gradient rows, in list order.
  std::map<std::int64_t, std::vector<std::int64_t>> rows;
  for (std::int64_t i = 0; i < p.num_indices; ++i) {
    rows[p.dense() ? i : IndexValue(p.indices, p.index_type, i)].push_back(i);
  }

  const StepCoefficients<C>& k = CoefficientsOf<C>(p.rule);
  const NormalizeOptions constraint = OptionsOf(p.constraint);
  const auto n = static_cast<std::size_t>(p.cols);
  const std::size_t state_cols = HasRowState(p.rule.kind) ? 1 : n;
  // A table of zero columns has state rows of zero elements: nothing to
  // copy (and memcpy may not be given the null data of an empty vector).
  const int state_count =
      state_cols == 0 ? 0 : ElementStateCount(p.rule.kind) + (HasRowState(p.rule.kind) ? 1 : 0);
  *stats = RowStats{};
  stats->distinct_rows = static_cast<std::int64_t>(rows.size());
  for (const auto& [r, positions] : rows) {
    const std::vector<C> g = SummedGradient<C>(p, positions);
    unsigned char* row = p.table.data + r * p.table.stride_bytes;
    std::vector<C> w(n), s[2] = {std::vector<C>(state_cols), std::vector<C>(state_cols)};
    for (std::size_t j = 0; j < n; ++j) w[j] = At<C>(row, p.dtype, static_cast<std::int64_t>(j));
    for (int i = 0; i < state_count; ++i) {
      std::memcpy(s[i].data(), StateRow<C>(p.state[i], r), state_cols * sizeof(C));
    }
    Update<C>(p, k, g, w, s[0], s[1]);
    if (!AllFinite(g) || !AllFinite(w) || !AllFinite(s[0]) || !AllFinite(s[1])) {
      ++stats->nonfinite_rows;
      continue;
    }
    for (int i = 0; i < state_count; ++i) {
      std::memcpy(StateRow<C>(p.state[i], r), s[i].data(), state_cols * sizeof(C));
    }
    std::vector<double> x(w.begin(), w.end());
    AppliedScale scale{1.0, 0};
    bool scaled = false;
    if (p.has_constraint) {
      const double norm = Norm(x, p.constraint.p);
      scaled = IsScaled(norm, constraint);
      if (scaled) scale = EffectiveScale(norm, p.dtype, constraint);
    }
    for (std::size_t j = 0; j < n; ++j) {
      const double v = scaled ? std::ldexp(x[j], scale.shift) * scale.factor : x[j];
      Store(p, row, r, static_cast<std::int64_t>(j), v);
    }
    if (scaled) ++stats->rows_scaled;
  }
}

void Write(const StepProblem& p, RowStats* stats) {
  if (p.dtype == DType::kFloat64) {
    Write<double>(p, stats);
  } else {
    Write<float>(p, stats);
  }
}

}  // namespace

Finding OptimizerStep(const StepProblem& p, RowStats* stats) {
  if (Finding f = Check(p)) return f;
  Write(p, stats);
  return {};
}

BatchFinding OptimizerStepMany(const StepProblem* problems, std::int64_t count, RowStats* stats) {
  for (std::int64_t k = 0; k < count; ++k) {
    if (Finding f = Check(problems[k])) return BatchFinding{k, f};
  }
  for (std::int64_t k = 0; k < count; ++k) Write(problems[k], &stats[k]);
  return {};
}

}  // namespace sparsenorm::reference
