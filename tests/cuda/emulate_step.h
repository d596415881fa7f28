// A host replay of the optimizer step's kernels (src/cuda/optim_kernels.cu)
// on host memory: the checks in the kernels' order of reports, then every
// distinct row updated with the device's own per-element code
// (src/cuda/device_math.h, src/common/) in the kernels' order: the gradient
// rows of a row summed in list order (the radix sort is stable), a repeat
// group at a time, the group sums added in order; lane l of StepGroupSize(
// cols) lanes owning columns l, l + G, ...; row sums combined by an XOR
// butterfly; the constraint's norm as emulate.h replays ProcessVector's.
// For p in {1, 2, infinity} the result is bit-for-bit the device's; for
// other p, CUDA's pow may differ from the host's in the last bits.
//
// Runs on a detail::StepLaunch whose pointers are host memory: the launch
// that detail::StepLaunchOf (src/cuda/results.cc) makes of a validated
// problem, the one the device gets. Host-only, not part of the library.
#ifndef SPARSENORM_TESTS_CUDA_EMULATE_STEP_H_
#define SPARSENORM_TESTS_CUDA_EMULATE_STEP_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "cuda/device_math.h"
#include "cuda/launch.h"
#include "emulate.h"

namespace sparsenorm::cuda::emulate {

// The lanes' values combined by an XOR butterfly (every lane ends with
// the same bits).
template <class C>
C ButterflyOf(std::vector<C> lanes) {
  for (std::size_t off = lanes.size() / 2; off > 0; off /= 2) {
    std::vector<C> next = lanes;
    for (std::size_t l = 0; l < lanes.size(); ++l) next[l] = lanes[l] + lanes[l ^ off];
    lanes.swap(next);
  }
  return lanes[0];
}

// The rows of the sorted list: each distinct valid row with its positions
// in list order, rows ascending.
inline std::vector<std::pair<std::int64_t, std::vector<std::int64_t>>> Segments(const detail::StepLaunch& job) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(job.num_indices));
  std::iota(order.begin(), order.end(), 0);
  auto row = [&](std::int64_t i) { return static_cast<std::int64_t>(detail::LoadIndex(job.indices, job.index_type, i)); };
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return row(a) < row(b); });
  std::vector<std::pair<std::int64_t, std::vector<std::int64_t>>> segments;
  for (std::int64_t i : order) {
    if (segments.empty() || segments.back().first != row(i)) segments.push_back({row(i), {}});
    segments.back().second.push_back(i);
  }
  return segments;
}

template <class T, class G>
Outcome StepRow(const detail::StepLaunch& job, std::int64_t row, const std::vector<std::int64_t>& positions) {
  using C = typename Element<T>::Compute;
  const std::int64_t cols = job.cols;
  const auto n = static_cast<std::size_t>(cols);
  const G* grad = static_cast<const G*>(job.grad);
  auto grad_at = [&](std::int64_t position, std::int64_t j) {
    return static_cast<C>(Element<G>::Widen(grad[position * job.grad_stride + j]));
  };

  // The summed gradient: in list order; past one repeat group, each group's
  // sum (a partial sum of the device), then the sums in order.
  std::vector<C> g(n);
  const auto count = static_cast<std::int64_t>(positions.size());
  for (std::int64_t j = 0; j < cols; ++j) {
    if (count <= kRepeatGroupSize) {
      C s = grad_at(positions[0], j);
      for (std::int64_t i = 1; i < count; ++i) s = s + grad_at(positions[static_cast<std::size_t>(i)], j);
      g[static_cast<std::size_t>(j)] = s;
      continue;
    }
    C total = C(0);
    for (std::int64_t k = 0; k < detail::RepeatGroupsOf(count); ++k) {
      const std::int64_t b = k * kRepeatGroupSize, e = std::min(count, b + kRepeatGroupSize);
      C s = grad_at(positions[static_cast<std::size_t>(b)], j);
      for (std::int64_t i = b + 1; i < e; ++i) s = s + grad_at(positions[static_cast<std::size_t>(i)], j);
      total = k == 0 ? s : total + s;
    }
    g[static_cast<std::size_t>(j)] = total;
  }

  T* w_row = static_cast<T*>(job.table.data) + row * job.table.stride;
  C* s0 = job.state[0].data != nullptr ? static_cast<C*>(job.state[0].data) + row * job.state[0].stride : nullptr;
  C* s1 = job.state[1].data != nullptr ? static_cast<C*>(job.state[1].data) + row * job.state[1].stride : nullptr;
  const StepRule& rule = job.rule;
  const StepCoefficients<C>& k = CoefficientsOf<C>(rule);
  const bool rowwise = HasRowState(rule.kind);
  const int element_states = ElementStateCount(rule.kind);
  const int lanes = num::StepGroupSize(cols);

  bool finite = true;
  RowWiseFactors<C> f{C(0), C(0), C(1)};
  if (rowwise) {
    std::vector<C> squares(static_cast<std::size_t>(lanes), C(0));
    for (int l = 0; l < lanes; ++l) {
      for (std::int64_t j = l; j < cols; j += lanes) {
        squares[static_cast<std::size_t>(l)] =
            squares[static_cast<std::size_t>(l)] +
            RowWiseSquare<C>(Element<T>::Widen(w_row[j]), g[static_cast<std::size_t>(j)], rule.decay, k);
        finite = finite && num::IsFinite(g[static_cast<std::size_t>(j)]);
      }
    }
    f = RowWiseRow<C>(s0[0], ButterflyOf(squares), rule.decay, k);
    finite = finite && num::IsFinite(f.sum);
  }
  std::vector<num::UpdatedElement<C>> updated(n);
  std::vector<C> w_new(n);
  for (std::size_t j = 0; j < n; ++j) {
    const C w = Element<T>::Widen(w_row[j]);
    if (rowwise) {
      const C x = RowWiseElement<C>(w, g[j], f);
      updated[j] = num::UpdatedElement<C>{x, C(0), C(0), num::IsFinite(x)};
    } else {
      updated[j] = num::UpdateElement<C>(rule, w, g[j], element_states > 0 ? s0[j] : C(0),
                                         element_states > 1 ? s1[j] : C(0));
    }
    finite = finite && updated[j].finite;
    w_new[j] = updated[j].w;
  }
  if (!finite) return Outcome::kNonFinite;

  Scale scale = LeaveScale();
  if (job.has_constraint) scale = Decide<num::DeviceTraits<C>>(w_new.data(), cols, lanes, 1, job.constraint).scale;
  const std::uint32_t key = job.stochastic ? stochastic::RowKey(job.seed, job.step, row) : 0u;
  for (std::size_t j = 0; j < n; ++j) {
    if (element_states > 0) s0[j] = updated[j].s0;
    if (element_states > 1) s1[j] = updated[j].s1;
    w_row[j] = num::StoreElement<T>(w_new[j], scale, job.stochastic, key, static_cast<std::int64_t>(j));
  }
  if (rowwise) s0[0] = f.sum;
  return scale.action == Action::kScale ? Outcome::kScaled : Outcome::kLeft;
}

// The checks: every index against [0, rows) (PrepareKernel), under the
// error policy every gradient row (CheckGradientKernel); their first
// positions, as the header holds them before the last kernel runs.
template <class G>
detail::StepHeader StepChecks(const detail::StepLaunch& job) {
  detail::StepHeader h{};
  if (!job.dense()) {
    for (std::int64_t i = 0; i < job.num_indices; ++i) {
      if (detail::OutOfRange(detail::LoadIndex(job.indices, job.index_type, i), job.rows)) Offer(&h.bad, i);
    }
  }
  if (job.nonfinite_error) {
    const G* grad = static_cast<const G*>(job.grad);
    for (std::int64_t i = 0; i < job.num_indices; ++i) {
      if (!VectorFinite<num::DeviceTraits<G>>(grad + i * job.grad_stride, job.cols, 1)) Offer(&h.nonfinite, i);
    }
  }
  return h;
}

template <class T, class G>
detail::StepHeader StepT(const detail::StepLaunch& job) {
  detail::StepHeader h = StepChecks<G>(job);
  if (!detail::StepFailed(h)) {
    std::vector<std::pair<std::int64_t, std::vector<std::int64_t>>> segments;
    if (job.dense()) {
      for (std::int64_t r = 0; r < job.rows; ++r) segments.push_back({r, {r}});
    } else {
      segments = Segments(job);
      h.distinct = segments.size();
    }
    if (job.cols > 0) {
      for (const auto& [row, positions] : segments) {
        const Outcome o = StepRow<T, G>(job, row, positions);
        h.scaled += o == Outcome::kScaled;
        h.nonfinite_rows += o == Outcome::kNonFinite;
      }
    }
  }
  detail::FinishStepHeader(job.indices, job.index_type, job.num_indices, job.rows, &h);
  return h;
}

// The whole step on host arrays; the header the device holds at the end.
inline detail::StepHeader Step(const detail::StepLaunch& job) {
  detail::StepHeader h{};
  VisitDType(job.dtype, [&](auto t) {
    using T = TypeOf<decltype(t)>;
    using C = typename Element<T>::Compute;
    if (job.grad_dtype == job.dtype) {
      h = StepT<T, T>(job);
    } else if constexpr (!std::is_same_v<T, C>) {
      h = StepT<T, C>(job);
    }
  });
  return h;
}

}  // namespace sparsenorm::cuda::emulate

#endif  // SPARSENORM_TESTS_CUDA_EMULATE_STEP_H_
