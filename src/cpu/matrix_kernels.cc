// Per-SIMD-target kernels of the matrix normalization, dispatched at run time
// like the row operator's (rows_kernels.cc). They stream contiguous memory:
//   - dense rows (axis 1): the row operator's norm and scaling on every row;
//   - dense columns (axis 0): float64 column accumulators updated one row at
//     a time over a block of columns (vertical SIMD, no transposition), then
//     every row multiplied lane-wise by the per-column scales;
//   - sparse segments whose values are contiguous (CSR rows, CSC columns):
//     the row operator's norm and scaling on each segment;
//   - the validation of minor indices, flat over the index array;
//   - the scattered scaling of sparse entries by the scale of their minor
//     index (CSR axis 0), with gathers.
// Rare cases (repeated coordinates, scales outside float32's normal range,
// permuted COO entries) leave the SIMD loops for scalar code.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/matrix_kernels.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "cpu/matrix_cpu.h"
#include "cpu/vector_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace sparsenorm::cpu {
namespace HWY_NAMESPACE {
namespace matrix_impl {
namespace hn = hwy::HWY_NAMESPACE;

// ---------------------------------------------------------------------------
// Scalar element helpers (tails and rare cases), twins of the SIMD paths.

template <class T>
HWY_INLINE double WideScalar(T v) {
  return static_cast<double>(Widen(v));
}

// One element scaled by the decision `code`.
template <class T>
HWY_INLINE void ScaleOneByCode(T* p, ScaleCode code, double target) {
  if (code.leaves()) return;
  *p = ScaleElement(*p, code.Decode(target));
}

// Zeroes the elements of a row with |x| < tau; returns how many were not
// zero already.
template <class T>
HWY_INLINE std::int64_t PruneRow(T* row, std::int64_t n, double tau) {
  std::int64_t pruned = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double x = WideScalar(row[i]);
    if (std::fabs(x) < tau) {
      if (x != 0.0) {
        ++pruned;
        row[i] = T{};  // +0 in every storage type
      }
    }
  }
  return pruned;
}

template <class T>
HWY_INLINE T* RowAt(const DenseJob& job, std::int64_t r) {
  return reinterpret_cast<T*>(job.data + r * job.stride_bytes);
}

// ---------------------------------------------------------------------------
// Dense, axis 1.

template <class T, class OffFn, class SlowFn, class IsSlowFn>
void BatchedVectors(T* HWY_RESTRICT values, std::int64_t array_end, std::int64_t s0, std::int64_t s1,
                    OffFn off, IsSlowFn is_slow, SlowFn slow_norm, const std::uint64_t* subset,
                    const NormRule& rule, double prune_below, MatrixCounts* counts);
inline bool Batchable(DType dtype, NormKind kind);
constexpr std::int64_t kShortRow = 256;  // elements: below, dense rows go in batches

template <class T>
void DenseRowsT(const DenseJob& job, std::int64_t r0, std::int64_t r1, MatrixCounts* counts) {
  const size_t n = static_cast<size_t>(job.cols);
  const std::int64_t row_elements = job.stride_bytes / static_cast<std::int64_t>(sizeof(T));
  if (row_elements == job.cols && job.cols < kShortRow && Batchable(job.dtype, job.rule.kind)) {
    // Packed short rows: the batched path (rows back to back).
    const std::int64_t cols = job.cols;
    BatchedVectors(
        RowAt<T>(job, 0), job.rows * cols, r0, r1, [cols](std::int64_t q) { return q * cols; },
        [](std::int64_t) { return false; }, [](std::int64_t) { return VectorNorm{0.0, true}; },
        job.subset, job.rule, job.prune_below, counts);
    return;
  }
  for (std::int64_t r = r0; r < r1; ++r) {
    T* row = RowAt<T>(job, r);
    if (job.subset == nullptr || TestBit(job.subset, r)) {
      const VectorNorm norm = NormOf(row, n, job.rule.kind, job.rule.p);
      const Scale scale = Decide(norm, job.rule);
      Count(scale, norm.value, counts);
      if (scale.action == Action::kScale) ScaleVector(row, row, n, scale);
    }
    if (job.prune_below > 0.0) counts->pruned += PruneRow(row, job.cols, job.prune_below);
  }
}

template <class T>
std::int64_t DenseFirstNonFiniteRowT(const DenseJob& job, std::int64_t r0, std::int64_t r1) {
  for (std::int64_t r = r0; r < r1; ++r) {
    if (job.subset != nullptr && !TestBit(job.subset, r)) continue;
    if (!AllFinite(RowAt<T>(job, r), static_cast<size_t>(job.cols))) return r;
  }
  return -1;
}

// ---------------------------------------------------------------------------
// Dense, axis 0: column reductions.

using D64 = hn::ScalableTag<double>;

// N float64 lanes of the row, widened exactly.
template <class T>
HWY_INLINE hn::Vec<D64> LoadAsDouble(D64 d, const T* HWY_RESTRICT p) {
  if constexpr (kFloat64Math<T>) {
    return hn::LoadU(d, p);
  } else {
    const hn::Rebind<float, D64> df;
    return hn::PromoteTo(d, LoadWide(df, p));
  }
}

template <class T>
HWY_INLINE double ReduceScalar(Reduce op, double a, double x, double m, double p) {
  switch (op) {
    case Reduce::kSumSquares: {
      double q = x * x;
      if constexpr (kFloat64Math<T>) {
        if (q < 0x1p-1000 && x != 0.0) q = HUGE_VAL;
      }
      return a + q;
    }
    case Reduce::kSumAbs:
      return a + std::fabs(x);
    case Reduce::kMaxAbs: {
      const double ax = std::fabs(x);
      std::uint64_t ba, bx;
      std::memcpy(&ba, &a, 8);
      std::memcpy(&bx, &ax, 8);
      return bx > ba ? ax : a;
    }
    case Reduce::kSumPowScaled:
      return m > 0.0 ? a + std::pow(std::fabs(x) / m, p) : a;
  }
  return a;
}

template <class T>
void DenseReduceColumnsT(const DenseJob& job, Reduce op, const double* m, std::int64_t r0,
                         std::int64_t r1, std::int64_t c0, std::int64_t c1, double* acc) {
  const std::int64_t width = c1 - c0;
  const double p = job.rule.p;
  if (op == Reduce::kSumPowScaled) {  // rare: pow has no SIMD form here
    for (std::int64_t r = r0; r < r1; ++r) {
      const T* x = RowAt<T>(job, r) + c0;
      for (std::int64_t j = 0; j < width; ++j) {
        acc[j] = ReduceScalar<T>(op, acc[j], WideScalar(x[j]), m[c0 + j], p);
      }
    }
    return;
  }
  const D64 d;
  const hn::RebindToSigned<D64> di;
  const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(d));
  const auto inf = hn::Set(d, HUGE_VAL);
  const auto tiny = hn::Set(d, 0x1p-1000);
  for (std::int64_t r = r0; r < r1; ++r) {
    const T* x = RowAt<T>(job, r) + c0;
    std::int64_t j = 0;
    switch (op) {
      case Reduce::kSumSquares:
        for (; j + N <= width; j += N) {
          const auto v = LoadAsDouble(d, x + j);
          auto q = hn::Mul(v, v);
          if constexpr (kFloat64Math<T>) {
            const auto flag = hn::And(hn::Lt(q, tiny), hn::Ne(v, hn::Zero(d)));
            q = hn::IfThenElse(flag, inf, q);
          }
          hn::StoreU(hn::Add(hn::LoadU(d, acc + j), q), d, acc + j);
        }
        break;
      case Reduce::kSumAbs:
        for (; j + N <= width; j += N) {
          const auto v = LoadAsDouble(d, x + j);
          hn::StoreU(hn::Add(hn::LoadU(d, acc + j), hn::Abs(v)), d, acc + j);
        }
        break;
      case Reduce::kMaxAbs:
        for (; j + N <= width; j += N) {
          const auto v = hn::BitCast(di, hn::Abs(LoadAsDouble(d, x + j)));
          const auto a = hn::BitCast(di, hn::LoadU(d, acc + j));
          hn::StoreU(hn::BitCast(d, hn::Max(a, v)), d, acc + j);
        }
        break;
      case Reduce::kSumPowScaled:
        break;
    }
    for (; j < width; ++j) acc[j] = ReduceScalar<T>(op, acc[j], WideScalar(x[j]), 0.0, p);
  }
}

// ---------------------------------------------------------------------------
// Dense, axis 0: scaling by per-column factors.

// The narrowed 16-bit patterns of float32 lanes, as a uint16 vector.
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DF>> NarrowBits(DF df, hn::Vec<DF> v, float16*) {
  const hn::Rebind<uint16_t, DF> du16;
  if constexpr (kHardwareFloat16) {
    const hn::Rebind<hwy::float16_t, DF> df16;
    return hn::BitCast(du16, hn::DemoteTo(df16, v));
  }
  const hn::RebindToSigned<DF> di;
  return hn::DemoteTo(du16, hn::BitCast(di, HalfBits(df, v)));
}
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DF>> NarrowBits(DF df, hn::Vec<DF> v, bfloat16*) {
  const hn::Rebind<uint16_t, DF> du16;
  const hn::RebindToSigned<DF> di;
  return hn::DemoteTo(du16, hn::BitCast(di, BFloat16Bits(df, v)));
}

// x * s rounded once to T for the lanes where `leave` is false; the original
// bits elsewhere. `s` holds float32 scales (narrow T).
// The lanes of `s` that are NaN keep their original bits: for 16-bit types
// the blend happens on the 16-bit patterns, so NaN payloads survive.
template <class DF, class T>
HWY_INLINE void StoreScaledNarrow(DF df, const T* in, T* out, hn::Vec<DF> s) {
  const auto leave = hn::IsNaN(s);
  if constexpr (std::is_same_v<T, float>) {
    const auto x = hn::LoadU(df, in);
    hn::StoreU(hn::IfThenElse(leave, x, hn::Mul(x, s)), df, out);
  } else if constexpr (!std::is_same_v<T, float16> && !std::is_same_v<T, bfloat16>) {
    // A storage type without SIMD narrowing: lane by lane.
    HWY_ALIGN float lanes[HWY_MAX_BYTES / sizeof(float)];
    hn::Store(s, df, lanes);
    for (size_t i = 0; i < hn::Lanes(df); ++i) {
      out[i] = std::isnan(lanes[i]) ? in[i] : ScaleElementFast(in[i], ScaleBy(lanes[i]));
    }
  } else {
    const hn::RebindToUnsigned<DF> du;
    const hn::RebindToSigned<DF> di;
    const hn::Rebind<uint16_t, DF> du16;
    const hn::Rebind<int16_t, DF> di16;
    const auto hi = hn::BitCast(df, hn::And(hn::BitCast(du, s), hn::Set(du, 0xfffff000u)));
    const auto lo = hn::Sub(s, hi);
    const auto x = LoadWide(df, in);
    const auto bits = NarrowBits(df, ProductRoundToOdd(df, x, s, hi, lo), static_cast<T*>(nullptr));
    const auto orig = hn::LoadU(du16, reinterpret_cast<const uint16_t*>(in));
    // The 32-bit mask narrowed to 16-bit lanes (-1 stays -1 when saturating).
    const auto keep16 = hn::MaskFromVec(
        hn::BitCast(du16, hn::DemoteTo(di16, hn::BitCast(di, hn::VecFromMask(df, leave)))));
    hn::StoreU(hn::IfThenElse(keep16, orig, bits), du16, reinterpret_cast<uint16_t*>(out));
  }
}

template <class T>
void DenseScaleColumnsT(const DenseJob& job, const ColumnScales& scales, std::int64_t r0,
                        std::int64_t r1, MatrixCounts* counts) {
  const std::int64_t cols = job.cols;
  const double target = job.rule.target;
  const double* raw_codes = ScaleCode::Raw(scales.code);
  for (std::int64_t r = r0; r < r1; ++r) {
    T* row = RowAt<T>(job, r);
    std::int64_t c = 0;
    if constexpr (kFloat64Math<T>) {
      const D64 d;
      const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(d));
      for (; c + N <= cols; c += N) {
        const auto s = hn::LoadU(d, raw_codes + c);
        const auto leave = hn::Or(hn::IsNaN(s), hn::Lt(s, hn::Zero(d)));
        const auto x = hn::LoadU(d, row + c);
        hn::StoreU(hn::IfThenElse(leave, x, hn::Mul(x, s)), d, row + c);
      }
    } else {
      const hn::ScalableTag<float> df;
      const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(df));
      for (; c + N <= cols; c += N) {
        StoreScaledNarrow(df, row + c, row + c, hn::LoadU(df, scales.f + c));
      }
    }
    for (; c < cols; ++c) {
      if (!scales.code[c].NeedsScalarPath(job.dtype)) ScaleOneByCode(row + c, scales.code[c], target);
    }
    for (std::int64_t i = 0; i < scales.special_count; ++i) {
      const std::int64_t sc = scales.special[i];
      ScaleOneByCode(row + sc, scales.code[sc], target);
    }
    if (job.prune_below > 0.0) counts->pruned += PruneRow(row, cols, job.prune_below);
  }
}

// ---------------------------------------------------------------------------
// Sparse: validation of the minor indices.

// Entries per validation chunk: its indices stay in L2 between the flat scan
// and the look at the segment starts.
constexpr std::int64_t kValidateChunk = 16384;

// Over [b, e): returns whether any index is outside [0, limit) and counts the
// positions k in (b, e) with a[k] > a[k - 1] (when `strict_ascent`) or
// a[k] >= a[k - 1].
template <class I>
HWY_INLINE bool ScanIndices(const I* HWY_RESTRICT a, std::int64_t b, std::int64_t e,
                            std::int64_t limit, bool strict_ascent, std::int64_t* ascents) {
  const hn::ScalableTag<I> d;
  const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(d));
  const I max_valid = static_cast<I>(std::min<std::int64_t>(limit - 1, std::numeric_limits<I>::max()));
  const auto vmax = hn::Set(d, max_valid);
  const auto zero = hn::Zero(d);
  auto bad = hn::Zero(d);
  auto count = hn::Zero(d);
  bool any_bad = false;
  std::int64_t asc = 0;
  std::int64_t k = b;
  if (limit <= 0) return e > b;
  // a[b] has no predecessor in the range: its range check is scalar.
  if (k < e) {
    any_bad |= a[k] < 0 || static_cast<std::int64_t>(a[k]) >= limit;
    ++k;
  }
  while (k + N <= e) {
    // Blocks of at most 2^20 vectors, so that the per-lane counts never wrap.
    const std::int64_t block_end = std::min(e, k + (N << 20));
    for (; k + N <= block_end; k += N) {
      const auto v = hn::LoadU(d, a + k);
      const auto prev = hn::LoadU(d, a + k - 1);
      bad = hn::Or(bad, hn::VecFromMask(d, hn::Or(hn::Lt(v, zero), hn::Gt(v, vmax))));
      const auto up = strict_ascent ? hn::Gt(v, prev) : hn::Not(hn::Lt(v, prev));
      count = hn::Sub(count, hn::VecFromMask(d, up));
    }
    asc += static_cast<std::int64_t>(hn::GetLane(hn::SumOfLanes(d, count)));
    count = hn::Zero(d);
  }
  any_bad |= !hn::AllTrue(d, hn::Eq(bad, zero));
  for (; k < e; ++k) {
    any_bad |= a[k] < 0 || static_cast<std::int64_t>(a[k]) >= limit;
    asc += strict_ascent ? (a[k] > a[k - 1]) : (a[k] >= a[k - 1]);
  }
  *ascents += asc;
  return any_bad;
}

template <class I>
HWY_INLINE std::int64_t FirstOutOfRange(const I* a, std::int64_t b, std::int64_t e, std::int64_t limit) {
  for (std::int64_t k = b; k < e; ++k) {
    if (a[k] < 0 || static_cast<std::int64_t>(a[k]) >= limit) return k;
  }
  return -1;
}

// Segments up to this long that are not sorted are checked for a repeated
// index (HasRepeat); longer ones are taken to hold one.
constexpr std::int64_t kRepeatCheckMax = 256;

// Whether a[0, n) (n <= kRepeatCheckMax, values >= 0) holds some value
// twice. Every value is compared with every vector of the segment, copied to
// a buffer padded with -1: each matches itself once, so the matches number
// more than n exactly when a value repeats. About n^2 / 8 lane-wide compares
// (int32, AVX2) and no branch that depends on the data: for the short
// segments it is used on, faster than sorting a copy; a version that
// stopped at the first match spent most of its time on mispredicted exits.
// `readable`: how many values may be read from a (at least n).
template <class I>
HWY_INLINE bool HasRepeat(const I* HWY_RESTRICT a, std::int64_t n, std::int64_t readable) {
  const hn::ScalableTag<I> d;
  const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(d));
  if (n <= 4 * N) {  // the common case: four vectors held in registers
    // Full loads past the segment's end (masked below) while they stay
    // inside the array; near its end, from a copy.
    HWY_ALIGN I copy[4 * HWY_MAX_BYTES / sizeof(I)];
    const I* src = a;
    if (readable < 4 * N) {
      std::fill(copy, copy + 4 * N, I{-1});
      std::memcpy(copy, a, static_cast<size_t>(n) * sizeof(I));
      src = copy;
    }
    const auto pad = hn::Set(d, I{-1});
    auto part = [&](std::int64_t q) {
      const auto m = hn::FirstN(d, static_cast<size_t>(std::max<std::int64_t>(n - q * N, 0)));
      return hn::IfThenElse(m, hn::LoadU(d, src + q * N), pad);
    };
    const auto v0 = part(0), v1 = part(1), v2 = part(2), v3 = part(3);
    auto m01 = hn::Zero(d), m23 = hn::Zero(d);
    for (std::int64_t i = 0; i < n; ++i) {
      const auto v = hn::Set(d, a[i]);
      m01 = hn::Sub(m01, hn::VecFromMask(d, hn::Eq(v0, v)));
      m23 = hn::Sub(m23, hn::VecFromMask(d, hn::Eq(v2, v)));
      m01 = hn::Sub(m01, hn::VecFromMask(d, hn::Eq(v1, v)));
      m23 = hn::Sub(m23, hn::VecFromMask(d, hn::Eq(v3, v)));
    }
    return static_cast<std::int64_t>(hn::GetLane(hn::SumOfLanes(d, hn::Add(m01, m23)))) > n;
  }
  HWY_ALIGN I buf[kRepeatCheckMax + HWY_MAX_BYTES / sizeof(I)];
  const std::int64_t vectors = (n + N - 1) / N;
  std::memcpy(buf, a, static_cast<size_t>(n) * sizeof(I));
  for (std::int64_t j = n; j < vectors * N; ++j) buf[j] = I{-1};
  auto matches = hn::Zero(d);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto v = hn::Set(d, a[i]);
    for (std::int64_t q = 0; q < vectors; ++q) {
      matches = hn::Sub(matches, hn::VecFromMask(d, hn::Eq(hn::Load(d, buf + q * N), v)));
    }
  }
  return static_cast<std::int64_t>(hn::GetLane(hn::SumOfLanes(d, matches))) > n;
}

template <class I, class O>
std::int64_t ValidateSegmentsT(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                               std::int64_t limit, std::uint64_t* unsorted,
                               std::int64_t* max_unsorted_len) {
  const O* offsets = static_cast<const O*>(job.offsets);
  auto off = [offsets](std::int64_t q) { return static_cast<std::int64_t>(offsets[q]); };
  const I* a = static_cast<const I*>(job.minor);
  std::int64_t s = s0;
  while (s < s1) {
    // A chunk of whole segments [s, t) of about kValidateChunk entries.
    const std::int64_t kb = off(s);
    std::int64_t t = s + 1;
    while (t < s1 && off(t + 1) - kb <= kValidateChunk) ++t;
    const std::int64_t ke = off(t);
    std::int64_t ascents = 0;
    if (ScanIndices(a, kb, ke, limit, /*strict_ascent=*/true, &ascents)) {
      return FirstOutOfRange(a, kb, ke, limit);
    }
    // Inside a segment whose indices strictly increase every step is an
    // ascent; so the chunk is sorted when the steps that are not ascents
    // all fall on segment starts.
    std::int64_t non_ascents = (ke - kb - 1) - ascents;
    if (ke - kb <= 1) non_ascents = 0;
    std::int64_t start_non_ascents = 0;
    for (std::int64_t q = s + 1; q < t; ++q) {
      const std::int64_t p = off(q);
      if (p > kb && p < ke && p < off(q + 1) && !(a[p] > a[p - 1])) {
        ++start_non_ascents;
      }
    }
    if (non_ascents != start_non_ascents) {
      for (std::int64_t q = s; q < t; ++q) {
        const std::int64_t b = off(q), e = off(q + 1);
        for (std::int64_t k = b + 1; k < e; ++k) {
          if (!(a[k] > a[k - 1])) {
            // Unsorted but distinct indices need no grouping: every path
            // that sums or scales a segment is indifferent to its order.
            if (e - b <= kRepeatCheckMax && !HasRepeat(a + b, e - b, job.nnz - b)) break;
            std::atomic_ref<std::uint64_t> word(unsorted[q >> 6]);
            word.fetch_or(std::uint64_t{1} << (q & 63), std::memory_order_relaxed);
            if (e - b > *max_unsorted_len) *max_unsorted_len = e - b;
            break;
          }
        }
      }
    }
    s = t;
  }
  return -1;
}

template <class I>
std::int64_t CheckCoordinatesT(const I* a, std::int64_t b, std::int64_t e, std::int64_t limit,
                               std::int64_t* decreases) {
  std::int64_t ascents = 0;  // here: steps with a[k] >= a[k - 1]
  if (ScanIndices(a, b, e, limit, /*strict_ascent=*/false, &ascents)) {
    return FirstOutOfRange(a, b, e, limit);
  }
  if (e - b > 1) *decreases += (e - b - 1) - ascents;
  return -1;
}

// ---------------------------------------------------------------------------
// Sparse: segment-wise normalization.

template <class T>
HWY_INLINE VectorNorm SegmentNorm(const SparseJob& job, std::int64_t s,
                                          GroupedScratch* scratch) {
  if (job.perm != nullptr || (job.unsorted != nullptr && TestBit(job.unsorted, s))) {
    return GroupedSegmentNorm(job, s, scratch);
  }
  const T* values = static_cast<const T*>(job.values);
  const std::int64_t b = OffsetAt(job, s);
  return NormOf(values + b, static_cast<size_t>(OffsetAt(job, s + 1) - b), job.rule.kind, job.rule.p);
}

// ---------------------------------------------------------------------------
// Short vectors in batches.
//
// One vector at a time, a short row (the benchmark's CSR rows hold 20
// values) is bound by the latency of its dependent chain: sum, sqrt,
// divide, scale. Batched, the sums of up to kBatchSegments vectors are
// taken first (independent, so they overlap), then their plans in a tight
// loop, then the values of the whole batch are multiplied in one flat pass
// against a per-entry scale buffer.

constexpr std::int64_t kBatchSegments = 64;
constexpr std::int64_t kBatchEntries = 4096;

inline bool Batchable(DType dtype, NormKind kind) {
  if (kind == NormKind::kL2 || kind == NormKind::kL1) return true;
  return kind == NormKind::kLInf && dtype != DType::kFloat64;
}

// The plain reduction of a short vector in its compute type (kL2: the sum of
// squares, whose square root the batch takes four at a time); false when the
// result cannot be trusted (overflow, underflow, NaN/inf): NormOf decides.
template <class T>
HWY_INLINE bool ShortNorm(const T* HWY_RESTRICT x, size_t n, NormKind kind, double* norm) {
  using C = Compute<T>;
  const hn::ScalableTag<C> d;
  const size_t N = hn::Lanes(d);
  if (kind == NormKind::kLInf) {
    if constexpr (sizeof(C) == 4) {
      const uint32_t bits = MaxAbsBits(x, n);
      if (bits >= 0x7f800000u) return false;
      float m;
      std::memcpy(&m, &bits, sizeof m);
      *norm = m;
      return true;
    }
    return false;
  }
  auto acc = hn::Zero(d);
  size_t i = 0;
  C s;
  if (kind == NormKind::kL2) {
    for (; i + N <= n; i += N) {
      const auto v = LoadWide(d, x + i);
      acc = hn::MulAdd(v, v, acc);
    }
    s = hn::GetLane(hn::SumOfLanes(d, acc));
    for (; i < n; ++i) {
      const C v = Widen(x[i]);
      s += v * v;
    }
    if (!(s <= std::numeric_limits<C>::max() && s >= SmallestTrustedSum(C()))) return false;
    *norm = static_cast<double>(s);  // the caller takes the square root
    return true;
  }
  for (; i + N <= n; i += N) acc = hn::Add(acc, hn::Abs(LoadWide(d, x + i)));
  s = hn::GetLane(hn::SumOfLanes(d, acc));
  for (; i < n; ++i) s += std::fabs(static_cast<C>(Widen(x[i])));
  if (!(s <= std::numeric_limits<C>::max())) return false;
  *norm = static_cast<double>(s);
  return true;
}

// ShortNorm for n <= 4 vectors of lanes, without a branch on n: a batch of
// rows of varying length would otherwise mispredict each row's loop exits.
// Reads up to 4 full vectors from x (masked lanes are not used), so
// x + 4 * lanes must lie within the array.
template <class T>
struct LaneIndices {
  using C = Compute<T>;
  using D = hn::ScalableTag<C>;
  using DI = hn::RebindToSigned<D>;
  using I = hn::TFromD<DI>;
  hn::Vec<DI> iota[4];
  LaneIndices() {
    const DI di;
    const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(di));
    for (int j = 0; j < 4; ++j) iota[j] = hn::Iota(di, static_cast<I>(j * N));
  }
};

template <class T>
HWY_INLINE bool ShortNorm4(const T* HWY_RESTRICT x, std::int64_t n, NormKind kind,
                           const LaneIndices<T>& lanes, double* norm) {
  using C = Compute<T>;
  const hn::ScalableTag<C> d;
  const hn::RebindToSigned<decltype(d)> di;
  using I = hn::TFromD<decltype(di)>;
  const size_t N = hn::Lanes(d);
  const auto vn = hn::Set(di, static_cast<I>(n));
  auto load = [&](int j) {
    const auto v = LoadWide(d, x + j * N);
    return hn::IfThenElseZero(hn::RebindMask(d, hn::Lt(lanes.iota[j], vn)), v);
  };
  const auto v0 = load(0), v1 = load(1), v2 = load(2), v3 = load(3);
  if (kind == NormKind::kL2) {
    const auto acc = hn::MulAdd(v3, v3, hn::MulAdd(v2, v2, hn::MulAdd(v1, v1, hn::Mul(v0, v0))));
    const C s = hn::GetLane(hn::SumOfLanes(d, acc));
    if (!(s <= std::numeric_limits<C>::max() && s >= SmallestTrustedSum(C()))) return false;
    *norm = static_cast<double>(s);  // the caller takes the square root
    return true;
  }
  if (kind == NormKind::kL1) {
    const auto acc = hn::Add(hn::Add(hn::Abs(v0), hn::Abs(v1)), hn::Add(hn::Abs(v2), hn::Abs(v3)));
    const C s = hn::GetLane(hn::SumOfLanes(d, acc));
    if (!(s <= std::numeric_limits<C>::max())) return false;
    *norm = static_cast<double>(s);
    return true;
  }
  if constexpr (sizeof(C) == 4) {  // kLInf: max |x| as bits, NaN/inf at or above 0x7f800000
    const auto mag = hn::Set(di, 0x7fffffff);
    auto bits = [&](hn::Vec<decltype(d)> v) { return hn::And(hn::BitCast(di, v), mag); };
    const auto m = hn::Max(hn::Max(bits(v0), bits(v1)), hn::Max(bits(v2), bits(v3)));
    const auto top = static_cast<uint32_t>(hn::GetLane(hn::MaxOfLanes(di, m)));
    if (top >= 0x7f800000u) return false;
    float f;
    std::memcpy(&f, &top, sizeof f);
    *norm = f;
    return true;
  }
  return false;
}

// Vectors [s0, s1) whose values lie at [off(s), off(s + 1)) of `values`,
// back to back. slow_norm(s) gives the norm where the plain sum cannot (a
// vector with repeated coordinates); `is_slow(s)` says which.
template <class T, class OffFn, class SlowFn, class IsSlowFn>
void BatchedVectors(T* HWY_RESTRICT values, std::int64_t array_end, std::int64_t s0, std::int64_t s1,
                    OffFn off, IsSlowFn is_slow, SlowFn slow_norm, const std::uint64_t* subset,
                    const NormRule& rule, double prune_below, MatrixCounts* counts) {
  using C = Compute<T>;
  const NormKind kind = rule.kind;
  const hn::ScalableTag<C> d;
  const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(d));
  constexpr DType kCodeType = kFloat64Math<T> ? DType::kFloat64 : DType::kFloat32;
  const LaneIndices<T> lanes;
  // Slack for the fixed four stores of the last short vector.
  HWY_ALIGN C buf[kBatchEntries + 4 * HWY_MAX_BYTES / sizeof(C)];
  std::int64_t ob[kBatchSegments + 1];  // the batch's offsets, read once
  ScaleCode code[kBatchSegments];
  C fill[kBatchSegments];
  // Per vector of the batch: its plain reduction, then its norm (red), and
  // target / (norm + eps) (quot); which path its plan takes.
  const hn::ScalableTag<double> dd;
  const std::int64_t ND = static_cast<std::int64_t>(hn::Lanes(dd));
  auto n_padded = [ND](std::int64_t k) { return (k + ND - 1) / ND * ND; };
  HWY_ALIGN double red[kBatchSegments + HWY_MAX_BYTES / sizeof(double)];
  HWY_ALIGN double quot[kBatchSegments + HWY_MAX_BYTES / sizeof(double)];
  enum : std::uint8_t { kFastVector, kScalarVector, kSkipVector };
  std::uint8_t path[kBatchSegments];
  const C nan = std::numeric_limits<C>::quiet_NaN();
  std::int64_t s = s0;
  while (s < s1) {
    const std::int64_t base = off(s);
    ob[0] = base;
    ob[1] = off(s + 1);
    if (ob[1] - base > kBatchEntries) {
      // A long vector on its own: no chain to hide.
      const std::int64_t len = ob[1] - base;
      if (subset == nullptr || TestBit(subset, s)) {
        const VectorNorm norm =
            is_slow(s) ? slow_norm(s) : NormOf(values + base, static_cast<size_t>(len), kind, rule.p);
        const Scale scale = Decide(norm, rule);
        Count(scale, norm.value, counts);
        if (scale.action == Action::kScale) {
          ScaleVector(values + base, values + base, static_cast<size_t>(len), scale);
        }
      }
      if (prune_below > 0.0) counts->pruned += PruneRow(values + base, len, prune_below);
      ++s;
      continue;
    }
    std::int64_t n = 1;  // vectors in the batch
    while (s + n < s1 && n < kBatchSegments) {
      const std::int64_t next = off(s + n + 1);
      if (next - base > kBatchEntries) break;
      ob[++n] = next;
    }
    // 1. Norms and plans, in three steps so that the square roots and
    // divisions of the batch go four (AVX2) at a time: one row at a time
    // they were most of the batch's time (a scalar vsqrtsd and vdivsd per
    // row of 20 values). The vector operations are the same correctly
    // rounded ones as Decide's, so the scales are bit for bit the same.
    // 1a. The plain reductions; rows whose reduction cannot be trusted (or
    // that hold repeated coordinates) take the scalar path in 1c.
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t q = s + i;
      code[i] = ScaleCode::Leave();
      fill[i] = nan;
      red[i] = 1.0;  // any finite value: lanes off the fast path are not used
      if (subset != nullptr && !TestBit(subset, q)) {
        path[i] = kSkipVector;
        continue;
      }
      const std::int64_t b = ob[i], len = ob[i + 1] - b;
      bool ok = false;
      if (is_slow(q)) {
        ok = false;
      } else if (len <= 4 * N && b + 4 * N <= array_end) {
        ok = ShortNorm4(values + b, len, kind, lanes, &red[i]);
      } else if (len > 0) {
        ok = ShortNorm(values + b, static_cast<size_t>(len), kind, &red[i]);
      }
      path[i] = ok ? kFastVector : kScalarVector;
    }
    for (std::int64_t i = n; i < n_padded(n); ++i) red[i] = 1.0;
    // 1b. Norms (kL2: square roots) and target / (norm + eps).
    {
      const auto vtarget = hn::Set(dd, rule.target), veps = hn::Set(dd, rule.eps);
      for (std::int64_t i = 0; i < n; i += ND) {
        auto v = hn::Load(dd, red + i);
        if (kind == NormKind::kL2) v = hn::Sqrt(v);
        hn::Store(v, dd, red + i);
        hn::Store(hn::Div(vtarget, hn::Add(v, veps)), dd, quot + i);
      }
    }
    // 1c. Decisions: Decide's common case inline, the rest through Decide.
    bool any_special = false;
    for (std::int64_t i = 0; i < n; ++i) {
      if (path[i] == kSkipVector) continue;
      ScaleCode c = ScaleCode::Leave();
      if (path[i] == kFastVector && red[i] > 0.0 && !std::isinf(quot[i]) &&
          (!rule.max_norm || red[i] > rule.target)) {
        // Decide: finite, nonzero, scaled, no shift.
        ++counts->scaled;
        c = ScaleCode::Factor(quot[i]);
      } else {
        const std::int64_t q = s + i;
        VectorNorm norm{red[i], true};
        if (path[i] == kScalarVector) {
          const std::int64_t b = ob[i], len = ob[i + 1] - b;
          norm = is_slow(q) ? slow_norm(q)
                 : len > 0  ? NormOf(values + b, static_cast<size_t>(len), kind, rule.p)
                            : VectorNorm{0.0, true};
        }
        const Scale scale = Decide(norm, rule);
        Count(scale, norm.value, counts);
        c = ScaleCode::Of(scale, norm.value, rule.eps);
      }
      code[i] = c;
      const bool special = c.NeedsScalarPath(kCodeType);
      any_special |= special;
      if (!special) fill[i] = static_cast<C>(c.raw());
    }
    // 2. The per-entry scale buffer (NaN: leave; special codes too, fixed
    // below). Each vector's stores may spill past its end into the next
    // vector's slots, which that vector then overwrites.
    for (std::int64_t i = 0; i < n; ++i) {
      const auto vs = hn::Set(d, fill[i]);
      const std::int64_t b = ob[i] - base, len = ob[i + 1] - ob[i];
      if (len <= 4 * N) {  // fixed count: no loop exit to mispredict
        hn::StoreU(vs, d, buf + b);
        hn::StoreU(vs, d, buf + b + N);
        hn::StoreU(vs, d, buf + b + 2 * N);
        hn::StoreU(vs, d, buf + b + 3 * N);
      } else {
        for (std::int64_t j = b; j < b + len; j += N) hn::StoreU(vs, d, buf + j);
      }
    }
    // 3. One flat pass over the batch's values.
    const std::int64_t end = ob[n] - base;
    std::int64_t j = 0;
    for (; j + N <= end; j += N) {
      if constexpr (!kFloat64Math<T>) {
        StoreScaledNarrow(d, values + base + j, values + base + j, hn::LoadU(d, buf + j));
      } else {
        const auto sv = hn::LoadU(d, buf + j);
        const auto x = hn::LoadU(d, values + base + j);
        hn::StoreU(hn::IfThenElse(hn::IsNaN(sv), x, hn::Mul(x, sv)), d, values + base + j);
      }
    }
    for (; j < end; ++j) {
      if (!std::isnan(buf[j])) values[base + j] = ScaleElement(values[base + j], ScaleBy(buf[j]));
    }
    if (any_special) {
      for (std::int64_t i = 0; i < n; ++i) {
        if (!code[i].NeedsScalarPath(kCodeType)) continue;
        const std::int64_t b = ob[i];
        ScaleVector(values + b, values + b, static_cast<size_t>(ob[i + 1] - b), code[i].Decode(rule.target));
      }
    }
    if (prune_below > 0.0) counts->pruned += PruneRow(values + base, end, prune_below);
    s += n;
  }
}

template <class T>
void NormalizeSegmentsT(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                        GroupedScratch* scratch, MatrixCounts* counts) {
  T* values = static_cast<T*>(job.values);
  // The offsets are read a few times per segment, never per entry: a run-time
  // switch on their type costs nothing and halves the instantiations.
  auto off = [&job](std::int64_t q) { return OffsetAt(job, q); };
  if (job.perm == nullptr && Batchable(job.dtype, job.rule.kind)) {
    BatchedVectors(
        values, job.nnz, s0, s1, off,
        [&job](std::int64_t q) { return job.unsorted != nullptr && TestBit(job.unsorted, q); },
        [&](std::int64_t q) { return GroupedSegmentNorm(job, q, scratch); }, job.subset, job.rule,
        0.0, counts);
    return;
  }
  for (std::int64_t s = s0; s < s1; ++s) {
    if (job.subset != nullptr && !TestBit(job.subset, s)) continue;
    const VectorNorm norm = SegmentNorm<T>(job, s, scratch);
    const Scale scale = Decide(norm, job.rule);
    Count(scale, norm.value, counts);
    if (scale.action != Action::kScale) continue;
    if (job.perm != nullptr) {
      ScaleSegmentScalar(job, s, scale);
    } else {
      const std::int64_t b = off(s);
      ScaleVector(values + b, values + b, static_cast<size_t>(off(s + 1) - b), scale);
    }
  }
}

template <class T>
std::int64_t FirstNonFiniteSegmentT(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                                    GroupedScratch* scratch) {
  for (std::int64_t s = s0; s < s1; ++s) {
    if (job.subset != nullptr && !TestBit(job.subset, s)) continue;
    if (!SegmentNorm<T>(job, s, scratch).finite) return s;
  }
  return -1;
}

// ---------------------------------------------------------------------------
// Sparse: scattered scaling by the minor index's decision.

template <class T, class I>
void ScaleByMinorT(const SparseJob& job, const ScaleCode* HWY_RESTRICT code, std::int64_t k0,
                   std::int64_t k1) {
  T* HWY_RESTRICT values = static_cast<T*>(job.values);
  const I* HWY_RESTRICT minor = static_cast<const I*>(job.minor);
  const double* HWY_RESTRICT raw = ScaleCode::Raw(code);
  const double target = job.rule.target;
  const D64 d;
  const hn::RebindToSigned<D64> di;
  const hn::Rebind<float, D64> df;
  const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(d));
  std::int64_t k = k0;
  for (; k + N <= k1; k += N) {
    hn::Vec<decltype(di)> idx;
    if constexpr (sizeof(I) == 4) {
      idx = hn::PromoteTo(di, hn::LoadU(hn::Rebind<std::int32_t, D64>(), minor + k));
    } else {
      idx = hn::LoadU(di, reinterpret_cast<const std::int64_t*>(minor) + k);
    }
    const auto s = hn::GatherIndex(d, raw, idx);
    const auto leave = hn::IsNaN(s);
    if constexpr (kFloat64Math<T>) {
      if (HWY_UNLIKELY(!hn::AllFalse(d, hn::Lt(s, hn::Zero(d))))) {
        for (std::int64_t j = 0; j < N; ++j) ScaleOneByCode(values + k + j, code[minor[k + j]], target);
        continue;
      }
      const auto x = hn::LoadU(d, values + k);
      hn::StoreU(hn::IfThenElse(leave, x, hn::Mul(x, s)), d, values + k);
    } else {
      // Lanes whose scale is not a normal float32 (nor zero) take the
      // float64 path of ScaleBy; NaN lanes compare false and stay.
      const auto fits = hn::Or(hn::Eq(s, hn::Zero(d)),
                               hn::And(hn::Ge(s, hn::Set(d, static_cast<double>(FLT_MIN))),
                                       hn::Le(s, hn::Set(d, static_cast<double>(FLT_MAX)))));
      if (HWY_UNLIKELY(!hn::AllTrue(d, hn::Or(fits, leave)))) {
        for (std::int64_t j = 0; j < N; ++j) ScaleOneByCode(values + k + j, code[minor[k + j]], target);
        continue;
      }
      StoreScaledNarrow(df, values + k, values + k, hn::DemoteTo(df, s));
    }
  }
  for (; k < k1; ++k) ScaleOneByCode(values + k, code[minor[k]], target);
}

template <class T, class I>
void ScaleByMinorFloatT(const SparseJob& job, const float* HWY_RESTRICT f, std::int64_t k0,
                        std::int64_t k1) {
  T* HWY_RESTRICT values = static_cast<T*>(job.values);
  const I* HWY_RESTRICT minor = static_cast<const I*>(job.minor);
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(df));
  std::int64_t k = k0;
  for (; k + N <= k1; k += N) {
    hn::Vec<decltype(di)> idx;
    if constexpr (sizeof(I) == 4) {
      idx = hn::LoadU(di, minor + k);
    } else {
      // Highway 1.0.3 has no int64 -> int32 demotion: narrow through the
      // stack (minor_dim < 2^31, so the values fit).
      HWY_ALIGN std::int32_t narrow[HWY_MAX_BYTES / 4];
      for (std::int64_t j = 0; j < N; ++j) narrow[j] = static_cast<std::int32_t>(minor[k + j]);
      idx = hn::Load(di, narrow);
    }
    StoreScaledNarrow(df, values + k, values + k, hn::GatherIndex(df, f, idx));
  }
  for (; k < k1; ++k) {
    const float s = f[minor[k]];
    if (!std::isnan(s)) values[k] = ScaleElement(values[k], ScaleBy(s));
  }
}

}  // namespace matrix_impl

// ---------------------------------------------------------------------------
// Entry points, one per exported function.

void MatrixDenseRows(const DenseJob& job, std::int64_t b, std::int64_t e, MatrixCounts* counts) {
  VisitDType(job.dtype, [&](auto t) { matrix_impl::DenseRowsT<TypeOf<decltype(t)>>(job, b, e, counts); });
}

std::int64_t MatrixDenseFirstNonFiniteRow(const DenseJob& job, std::int64_t b, std::int64_t e) {
  std::int64_t first = -1;
  VisitDType(job.dtype, [&](auto t) { first = matrix_impl::DenseFirstNonFiniteRowT<TypeOf<decltype(t)>>(job, b, e); });
  return first;
}

void MatrixDenseReduceColumns(const DenseJob& job, Reduce op, const double* m, std::int64_t r0,
                              std::int64_t r1, std::int64_t c0, std::int64_t c1, double* acc) {
  VisitDType(job.dtype, [&](auto t) {
    matrix_impl::DenseReduceColumnsT<TypeOf<decltype(t)>>(job, op, m, r0, r1, c0, c1, acc);
  });
}

void MatrixDenseScaleColumns(const DenseJob& job, const ColumnScales& scales, std::int64_t r0,
                             std::int64_t r1, MatrixCounts* counts) {
  VisitDType(job.dtype, [&](auto t) {
    matrix_impl::DenseScaleColumnsT<TypeOf<decltype(t)>>(job, scales, r0, r1, counts);
  });
}

std::int64_t MatrixValidateSegments(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                                    std::int64_t limit, std::uint64_t* unsorted,
                                    std::int64_t* max_unsorted_len) {
  std::int64_t bad = -1;
  // The offsets are read a few times per segment: their type is a second
  // instantiation only because they are scanned in chunks here.
  VisitIndexType(job.minor_type, [&](auto i) {
    VisitIndexType(job.offsets_type, [&](auto o) {
      bad = matrix_impl::ValidateSegmentsT<TypeOf<decltype(i)>, TypeOf<decltype(o)>>(
          job, s0, s1, limit, unsorted, max_unsorted_len);
    });
  });
  return bad;
}

std::int64_t MatrixCheckCoordinates(const void* a, IndexType type, std::int64_t b, std::int64_t e,
                                    std::int64_t limit, std::int64_t* decreases) {
  std::int64_t bad = -1;
  VisitIndexType(type, [&](auto i) {
    using I = TypeOf<decltype(i)>;
    bad = matrix_impl::CheckCoordinatesT(static_cast<const I*>(a), b, e, limit, decreases);
  });
  return bad;
}

void MatrixNormalizeSegments(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                             GroupedScratch* scratch, MatrixCounts* counts) {
  VisitDType(job.dtype, [&](auto t) {
    matrix_impl::NormalizeSegmentsT<TypeOf<decltype(t)>>(job, s0, s1, scratch, counts);
  });
}

std::int64_t MatrixFirstNonFiniteSegment(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                                         GroupedScratch* scratch) {
  std::int64_t first = -1;
  VisitDType(job.dtype, [&](auto t) {
    first = matrix_impl::FirstNonFiniteSegmentT<TypeOf<decltype(t)>>(job, s0, s1, scratch);
  });
  return first;
}

void MatrixScaleByMinor(const SparseJob& job, const ScaleCode* code, std::int64_t k0, std::int64_t k1) {
  VisitDTypeAndIndex(job.dtype, job.minor_type, [&](auto t, auto i) {
    matrix_impl::ScaleByMinorT<TypeOf<decltype(t)>, TypeOf<decltype(i)>>(job, code, k0, k1);
  });
}

void MatrixScaleByMinorFloat(const SparseJob& job, const float* f, std::int64_t k0, std::int64_t k1) {
  VisitDTypeAndIndex(job.dtype, job.minor_type, [&](auto t, auto i) {
    using T = TypeOf<decltype(t)>;
    if constexpr (!std::is_same_v<typename Element<T>::Compute, double>) {
      matrix_impl::ScaleByMinorFloatT<T, TypeOf<decltype(i)>>(job, f, k0, k1);
    }
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace sparsenorm::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sparsenorm::cpu {

HWY_EXPORT(MatrixDenseRows);
HWY_EXPORT(MatrixDenseFirstNonFiniteRow);
HWY_EXPORT(MatrixDenseReduceColumns);
HWY_EXPORT(MatrixDenseScaleColumns);
HWY_EXPORT(MatrixValidateSegments);
HWY_EXPORT(MatrixCheckCoordinates);
HWY_EXPORT(MatrixNormalizeSegments);
HWY_EXPORT(MatrixFirstNonFiniteSegment);
HWY_EXPORT(MatrixScaleByMinor);
HWY_EXPORT(MatrixScaleByMinorFloat);

void DenseRows(const DenseJob& job, std::int64_t row_begin, std::int64_t row_end,
               MatrixCounts* counts) {
  HWY_DYNAMIC_DISPATCH(MatrixDenseRows)(job, row_begin, row_end, counts);
}

std::int64_t DenseFirstNonFiniteRow(const DenseJob& job, std::int64_t begin, std::int64_t end) {
  return HWY_DYNAMIC_DISPATCH(MatrixDenseFirstNonFiniteRow)(job, begin, end);
}

void DenseReduceColumns(const DenseJob& job, Reduce op, const double* m, std::int64_t r0,
                        std::int64_t r1, std::int64_t c0, std::int64_t c1, double* acc) {
  HWY_DYNAMIC_DISPATCH(MatrixDenseReduceColumns)(job, op, m, r0, r1, c0, c1, acc);
}

void DenseScaleColumns(const DenseJob& job, const ColumnScales& scales, std::int64_t r0,
                       std::int64_t r1, MatrixCounts* counts) {
  HWY_DYNAMIC_DISPATCH(MatrixDenseScaleColumns)(job, scales, r0, r1, counts);
}

std::int64_t ValidateSegments(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                              std::int64_t limit, std::uint64_t* unsorted,
                              std::int64_t* max_unsorted_len) {
  return HWY_DYNAMIC_DISPATCH(MatrixValidateSegments)(job, s0, s1, limit, unsorted, max_unsorted_len);
}

std::int64_t CheckCoordinates(const void* a, IndexType type, std::int64_t begin, std::int64_t end,
                              std::int64_t limit, std::int64_t* decreases) {
  return HWY_DYNAMIC_DISPATCH(MatrixCheckCoordinates)(a, type, begin, end, limit, decreases);
}

void NormalizeSegments(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                       GroupedScratch* scratch, MatrixCounts* counts) {
  HWY_DYNAMIC_DISPATCH(MatrixNormalizeSegments)(job, s0, s1, scratch, counts);
}

std::int64_t FirstNonFiniteSegment(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                                   GroupedScratch* scratch) {
  return HWY_DYNAMIC_DISPATCH(MatrixFirstNonFiniteSegment)(job, s0, s1, scratch);
}

void ScaleByMinor(const SparseJob& job, const ScaleCode* code, std::int64_t k0, std::int64_t k1) {
  HWY_DYNAMIC_DISPATCH(MatrixScaleByMinor)(job, code, k0, k1);
}

void ScaleByMinorFloat(const SparseJob& job, const float* f, std::int64_t k0, std::int64_t k1) {
  HWY_DYNAMIC_DISPATCH(MatrixScaleByMinorFloat)(job, f, k0, k1);
}

}  // namespace sparsenorm::cpu
#endif  // HWY_ONCE
