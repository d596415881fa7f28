// The optimizer step's CPU kernels, compiled once per SIMD target and
// dispatched at run time (as rows_kernels.cc).
//
// Per group of the index list (one table row): sum its gradient rows into a
// thread's scratch row, compute the updated row and state into scratch rows
// with the rules of src/common/optim_rules.h, lane by lane with the same
// operations in the same order (no fused multiply-add), check that all of it
// is finite, then write the state and the constrained, rounded row. The
// table row, its state and the gradient rows are each read once and the
// table row and state written once; the scratch rows stay in L1.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/optim_kernels.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include "common/optim_rules.h"
#include "common/stochastic_rounding.h"
#include "cpu/optim_cpu.h"
#include "cpu/vector_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace sparsenorm::cpu {
namespace HWY_NAMESPACE {

template <class T>
HWY_INLINE const T* RowAt(const unsigned char* base, std::int64_t stride, std::int64_t r) {
  return reinterpret_cast<const T*>(base + r * stride);
}

// ---------------------------------------------------------------------------
// Gradient sums in the arithmetic type C.

template <class G, class C>
HWY_INLINE void CopyWide(const G* HWY_RESTRICT x, C* HWY_RESTRICT acc, size_t n) {
  const hn::ScalableTag<C> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(LoadWide(d, x + i), d, acc + i);
  for (; i < n; ++i) acc[i] = static_cast<C>(Widen(x[i]));
}

template <class G, class C>
HWY_INLINE void AddWide(const G* HWY_RESTRICT x, C* HWY_RESTRICT acc, size_t n) {
  const hn::ScalableTag<C> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Add(hn::LoadU(d, acc + i), LoadWide(d, x + i)), d, acc + i);
  }
  for (; i < n; ++i) acc[i] = acc[i] + static_cast<C>(Widen(x[i]));
}

// The sum, in list order, of the gradient rows at positions[b .. e).
template <class G, class C>
HWY_INLINE void SumPositions(const StepJob& job, std::int64_t b, std::int64_t e, C* acc) {
  const auto n = static_cast<size_t>(job.cols);
  CopyWide(RowAt<G>(job.grad, job.grad_stride_bytes, job.positions[b]), acc, n);
  for (std::int64_t i = b + 1; i < e; ++i) {
    AddWide(RowAt<G>(job.grad, job.grad_stride_bytes, job.positions[i]), acc, n);
  }
}

// The summed gradient of group s (include/sparsenorm/optim.h, "Repeats").
template <class G, class C>
HWY_INLINE void GroupGradient(const StepJob& job, std::int64_t s, C* g) {
  const auto n = static_cast<size_t>(job.cols);
  if (job.positions == nullptr) {  // dense: gradient row s
    CopyWide(RowAt<G>(job.grad, job.grad_stride_bytes, s), g, n);
    return;
  }
  const std::int64_t b = job.begin[s], e = job.begin[s + 1];
  if (e - b <= kRepeatGroupSize) {
    SumPositions<G>(job, b, e, g);
    return;
  }
  const std::int64_t repeat_groups = (e - b + kRepeatGroupSize - 1) / kRepeatGroupSize;
  const unsigned char* first = job.partials + job.partial[s] * job.partial_stride_bytes;
  CopyWide(reinterpret_cast<const C*>(first), g, n);
  for (std::int64_t k = 1; k < repeat_groups; ++k) {
    AddWide(reinterpret_cast<const C*>(first + k * job.partial_stride_bytes), g, n);
  }
}

// ---------------------------------------------------------------------------
// The update. Each kernel reads the table row w (storage type T), the
// summed gradient g and the state rows s0, s1, and writes w' and the new
// state into the scratch rows; it returns false when any of g, w' and the
// new state is not finite. `check` accumulates x - x, which is 0 for every
// finite x and NaN otherwise.

template <class V>
HWY_INLINE V Check(V check, V x) {
  return hn::Add(check, hn::Sub(x, x));
}

template <class D>
HWY_INLINE bool Finite(D d, hn::Vec<D> check, hn::TFromD<D> tail) {
  return hn::GetLane(hn::SumOfLanes(d, check)) == 0 && tail - tail == 0;
}

template <class C, DecayKind kDecay, class D>
HWY_INLINE hn::Vec<D> DecayedGradientV(D d, hn::Vec<D> g, hn::Vec<D> w, const StepCoefficients<C>& k) {
  if constexpr (kDecay == DecayKind::kL2) {
    return hn::Add(g, hn::Mul(hn::Set(d, k.wd), w));
  } else {
    return g;
  }
}

template <class C, DecayKind kDecay, class D>
HWY_INLINE hn::Vec<D> DecoupledWeightV(D d, hn::Vec<D> w, const StepCoefficients<C>& k) {
  if constexpr (kDecay == DecayKind::kDecoupled) {
    return hn::Mul(w, hn::Set(d, k.decay));
  } else {
    return w;
  }
}

template <class T, class C, DecayKind kDecay>
HWY_INLINE bool SgdRow(const T* HWY_RESTRICT w, const C* HWY_RESTRICT g, C* HWY_RESTRICT out,
                       size_t n, const StepCoefficients<C>& k) {
  const hn::ScalableTag<C> d;
  const size_t N = hn::Lanes(d);
  const auto step = hn::Set(d, k.step);
  auto check = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto wv = LoadWide(d, w + i);
    const auto gv = hn::LoadU(d, g + i);
    const auto gd = DecayedGradientV<C, kDecay>(d, gv, wv, k);
    const auto result = hn::Add(DecoupledWeightV<C, kDecay>(d, wv, k), hn::Mul(step, gd));
    hn::StoreU(result, d, out + i);
    check = Check(Check(check, gv), result);
  }
  C tail = 0;
  for (; i < n; ++i) {
    out[i] = SgdElement<C>(static_cast<C>(Widen(w[i])), g[i], kDecay, k);
    tail = tail + (g[i] - g[i]) + (out[i] - out[i]);
  }
  return Finite(d, check, tail);
}

template <class T, class C, DecayKind kDecay>
HWY_INLINE bool AdagradRow(const T* HWY_RESTRICT w, const C* HWY_RESTRICT g,
                           const C* HWY_RESTRICT sum, C* HWY_RESTRICT out,
                           C* HWY_RESTRICT sum_out, size_t n, const StepCoefficients<C>& k) {
  const hn::ScalableTag<C> d;
  const size_t N = hn::Lanes(d);
  const auto step = hn::Set(d, k.step);
  const auto eps = hn::Set(d, k.eps);
  auto check = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto wv = LoadWide(d, w + i);
    const auto gv = hn::LoadU(d, g + i);
    const auto gd = DecayedGradientV<C, kDecay>(d, gv, wv, k);
    const auto s = hn::Add(hn::LoadU(d, sum + i), hn::Mul(gd, gd));
    const auto result = hn::Add(DecoupledWeightV<C, kDecay>(d, wv, k),
                                hn::Mul(step, hn::Div(gd, hn::Add(hn::Sqrt(s), eps))));
    hn::StoreU(s, d, sum_out + i);
    hn::StoreU(result, d, out + i);
    check = Check(Check(Check(check, gv), s), result);
  }
  C tail = 0;
  for (; i < n; ++i) {
    C s = sum[i];
    out[i] = AdagradElement<C>(static_cast<C>(Widen(w[i])), g[i], &s, kDecay, k);
    sum_out[i] = s;
    tail = tail + (g[i] - g[i]) + (s - s) + (out[i] - out[i]);
  }
  return Finite(d, check, tail);
}

template <class T, class C, DecayKind kDecay>
HWY_INLINE bool AdamRow(const T* HWY_RESTRICT w, const C* HWY_RESTRICT g,
                        const C* HWY_RESTRICT exp_avg, const C* HWY_RESTRICT exp_avg_sq,
                        C* HWY_RESTRICT out, C* HWY_RESTRICT avg_out, C* HWY_RESTRICT sq_out,
                        size_t n, const StepCoefficients<C>& k) {
  const hn::ScalableTag<C> d;
  const size_t N = hn::Lanes(d);
  const auto step = hn::Set(d, k.step);
  const auto eps = hn::Set(d, k.eps);
  const auto b1 = hn::Set(d, k.one_minus_beta1);
  const auto b2 = hn::Set(d, k.one_minus_beta2);
  auto check = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto wv = LoadWide(d, w + i);
    const auto gv = hn::LoadU(d, g + i);
    const auto gd = DecayedGradientV<C, kDecay>(d, gv, wv, k);
    const auto m0 = hn::LoadU(d, exp_avg + i);
    const auto v0 = hn::LoadU(d, exp_avg_sq + i);
    const auto m = hn::Add(m0, hn::Mul(hn::Sub(gd, m0), b1));
    const auto v = hn::Add(v0, hn::Mul(hn::Sub(hn::Mul(gd, gd), v0), b2));
    const auto result = hn::Add(DecoupledWeightV<C, kDecay>(d, wv, k),
                                hn::Mul(hn::Div(m, hn::Add(hn::Sqrt(v), eps)), step));
    hn::StoreU(m, d, avg_out + i);
    hn::StoreU(v, d, sq_out + i);
    hn::StoreU(result, d, out + i);
    check = Check(Check(Check(Check(check, gv), m), v), result);
  }
  C tail = 0;
  for (; i < n; ++i) {
    C m = exp_avg[i], v = exp_avg_sq[i];
    out[i] = AdamElement<C>(static_cast<C>(Widen(w[i])), g[i], &m, &v, kDecay, k);
    avg_out[i] = m;
    sq_out[i] = v;
    tail = tail + (g[i] - g[i]) + (m - m) + (v - v) + (out[i] - out[i]);
  }
  return Finite(d, check, tail);
}

// The row's sum of the squares of g' (lanes, then the tail); `check` and
// `tail` accumulate g's finiteness (see Check). A column-sharded step's
// slices each compute theirs this way, so that one slice holds the
// single-process sum.
template <class T, class C, DecayKind kDecay, class V>
HWY_INLINE C RowWiseSquareSum(const T* HWY_RESTRICT w, const C* HWY_RESTRICT g, size_t n,
                              const StepCoefficients<C>& k, V* check, C* tail) {
  const hn::ScalableTag<C> d;
  const size_t N = hn::Lanes(d);
  auto squares = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto gv = hn::LoadU(d, g + i);
    const auto gd = DecayedGradientV<C, kDecay>(d, gv, LoadWide(d, w + i), k);
    squares = hn::Add(squares, hn::Mul(gd, gd));
    *check = Check(*check, gv);
  }
  C sum_of_squares = hn::GetLane(hn::SumOfLanes(d, squares));
  for (; i < n; ++i) {
    sum_of_squares = sum_of_squares + RowWiseSquare<C>(static_cast<C>(Widen(w[i])), g[i], kDecay, k);
    *tail = *tail + (g[i] - g[i]);
  }
  return sum_of_squares;
}

// `combined`, when not null, is the sum of squares of the whole row, which
// the slices of a column-sharded step combined (NaN or infinity in any
// slice's g makes it, and so the new sum, non-finite).
template <class T, class C, DecayKind kDecay>
HWY_INLINE bool RowWiseAdagradRow(const T* HWY_RESTRICT w, const C* HWY_RESTRICT g, const C* sum,
                           C* HWY_RESTRICT out, C* sum_out, size_t n,
                           const StepCoefficients<C>& k, const double* combined) {
  const hn::ScalableTag<C> d;
  const size_t N = hn::Lanes(d);
  auto check = hn::Zero(d);
  C tail = 0;
  const C sum_of_squares = combined != nullptr ? static_cast<C>(*combined)
                                               : RowWiseSquareSum<T, C, kDecay>(w, g, n, k, &check, &tail);
  const RowWiseFactors<C> f = RowWiseRow<C>(*sum, sum_of_squares, kDecay, k);
  *sum_out = f.sum;
  tail = tail + (f.sum - f.sum);
  const auto correction = hn::Set(d, f.correction);
  const auto multiplier = hn::Set(d, f.multiplier);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto result = hn::Sub(hn::Mul(correction, LoadWide(d, w + i)),
                                hn::Mul(multiplier, hn::LoadU(d, g + i)));
    hn::StoreU(result, d, out + i);
    check = Check(check, result);
  }
  for (; i < n; ++i) {
    out[i] = RowWiseElement<C>(static_cast<C>(Widen(w[i])), g[i], f);
    tail = tail + (out[i] - out[i]);
  }
  return Finite(d, check, tail);
}

template <class T, class C, DecayKind kDecay>
HWY_INLINE bool UpdateRow(const StepJob& job, const T* w, const C* g, const C* s0, const C* s1,
                          const StepScratch& scratch, const double* combined_squares) {
  const auto n = static_cast<size_t>(job.cols);
  const StepCoefficients<C>& k = CoefficientsOf<C>(job.rule);
  C* out = static_cast<C*>(scratch.w);
  switch (job.rule.kind) {
    case StepKind::kSGD:
      return SgdRow<T, C, kDecay>(w, g, out, n, k);
    case StepKind::kAdagrad:
      return AdagradRow<T, C, kDecay>(w, g, s0, out, static_cast<C*>(scratch.s0), n, k);
    case StepKind::kRowWiseAdagrad:
      return RowWiseAdagradRow<T, C, kDecay>(w, g, s0, out, static_cast<C*>(scratch.s0), n, k,
                                             combined_squares);
    case StepKind::kAdam:
      return AdamRow<T, C, kDecay>(w, g, s0, s1, out, static_cast<C*>(scratch.s0),
                                   static_cast<C*>(scratch.s1), n, k);
  }
  return false;
}

// ---------------------------------------------------------------------------
// Storing the updated row: constrained (scaled) or not, rounded once.

// v (a C value, or a product that is exact in float64) rounded
// stochastically to T.
template <class T>
HWY_INLINE T StochasticElement(double v, std::uint32_t row_key, std::int64_t col) {
  const std::uint32_t u = stochastic::ElementBits(row_key, col);
  if constexpr (std::is_same_v<T, float16>) {
    return float16{stochastic::Round<stochastic::Half>(v, u)};
  } else {
    return bfloat16{stochastic::Round<stochastic::BFloat16>(v, u)};
  }
}

// The exact value to store for element x of the updated row under `scale`
// (float64 holds x * f exactly: two 24-bit significands).
HWY_INLINE double ScaledValue(float x, const Scale& scale) {
  if (scale.fits_float) return static_cast<double>(x) * static_cast<double>(scale.f);
  return std::ldexp(static_cast<double>(x), scale.shift) * scale.d;
}

template <class T, class C>
HWY_INLINE void StoreStochastic(const StepJob& job, std::int64_t row, const C* w, T* out,
                                const Scale* scale) {
  if constexpr (kNarrow<T>) {
    const std::uint32_t key = stochastic::RowKey(job.seed, job.step, row);
    const auto n = static_cast<size_t>(job.cols);
    // The global column: a column-sharded slice draws the bits the whole
    // table's column draws.
    const std::int64_t first_col = job.shard != nullptr ? job.shard->col_offset : 0;
    for (size_t i = 0; i < n; ++i) {
      const double v = scale != nullptr ? ScaledValue(w[i], *scale) : static_cast<double>(w[i]);
      out[i] = StochasticElement<T>(v, key, first_col + static_cast<std::int64_t>(i));
    }
  }
}

// Not scaled: w rounded to T (nearest-even).
template <class T, class C>
HWY_INLINE void StoreRounded(const C* HWY_RESTRICT w, T* HWY_RESTRICT out, size_t n) {
  if constexpr (std::is_same_v<T, C>) {
    std::memcpy(out, w, n * sizeof(T));
  } else {
    const hn::ScalableTag<float> df;
    const size_t N = hn::Lanes(df);
    size_t i = 0;
    for (; i + N <= n; i += N) StoreNarrow(df, hn::LoadU(df, w + i), out + i);
    for (; i < n; ++i) out[i] = Element<T>::Round(w[i]);
  }
}

// Scaled: round(w * s), the exact product rounded once to T.
template <class T, class C>
HWY_INLINE void StoreScaled(const C* HWY_RESTRICT w, T* HWY_RESTRICT out, size_t n,
                            const Scale& s) {
  if constexpr (std::is_same_v<T, C>) {
    ScaleVector(w, out, n, s);  // float and double: one multiply, rounded once
  } else {
    // The exact product of two float32 values rounded to odd needs a fused
    // multiply-add for a 24-bit w (the split-scale form of the row operator
    // holds for 16-bit inputs only); without one, float64 holds it exactly.
    if (!IsFastScale<T>(s) || !HWY_NATIVE_FMA) {
      for (size_t i = 0; i < n; ++i) out[i] = Element<T>::RoundDouble(ScaledValue(w[i], s));
      return;
    }
    const hn::ScalableTag<float> df;
    const size_t N = hn::Lanes(df);
    const auto vs = hn::Set(df, s.f);
    size_t i = 0;
    for (; i + N <= n; i += N) {
      StoreNarrow(df, ProductRoundToOdd(df, hn::LoadU(df, w + i), vs, vs, vs), out + i);
    }
    for (; i < n; ++i) out[i] = Element<T>::Round(numerics::ProductRoundToOdd(w[i], s.f));
  }
}

// Returns whether the constraint scaled the row. `combined`, when not null,
// is the norm of the whole row, combined from the slices of a
// column-sharded step (finite), which decides in place of this slice's.
template <class T, class C>
HWY_INLINE bool StoreRow(const StepJob& job, std::int64_t row, const C* w, T* out,
                         const VectorNorm* combined) {
  const auto n = static_cast<size_t>(job.cols);
  Scale scale = LeaveScale();
  if (job.has_constraint) {
    scale = Decide(combined != nullptr ? *combined : NormOf(w, n, job.constraint.kind, job.constraint.p),
                   job.constraint);
  }
  const bool scaled = scale.action == Action::kScale;
  if (n == 0) return scaled;  // a slice of no columns still counts the decision
  if (job.stochastic) {
    StoreStochastic(job, row, w, out, scaled ? &scale : nullptr);
  } else if (scaled) {
    StoreScaled(w, out, n, scale);
  } else {
    StoreRounded(w, out, n);
  }
  return scaled;
}

// ---------------------------------------------------------------------------
// Groups.

template <class T, class G, class C, DecayKind kDecay>
void UpdateGroupsT(const StepJob& job, std::int64_t first, std::int64_t last,
                   const StepScratch& scratch, StepCounts* counts) {
  const auto row_bytes = job.cols * static_cast<std::int64_t>(sizeof(T));
  const bool row_state = HasRowState(job.rule.kind);
  const int state_count = ElementStateCount(job.rule.kind) + (row_state ? 1 : 0);
  const std::int64_t state_bytes = (row_state ? 1 : job.cols) * static_cast<std::int64_t>(sizeof(C));
  auto row_of = [&](std::int64_t s) { return job.rows != nullptr ? job.rows[s] : s; };
  auto prefetch = [&](std::int64_t s) {
    const std::int64_t r = row_of(s);
    PrefetchRow(job.table.data + r * job.table.stride_bytes, row_bytes);
    for (int i = 0; i < state_count; ++i) {
      PrefetchRow(job.state[i].data + r * job.state[i].stride_bytes, state_bytes);
    }
    if (job.positions != nullptr) {
      const std::int64_t b = job.begin[s], e = std::min(job.begin[s + 1], b + 4);
      for (std::int64_t i = b; i < e; ++i) {
        PrefetchRow(job.grad + job.positions[i] * job.grad_stride_bytes,
                    job.cols * static_cast<std::int64_t>(sizeof(G)));
      }
    }
  };
  for (std::int64_t s = first; s < std::min(last, first + job.prefetch_groups); ++s) prefetch(s);
  C* g = static_cast<C*>(scratch.g);
  const C* w_new = static_cast<const C*>(scratch.w);
  // A phase of the column-sharded step (core/optim_backend.h): the same
  // sums and rules, with what the slices combined in place of this slice's
  // row statistics, and nothing written before kApply.
  const StepShard* shard = job.shard;
  for (std::int64_t s = first; s < last; ++s) {
    if (s + job.prefetch_groups < last) prefetch(s + job.prefetch_groups);
    const std::int64_t r = row_of(s);
    GroupGradient<G>(job, s, g);
    T* w = reinterpret_cast<T*>(job.table.data + r * job.table.stride_bytes);
    C* s0 = state_count > 0 ? reinterpret_cast<C*>(job.state[0].data + r * job.state[0].stride_bytes) : nullptr;
    C* s1 = state_count > 1 ? reinterpret_cast<C*>(job.state[1].data + r * job.state[1].stride_bytes) : nullptr;
    const double* squares = nullptr;
    const VectorNorm* combined = nullptr;
    if (shard != nullptr) {
      if (shard->phase == StepPhase::kSquares) {
        // g's finiteness is not needed: NaN or infinity in g makes the sum non-finite.
        auto check = hn::Zero(hn::ScalableTag<C>());
        C tail = 0;
        shard->squares[s] = static_cast<double>(RowWiseSquareSum<T, C, kDecay>(
            w, g, static_cast<size_t>(job.cols), CoefficientsOf<C>(job.rule), &check, &tail));
        continue;
      }
      if (shard->squares != nullptr) squares = shard->squares + s;
      if (shard->combined != nullptr) combined = shard->combined + s;
    }
    const bool finite = UpdateRow<T, C, kDecay>(job, w, g, s0, s1, scratch, squares);
    if (shard != nullptr && shard->phase == StepPhase::kParts) {
      shard->norms[s] = !finite             ? VectorNorm{0.0, false}
                        : job.has_constraint ? NormOf(w_new, static_cast<size_t>(job.cols), job.constraint.kind, job.constraint.p)
                                             : VectorNorm{0.0, true};
      continue;
    }
    if (!finite || (combined != nullptr && !combined->finite)) {
      ++counts->nonfinite;
      continue;
    }
    if (s0 != nullptr) std::memcpy(s0, scratch.s0, static_cast<size_t>(state_bytes));
    if (s1 != nullptr) std::memcpy(s1, scratch.s1, static_cast<size_t>(state_bytes));
    counts->scaled += StoreRow<T, C>(job, r, w_new, w, combined);
  }
}

template <class T, class G>
void UpdateGroupsTG(const StepJob& job, std::int64_t first, std::int64_t last,
                    const StepScratch& scratch, StepCounts* counts) {
  using C = Compute<T>;
  switch (job.rule.decay) {
    case DecayKind::kNone:
      return UpdateGroupsT<T, G, C, DecayKind::kNone>(job, first, last, scratch, counts);
    case DecayKind::kL2:
      return UpdateGroupsT<T, G, C, DecayKind::kL2>(job, first, last, scratch, counts);
    case DecayKind::kDecoupled:
      return UpdateGroupsT<T, G, C, DecayKind::kDecoupled>(job, first, last, scratch, counts);
  }
}

// The gradient is the table's storage type or its arithmetic type.
template <class Fn>
HWY_INLINE void VisitTableAndGradient(const StepJob& job, Fn&& fn) {
  VisitDType(job.dtype, [&](auto t) {
    using T = TypeOf<decltype(t)>;
    using C = Compute<T>;
    if (job.grad_dtype == job.dtype) {
      fn(Tag<T>{}, Tag<T>{});
    } else if constexpr (!std::is_same_v<T, C>) {
      fn(Tag<T>{}, Tag<C>{});
    }
  });
}

void UpdateGroups(const StepJob& job, std::int64_t first, std::int64_t last,
                  const StepScratch& scratch, StepCounts* counts) {
  VisitTableAndGradient(job, [&](auto t, auto g) {
    UpdateGroupsTG<TypeOf<decltype(t)>, TypeOf<decltype(g)>>(job, first, last, scratch, counts);
  });
}

void SumRepeatGroups(const StepJob& job, const RepeatSum* sums, std::int64_t first,
                     std::int64_t last) {
  VisitTableAndGradient(job, [&](auto t, auto g) {
    using C = Compute<TypeOf<decltype(t)>>;
    for (std::int64_t k = first; k < last; ++k) {
      const RepeatSum& r = sums[k];
      const std::int64_t b = job.begin[r.group] + r.index * kRepeatGroupSize;
      const std::int64_t e = std::min(job.begin[r.group + 1], b + kRepeatGroupSize);
      C* acc = reinterpret_cast<C*>(job.partials + r.slot * job.partial_stride_bytes);
      SumPositions<TypeOf<decltype(g)>>(job, b, e, acc);
    }
  });
}

std::int64_t FirstNonFiniteGradientRow(const StepJob& job, std::int64_t first,
                                       std::int64_t last) {
  std::int64_t found = -1;
  VisitTableAndGradient(job, [&](auto, auto g) {
    using G = TypeOf<decltype(g)>;
    for (std::int64_t i = first; i < last; ++i) {
      if (!AllFinite(RowAt<G>(job.grad, job.grad_stride_bytes, i), static_cast<size_t>(job.cols))) {
        found = i;
        return;
      }
    }
  });
  return found;
}

}  // namespace HWY_NAMESPACE
}  // namespace sparsenorm::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sparsenorm::cpu {

HWY_EXPORT(UpdateGroups);
HWY_EXPORT(SumRepeatGroups);
HWY_EXPORT(FirstNonFiniteGradientRow);

void UpdateGroups(const StepJob& job, std::int64_t first, std::int64_t last,
                  const StepScratch& scratch, StepCounts* counts) {
  HWY_DYNAMIC_DISPATCH(UpdateGroups)(job, first, last, scratch, counts);
}

void SumRepeatGroups(const StepJob& job, const RepeatSum* sums, std::int64_t first,
                     std::int64_t last) {
  HWY_DYNAMIC_DISPATCH(SumRepeatGroups)(job, sums, first, last);
}

std::int64_t FirstNonFiniteGradientRow(const StepJob& job, std::int64_t first,
                                       std::int64_t last) {
  return HWY_DYNAMIC_DISPATCH(FirstNonFiniteGradientRow)(job, first, last);
}

}  // namespace sparsenorm::cpu
#endif  // HWY_ONCE
