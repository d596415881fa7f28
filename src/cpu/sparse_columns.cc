// Scalar parts of the sparse matrix normalization, compiled once (not per
// SIMD target): their cost is random memory access or they are rare.
//
// Column sums of a sparse matrix along its scattered axis (the columns of a
// CSR matrix, the rows of a CSC matrix), ReduceColumns:
//
// The entries are sliced into `parts` runs of whole segments (rows), balanced
// by entries, one per thread. Each part emits (column, partial) pairs in its
// storage order; the sum for a column is then formed in a fixed order that
// depends only on the input and `parts`, so results are reproducible for a
// given thread count. Two ways to combine the parts:
//
//  - private arrays: each part accumulates into its own float64 array of one
//    slot per column, and the arrays are added in part order at the end. It
//    is the fastest way when those arrays are small, limited by the random
//    read-modify-writes into them (docs/PERFORMANCE.md). Used when a part's
//    array is at most Tuning::private_array_bytes (4 MiB, 512 Ki columns):
//    that is the fixed per-thread buffer; with one part there is no copy at
//    all.
//
//  - striped buckets, for wider matrices: the columns are cut into stripes,
//    each owned by one part. In epochs of Tuning::epoch_entries pairs per
//    part, every part writes its pairs into a fixed buffer bucketed by the
//    owner of their column (a counting sort); all parts meet at a barrier;
//    then each owner adds the buckets addressed to it into the shared array,
//    taking the sending parts in order, and all meet again. Extra memory is
//    2 x epoch_entries x 16 bytes per part (1 MiB) whatever the width, so a
//    matrix of 100 million columns needs its 800 MB of column sums and not
//    800 MB per thread. The bucket round trip costs about three times the
//    private-array update per entry; it is the price of the bound.
//
// Repeated coordinates: a segment flagged during validation (it holds a
// repeated minor index, or is long and unsorted) has its (minor, position) pairs
// sorted in a per-part scratch buffer and the values of each coordinate
// summed in storage order before the partial is formed, so that a column's
// norm is that of the matrix with repeats summed (SciPy's meaning).

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "common/element_types.h"
#include "common/norms.h"
#include "cpu/matrix_cpu.h"
#include "cpu/parallel.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace sparsenorm::cpu {
namespace {

// ---------------------------------------------------------------------------
// Element access.

template <class T>
inline double Widen(T v) {
  return static_cast<double>(Element<T>::Widen(v));
}

// Calls fn with the (value, minor index) type tags of the job.
template <class Fn>
void WithSparseTypes(const SparseJob& job, Fn&& fn) {
  VisitDTypeAndIndex(job.dtype, job.minor_type, fn);
}

inline double BitsMax(double a, double b) {
  std::uint64_t ba, bb;
  std::memcpy(&ba, &a, 8);
  std::memcpy(&bb, &b, 8);
  return bb > ba ? b : a;
}

// ---------------------------------------------------------------------------
// Grouping of one segment's entries by minor index.

// Fills scratch->pairs[0, g) with the distinct minor indices of segment s in
// increasing order and scratch->sums[0, g) with the sum, in storage order,
// of the values stored at each. Returns g.
template <class T, class I>
std::int64_t BuildGroups(const SparseJob& job, std::int64_t s, GroupedScratch* scratch) {
  const I* minor = static_cast<const I*>(job.minor);
  const T* values = static_cast<const T*>(job.values);
  const std::int64_t b = OffsetAt(job, s), e = OffsetAt(job, s + 1);
  auto& pairs = scratch->pairs;
  pairs.resize(static_cast<std::size_t>(e - b));  // within the reserved capacity
  bool increasing = true;
  for (std::int64_t i = 0; i < e - b; ++i) {
    const std::int64_t pos = job.perm != nullptr ? job.perm[b + i] : b + i;
    pairs[i] = {static_cast<std::int64_t>(minor[pos]), pos};
    if (i > 0 && pairs[i].first <= pairs[i - 1].first) increasing = false;
  }
  // Positions are distinct, so sorting the pairs keeps storage order among
  // the entries of one coordinate (std::sort allocates nothing).
  if (!increasing) std::sort(pairs.begin(), pairs.end());
  auto& sums = scratch->sums;
  sums.resize(pairs.size());
  std::int64_t g = 0;
  for (std::size_t i = 0; i < pairs.size();) {
    const std::int64_t c = pairs[i].first;
    double sum = 0.0;
    for (; i < pairs.size() && pairs[i].first == c; ++i) sum += Widen(values[pairs[i].second]);
    pairs[g].first = c;
    sums[g] = sum;
    ++g;
  }
  return g;
}

// ---------------------------------------------------------------------------
// Emission of (column, value) pairs over a slice of segments, resumable.

template <class T, class I>
class Emitter {
 public:
  Emitter(const SparseJob& job, std::int64_t s0, std::int64_t s1, GroupedScratch* scratch)
      : job_(job),
        minor_(static_cast<const I*>(job.minor)),
        values_(static_cast<const T*>(job.values)),
        s_(s0),
        s1_(s1),
        scratch_(scratch) {}

  bool done() const { return g_ >= gend_ && k_ >= kend_ && s_ >= s1_; }

  // Calls sink(column, y) for up to `budget` distinct coordinates; y is the
  // value (repeats summed) widened to float64. Returns how many it emitted.
  template <class Sink>
  std::int64_t Emit(std::int64_t budget, Sink&& sink) {
    std::int64_t emitted = 0;
    while (emitted < budget) {
      if (g_ < gend_) {
        const std::int64_t n = std::min(budget - emitted, gend_ - g_);
        for (std::int64_t i = g_; i < g_ + n; ++i) sink(scratch_->pairs[i].first, scratch_->sums[i]);
        g_ += n;
        emitted += n;
        continue;
      }
      if (k_ < kend_) {
        const std::int64_t n = std::min(budget - emitted, kend_ - k_);
        const I* __restrict minor = minor_;
        const T* __restrict values = values_;
        for (std::int64_t k = k_; k < k_ + n; ++k) sink(static_cast<std::int64_t>(minor[k]), Widen(values[k]));
        k_ += n;
        emitted += n;
        continue;
      }
      if (s_ >= s1_) break;
      const std::int64_t u = NextUnsorted(s_);
      if (u > s_) {  // segments [s_, u) are sorted: their entries in one run
        k_ = OffsetAt(job_, s_);
        kend_ = OffsetAt(job_, u);
        s_ = u;
        continue;
      }
      gend_ = BuildGroups<T, I>(job_, s_, scratch_);
      g_ = 0;
      ++s_;
    }
    return emitted;
  }

 private:
  std::int64_t NextUnsorted(std::int64_t s) const {
    if (job_.unsorted == nullptr) return s1_;
    const std::uint64_t* bits = job_.unsorted;
    std::int64_t w = s >> 6;
    std::uint64_t word = bits[w] & (~std::uint64_t{0} << (s & 63));
    const std::int64_t last_word = (s1_ - 1) >> 6;
    while (word == 0) {
      if (++w > last_word) return s1_;
      word = bits[w];
    }
    return std::min(s1_, w * 64 + std::countr_zero(word));
  }

  const SparseJob& job_;
  const I* minor_;
  const T* values_;
  std::int64_t s_, s1_;
  std::int64_t k_ = 0, kend_ = 0;
  std::int64_t g_ = 0, gend_ = 0;
  GroupedScratch* scratch_;
};

// ---------------------------------------------------------------------------
// What a column accumulates. Partial(c, y, &v) says whether column c takes a
// contribution and what it is; kMax selects max (of bit patterns) over sum.

template <bool kFlagTiny>
struct SumSquaresOp {
  static constexpr bool kMax = false;
  bool Partial(std::int64_t, double y, double* v) const {
    double q = y * y;
    if constexpr (kFlagTiny) {
      // A square that underflowed (or nearly) would be lost: +inf sends the
      // column to the robust recomputation.
      if (q < 0x1p-1000 && y != 0.0) q = HUGE_VAL;
    }
    *v = q;
    return true;
  }
};

struct SumAbsOp {
  static constexpr bool kMax = false;
  bool Partial(std::int64_t, double y, double* v) const {
    *v = std::fabs(y);
    return true;
  }
};

struct MaxAbsOp {
  static constexpr bool kMax = true;
  bool Partial(std::int64_t, double y, double* v) const {
    *v = std::fabs(y);
    return true;
  }
};

// Restricted to some columns and/or divided by the column maxima; its
// combination (sum or max) is chosen at run time.
struct GeneralOp {
  static constexpr bool kMax = false;
  static constexpr bool kRuntimeMax = true;
  ColumnReduceSpec spec;
  double p;
  bool max;
  bool Partial(std::int64_t c, double y, double* v) const {
    if (spec.only != nullptr && !TestBit(spec.only, c)) return false;
    double a = std::fabs(y);
    if (spec.divide_by_m || spec.op == Reduce::kSumPowScaled) {
      const double m = spec.m[c];
      if (!(m > 0.0) || !(m <= std::numeric_limits<double>::max())) return false;
      a /= m;
    }
    switch (spec.op) {
      case Reduce::kSumSquares:
        *v = a * a;
        break;
      case Reduce::kSumAbs:
      case Reduce::kMaxAbs:
        *v = a;
        break;
      case Reduce::kSumPowScaled:
        *v = std::pow(a, p);
        break;
    }
    return true;
  }
};

template <class Op>
constexpr bool RuntimeMax() {
  if constexpr (requires { Op::kRuntimeMax; }) {
    return Op::kRuntimeMax;
  } else {
    return false;
  }
}

template <class Op>
inline void Combine(const Op& op, double* slot, double v) {
  if constexpr (RuntimeMax<Op>()) {
    *slot = op.max ? BitsMax(*slot, v) : *slot + v;
  } else if constexpr (Op::kMax) {
    *slot = BitsMax(*slot, v);
  } else {
    *slot += v;
  }
}

// ---------------------------------------------------------------------------
// Private arrays.

// Validation folded into the first pass (ReduceColumnsValidating).
struct FoldedValidation {
  std::vector<std::int64_t> bad, longest;
  std::vector<std::uint8_t> out_of_memory;
};

// Segments per validated chunk: about this many entries.
constexpr std::int64_t kFoldChunkEntries = 16384;

template <class T, class I, class Op>
bool ReducePrivate(const SparseJob& job, const Op& op, int parts,
                   const std::vector<std::int64_t>& slices, double* out,
                   FoldedValidation* fold = nullptr) {
  const std::int64_t n = job.minor_dim;
  std::vector<std::unique_ptr<double, decltype(&std::free)>> owned;
  std::vector<double*> acc(static_cast<std::size_t>(parts), nullptr);
  acc[0] = out;
  for (int p = 1; p < parts; ++p) {
    double* a = static_cast<double*>(std::calloc(static_cast<std::size_t>(std::max<std::int64_t>(n, 1)), sizeof(double)));
    if (a == nullptr) return false;
    owned.emplace_back(a, &std::free);
    acc[p] = a;
  }
  std::vector<GroupedScratch> scratch(static_cast<std::size_t>(parts));
  for (auto& s : scratch) {
    if (!s.Reserve(job.max_grouped_len)) return false;
  }
  ParallelFor(parts, parts, [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t p = b; p < e; ++p) {
      double* __restrict a = acc[p];
      auto sink = [&](std::int64_t c, double y) {
        double v = 0.0;
        if (op.Partial(c, y, &v)) Combine(op, a + c, v);
      };
      if (fold == nullptr) {
        Emitter<T, I> em(job, slices[p], slices[p + 1], &scratch[p]);
        em.Emit(std::numeric_limits<std::int64_t>::max(), sink);
        continue;
      }
      // Chunk by chunk: validate, then accumulate while the indices are hot.
      for (std::int64_t s = slices[p]; s < slices[p + 1];) {
        const std::int64_t kb = OffsetAt(job, s);
        std::int64_t t = s + 1;
        while (t < slices[p + 1] && OffsetAt(job, t + 1) - kb <= kFoldChunkEntries) ++t;
        const std::int64_t found = ValidateSegments(job, s, t, job.minor_dim,
                                                    const_cast<std::uint64_t*>(job.unsorted),
                                                    &fold->longest[p]);
        if (found >= 0) {
          fold->bad[p] = found;
          break;
        }
        if (!scratch[p].Reserve(fold->longest[p])) {
          fold->out_of_memory[p] = 1;
          break;
        }
        Emitter<T, I> em(job, s, t, &scratch[p]);
        em.Emit(std::numeric_limits<std::int64_t>::max(), sink);
        s = t;
      }
    }
  });
  if (fold != nullptr) {
    for (int p = 0; p < parts; ++p) {
      if (fold->out_of_memory[p]) return false;
    }
    for (int p = 0; p < parts; ++p) {
      if (fold->bad[p] >= 0) return true;  // the caller reports it; `out` is garbage
    }
  }
  if (parts > 1) {
    ParallelFor(parts, n, [&](std::int64_t b, std::int64_t e, int) {
      for (int p = 1; p < parts; ++p) {
        const double* src = acc[p];
        for (std::int64_t c = b; c < e; ++c) Combine(op, out + c, src[c]);
      }
    });
  }
  return true;
}

// ---------------------------------------------------------------------------
// Striped buckets.

struct PartBuffers {
  std::unique_ptr<std::int64_t[]> stage_c, bucket_c;
  std::unique_ptr<double[]> stage_v, bucket_v;
  std::vector<std::int64_t> bucket_start;  // parts + 1
};

template <class T, class I, class Op>
bool ReduceStriped(const SparseJob& job, const Op& op, int parts, std::int64_t epoch_entries,
                   const std::vector<std::int64_t>& slices, double* out) {
  const std::int64_t n = job.minor_dim;
  // Stripes of 2^shift columns, at most 64 per part, dealt to the parts in
  // contiguous runs so that each part owns about the same number of columns.
  int shift = 0;
  while (((n - 1) >> shift) + 1 > 64 * static_cast<std::int64_t>(parts)) ++shift;
  const std::int64_t stripes = ((n - 1) >> shift) + 1;
  std::vector<std::int32_t> owner(static_cast<std::size_t>(stripes));
  for (std::int64_t i = 0; i < stripes; ++i) owner[i] = static_cast<std::int32_t>(i * parts / stripes);

  std::vector<PartBuffers> buf(static_cast<std::size_t>(parts));
  std::vector<GroupedScratch> scratch(static_cast<std::size_t>(parts));
  for (int p = 0; p < parts; ++p) {
    auto& b = buf[p];
    b.stage_c.reset(new (std::nothrow) std::int64_t[epoch_entries]);
    b.bucket_c.reset(new (std::nothrow) std::int64_t[epoch_entries]);
    b.stage_v.reset(new (std::nothrow) double[epoch_entries]);
    b.bucket_v.reset(new (std::nothrow) double[epoch_entries]);
    if (!b.stage_c || !b.bucket_c || !b.stage_v || !b.bucket_v) return false;
    b.bucket_start.assign(static_cast<std::size_t>(parts) + 1, 0);
    if (!scratch[p].Reserve(job.max_grouped_len)) return false;
  }
  std::vector<Emitter<T, I>> emitters;
  emitters.reserve(static_cast<std::size_t>(parts));
  for (int p = 0; p < parts; ++p) emitters.emplace_back(job, slices[p], slices[p + 1], &scratch[p]);
  std::vector<std::uint8_t> done(2 * static_cast<std::size_t>(parts), 0);

  auto produce = [&](int p, std::int64_t epoch) {
    PartBuffers& b = buf[p];
    std::int64_t count = 0;
    emitters[p].Emit(epoch_entries, [&](std::int64_t c, double y) {
      double v = 0.0;
      if (op.Partial(c, y, &v)) {
        b.stage_c[count] = c;
        b.stage_v[count] = v;
        ++count;
      }
    });
    // Counting sort of the staged pairs by owner, stable.
    std::fill(b.bucket_start.begin(), b.bucket_start.end(), 0);
    for (std::int64_t i = 0; i < count; ++i) ++b.bucket_start[owner[b.stage_c[i] >> shift] + 1];
    for (int q = 0; q < parts; ++q) b.bucket_start[q + 1] += b.bucket_start[q];
    std::vector<std::int64_t>& start = b.bucket_start;
    // Write cursors: start[q] advances while placing and is restored after.
    for (std::int64_t i = 0; i < count; ++i) {
      const std::int64_t at = start[owner[b.stage_c[i] >> shift]]++;
      b.bucket_c[at] = b.stage_c[i];
      b.bucket_v[at] = b.stage_v[i];
    }
    for (int q = parts; q > 0; --q) start[q] = start[q - 1];
    start[0] = 0;
    done[(epoch & 1) * parts + p] = emitters[p].done() ? 1 : 0;
  };
  auto flush = [&](int o) {
    for (int q = 0; q < parts; ++q) {
      const PartBuffers& b = buf[q];
      for (std::int64_t i = b.bucket_start[o]; i < b.bucket_start[o + 1]; ++i) {
        Combine(op, out + b.bucket_c[i], b.bucket_v[i]);
      }
    }
  };
  auto all_done = [&](std::int64_t epoch) {
    for (int p = 0; p < parts; ++p) {
      if (!done[(epoch & 1) * parts + p]) return false;
    }
    return true;
  };

#if defined(_OPENMP)
  if (parts > 1) {
#pragma omp parallel num_threads(parts)
    {
      const int t = omp_get_thread_num();
      const int team = omp_get_num_threads();
      for (std::int64_t epoch = 0;; ++epoch) {
        for (int p = t; p < parts; p += team) produce(p, epoch);
#pragma omp barrier
        for (int o = t; o < parts; o += team) flush(o);
#pragma omp barrier
        if (all_done(epoch)) break;
      }
    }
    return true;
  }
#endif
  for (std::int64_t epoch = 0;; ++epoch) {
    for (int p = 0; p < parts; ++p) produce(p, epoch);
    for (int o = 0; o < parts; ++o) flush(o);
    if (all_done(epoch)) break;
  }
  return true;
}

template <class T, class I, class Op>
bool ReduceWith(const SparseJob& job, const Op& op, const ColumnSumConfig& config, double* out) {
  const int parts = std::max(config.parts, 1);
  const std::vector<std::int64_t> slices = BalancedSlices(job, parts);
  if (config.mode == ColumnSumMode::kStripedBuckets) {
    return ReduceStriped<T, I>(job, op, parts, config.epoch_entries, slices, out);
  }
  return ReducePrivate<T, I>(job, op, parts, slices, out);
}

// ---------------------------------------------------------------------------
// Pruning.

// T: the storage type; I: the index type.
template <class T, class I>
std::int64_t PruneT(const PruneArrays& a, double tau, PruneWorkspace* ws) {
  T* values = static_cast<T*>(a.values);
  const bool csr = a.indptr != nullptr;
  I* indptr = static_cast<I*>(a.indptr);
  I* indices = static_cast<I*>(a.indices);
  I* row = static_cast<I*>(a.row);
  I* col = static_cast<I*>(a.col);
  const int parts = ws->parts;
  const std::vector<std::int64_t>& bound = ws->bound;
  const std::vector<std::int64_t>& kstart = ws->kstart;
  std::vector<std::int64_t>& kept = ws->kept;
  std::vector<std::int64_t>& base = ws->base;
  auto keep = [&](std::int64_t k) { return !(std::fabs(Widen(values[k])) < tau); };
  ParallelFor(parts, parts, [&](std::int64_t pb, std::int64_t pe, int) {
    for (std::int64_t p = pb; p < pe; ++p) {
      std::int64_t w = kstart[p];
      if (csr) {
        // indptr[s + 1] is read before this slice overwrites it; no other
        // slice reads it (each starts from kstart, read beforehand).
        std::int64_t start = kstart[p];
        for (std::int64_t s = bound[p]; s < bound[p + 1]; ++s) {
          const std::int64_t end = indptr[s + 1];
          for (std::int64_t k = start; k < end; ++k) {
            if (!keep(k)) continue;
            values[w] = values[k];
            indices[w] = indices[k];
            ++w;
          }
          indptr[s + 1] = static_cast<I>(w - kstart[p]);  // relative; fixed below
          start = end;
        }
      } else {
        for (std::int64_t k = kstart[p]; k < kstart[p + 1]; ++k) {
          if (!keep(k)) continue;
          values[w] = values[k];
          row[w] = row[k];
          col[w] = col[k];
          ++w;
        }
      }
      kept[p] = w - kstart[p];
    }
  });
  // Move each slice's survivors down to their final place, in slice order:
  // a slice only moves toward lower positions, onto space already vacated.
  std::int64_t total = 0;
  for (int p = 0; p < parts; ++p) {
    base[p] = total;
    if (total != kstart[p] && kept[p] > 0) {
      const std::size_t n = static_cast<std::size_t>(kept[p]);
      std::memmove(values + total, values + kstart[p], n * sizeof(T));
      if (csr) {
        std::memmove(indices + total, indices + kstart[p], n * sizeof(I));
      } else {
        std::memmove(row + total, row + kstart[p], n * sizeof(I));
        std::memmove(col + total, col + kstart[p], n * sizeof(I));
      }
    }
    total += kept[p];
  }
  if (csr) {
    ParallelFor(parts, parts, [&](std::int64_t pb, std::int64_t pe, int) {
      for (std::int64_t p = pb; p < pe; ++p) {
        for (std::int64_t s = bound[p]; s < bound[p + 1]; ++s) {
          indptr[s + 1] = static_cast<I>(indptr[s + 1] + base[p]);
        }
      }
    });
  }
  return total;
}

}  // namespace

// ---------------------------------------------------------------------------

bool GroupedScratch::Reserve(std::int64_t n) noexcept {
  try {
    pairs.reserve(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
    sums.reserve(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
    return true;
  } catch (const std::bad_alloc&) {
    return false;
  } catch (const std::length_error&) {
    return false;
  }
}

VectorNorm RobustNorm(const double* y, std::int64_t n, NormKind kind, double p) {
  double m = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double a = std::fabs(y[i]);
    if (!(a <= std::numeric_limits<double>::max())) return {std::nan(""), false};
    m = std::max(m, a);
  }
  if (m == 0.0 || kind == NormKind::kLInf) return {m, true};
  double s = 0.0;
  for (std::int64_t i = 0; i < n; ++i) s += ScaledTerm(y[i], m, kind, p);
  return {FinishScaled(m, s, kind, p), true};
}

VectorNorm GroupedSegmentNorm(const SparseJob& job, std::int64_t s, GroupedScratch* scratch) {
  VectorNorm norm{0.0, true};
  WithSparseTypes(job, [&](auto t, auto i) {
    const std::int64_t g = BuildGroups<TypeOf<decltype(t)>, TypeOf<decltype(i)>>(job, s, scratch);
    norm = RobustNorm(scratch->sums.data(), g, job.rule.kind, job.rule.p);
  });
  return norm;
}

void ScaleSegmentScalar(const SparseJob& job, std::int64_t s, const Scale& scale) {
  VisitDType(job.dtype, [&](auto t) {
    using T = TypeOf<decltype(t)>;
    T* values = static_cast<T*>(job.values);
    const std::int64_t b = OffsetAt(job, s), e = OffsetAt(job, s + 1);
    for (std::int64_t i = b; i < e; ++i) {
      T* v = values + (job.perm != nullptr ? job.perm[i] : i);
      *v = ScaleElement(*v, scale);
    }
  });
}

std::vector<std::int64_t> BalancedSlices(const SparseJob& job, int parts) {
  parts = std::max(parts, 1);
  std::vector<std::int64_t> bound(static_cast<std::size_t>(parts) + 1, 0);
  const std::int64_t segments = job.segments;
  // Weight of the first s segments: their entries plus one per segment, so
  // that runs of empty segments are shared out too.
  auto weight = [&](std::int64_t s) { return OffsetAt(job, s) + s; };
  const std::int64_t total = weight(segments);
  for (int p = 1; p < parts; ++p) {
    const std::int64_t goal = static_cast<std::int64_t>(
        static_cast<double>(total) * p / parts);
    std::int64_t lo = bound[p - 1], hi = segments;  // first s with weight(s) >= goal
    while (lo < hi) {
      const std::int64_t mid = lo + (hi - lo) / 2;
      if (weight(mid) < goal) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    bound[p] = lo;
  }
  bound[parts] = segments;
  return bound;
}

bool ReduceColumnsValidating(const SparseJob& job, const ColumnReduceSpec& spec, int parts,
                             double* out, std::int64_t* bad, std::int64_t* longest_unsorted) {
  parts = std::max(parts, 1);
  FoldedValidation fold;
  fold.bad.assign(static_cast<std::size_t>(parts), -1);
  fold.longest.assign(static_cast<std::size_t>(parts), 0);
  fold.out_of_memory.assign(static_cast<std::size_t>(parts), 0);
  const std::vector<std::int64_t> slices = BalancedSlices(job, parts);
  bool ok = false;
  WithSparseTypes(job, [&](auto t, auto i) {
    using T = TypeOf<decltype(t)>;
    using I = TypeOf<decltype(i)>;
    switch (spec.op) {
      case Reduce::kSumAbs:
        ok = ReducePrivate<T, I>(job, SumAbsOp{}, parts, slices, out, &fold);
        break;
      case Reduce::kMaxAbs:
        ok = ReducePrivate<T, I>(job, MaxAbsOp{}, parts, slices, out, &fold);
        break;
      default:
        ok = ReducePrivate<T, I>(job, SumSquaresOp<std::is_same_v<T, double>>{}, parts, slices, out, &fold);
        break;
    }
  });
  *bad = -1;
  for (std::int64_t f : fold.bad) {
    if (f >= 0) {
      *bad = f;  // parts are in storage order: the first part with one has the first
      break;
    }
  }
  *longest_unsorted = *std::max_element(fold.longest.begin(), fold.longest.end());
  return ok;
}

bool ReduceColumns(const SparseJob& job, const ColumnReduceSpec& spec, const ColumnSumConfig& config,
                   double* out) {
  bool ok = false;
  WithSparseTypes(job, [&](auto t, auto i) {
    using T = TypeOf<decltype(t)>;
    using I = TypeOf<decltype(i)>;
    const bool general = spec.only != nullptr || spec.divide_by_m || spec.op == Reduce::kSumPowScaled;
    if (general) {
      ok = ReduceWith<T, I>(job, GeneralOp{spec, job.rule.p, spec.op == Reduce::kMaxAbs}, config, out);
      return;
    }
    switch (spec.op) {
      case Reduce::kSumAbs:
        ok = ReduceWith<T, I>(job, SumAbsOp{}, config, out);
        break;
      case Reduce::kMaxAbs:
        ok = ReduceWith<T, I>(job, MaxAbsOp{}, config, out);
        break;
      default:
        ok = ReduceWith<T, I>(job, SumSquaresOp<std::is_same_v<T, double>>{}, config, out);
        break;
    }
  });
  return ok;
}

void PreparePrune(const PruneArrays& a, int threads, PruneWorkspace* ws) {
  const int parts = std::max(1, threads);
  ws->parts = parts;
  if (a.indptr != nullptr) {
    SparseJob view;
    view.segments = a.segments;
    view.nnz = a.nnz;
    view.offsets = a.indptr;
    view.offsets_type = a.index_type;
    ws->bound = BalancedSlices(view, parts);
    ws->kstart.resize(ws->bound.size());
    for (int p = 0; p <= parts; ++p) ws->kstart[p] = OffsetAt(view, ws->bound[p]);
  } else {
    ws->bound.resize(static_cast<std::size_t>(parts) + 1);
    ws->kstart.resize(ws->bound.size());
    for (int p = 0; p <= parts; ++p) ws->bound[p] = ws->kstart[p] = a.nnz * p / parts;
  }
  ws->kept.assign(static_cast<std::size_t>(parts), 0);
  ws->base.assign(static_cast<std::size_t>(parts), 0);
}

std::int64_t PruneSparse(const PruneArrays& arrays, double tau, PruneWorkspace* ws) {
  std::int64_t kept = arrays.nnz;
  VisitDTypeAndIndex(arrays.dtype, arrays.index_type, [&](auto t, auto i) {
    kept = PruneT<TypeOf<decltype(t)>, TypeOf<decltype(i)>>(arrays, tau, ws);
  });
  return kept;
}

void OffsetsOfSorted(const void* major, IndexType type, std::int64_t nnz, std::int64_t segments,
                     std::int64_t* offsets, int threads) {
  VisitIndexType(type, [&](auto it) {
    using I = TypeOf<decltype(it)>;
    const I* a = static_cast<const I*>(major);
    if (nnz == 0) {
      std::fill(offsets, offsets + segments + 1, 0);
      return;
    }
    // offsets[s] for s <= a[0] is 0 and for s > a[nnz - 1] is nnz; in between
    // the position where a steps past s. Each slot is written by one thread.
    for (std::int64_t s = 0; s <= a[0]; ++s) offsets[s] = 0;
    for (std::int64_t s = static_cast<std::int64_t>(a[nnz - 1]) + 1; s <= segments; ++s) offsets[s] = nnz;
    ParallelFor(threads, nnz - 1, [&](std::int64_t b, std::int64_t e, int) {
      for (std::int64_t k = b + 1; k < e + 1; ++k) {
        for (std::int64_t s = static_cast<std::int64_t>(a[k - 1]) + 1; s <= a[k]; ++s) offsets[s] = k;
      }
    });
  });
}

void GroupByMajor(const void* major, IndexType type, std::int64_t nnz, std::int64_t segments,
                  std::int64_t* offsets, std::int64_t* perm) {
  VisitIndexType(type, [&](auto it) {
    using I = TypeOf<decltype(it)>;
    const I* a = static_cast<const I*>(major);
    std::fill(offsets, offsets + segments + 1, 0);
    for (std::int64_t k = 0; k < nnz; ++k) ++offsets[static_cast<std::int64_t>(a[k]) + 1];
    for (std::int64_t s = 0; s < segments; ++s) offsets[s + 1] += offsets[s];
    // offsets[s] serves as segment s's write cursor, then is shifted back.
    for (std::int64_t k = 0; k < nnz; ++k) perm[offsets[a[k]]++] = k;
    for (std::int64_t s = segments; s > 0; --s) offsets[s] = offsets[s - 1];
    offsets[0] = 0;
  });
}

}  // namespace sparsenorm::cpu
