// The row operator's CPU kernels, compiled once per SIMD target (SSE4, AVX2,
// AVX-512 and a scalar fallback on x86) and dispatched at run time, so the
// shipped library needs no -march flag.
//
// Each kernel walks a slice of the work handed to it by rows.cc and
// prefetches the rows it will touch next: the rows of
// an embedding table are scattered, and without prefetching every row costs
// a full memory latency.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/rows_kernels.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>
#include <bit>
#include <utility>

#include "cpu/row_set.h"
#include "cpu/rows_cpu.h"
#include "cpu/vector_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace sparsenorm::cpu {
namespace HWY_NAMESPACE {

template <class T>
HWY_INLINE void ProcessRow(const RowJob& job, const T* in, T* out, RowCounts* counts) {
  const size_t n = static_cast<size_t>(job.cols);
  const Scale scale = Decide(NormOf(in, n, job.rule.kind, job.rule.p), job.rule);
  if (scale.action == Action::kScale) {
    ++counts->scaled;
    ScaleVector(in, out, n, scale);
    return;
  }
  if (scale.action == Action::kNonFinite) ++counts->nonfinite;
  if (in != out) std::memcpy(out, in, static_cast<size_t>(job.row_bytes));
}

// Short rows: the decisions of a batch of rows at once. A row of a few
// dozen elements costs less to load, sum and scale than its float64 square
// root and division, which one row at a time queue on the divider; here
// kRowBatch rows' sums go through one vector square root and division.
// What the batch decides is exactly ProcessRow's (the same sums, the same
// correctly rounded float64 operations, ScaleBy and ScaleVector for the
// scaling); rows outside the common case (a sum too small or too large to
// trust, a factor that overflows float64) go through ProcessRow itself.
// float32 arithmetic (float32, float16, bfloat16 tables) with p = 1 or 2
// and rows of at most kBatchedRowBytes; longer rows amortize the division
// themselves.
constexpr int kRowBatch = 8;
constexpr int64_t kBatchedRowBytes = 256;

template <class T>
HWY_INLINE bool BatchesRows(const RowJob& job) {
  return !kFloat64Math<T> && job.row_bytes <= kBatchedRowBytes &&
         (job.rule.kind == NormKind::kL2 || job.rule.kind == NormKind::kL1);
}

template <class T>
HWY_NOINLINE void ProcessFloatBatch(const RowJob& job, T* const* rows, int count,
                                    RowCounts* counts) {
  const size_t n = static_cast<size_t>(job.cols);
  const bool l2 = job.rule.kind == NormKind::kL2;
  const hn::ScalableTag<float> df;
  // Lanes past `count` hold 1, a sum that decides nothing anyone reads.
  HWY_ALIGN float sums[kRowBatch] = {1, 1, 1, 1, 1, 1, 1, 1};
  for (int j = 0; j < count; ++j) sums[j] = l2 ? SumSquares(df, rows[j], n) : SumAbs(df, rows[j], n);

  // Per row: the factor when the row is scaled in the common case, NaN
  // otherwise; and whether it is left as it is.
  HWY_ALIGN double factor[kRowBatch];
  HWY_ALIGN double left[kRowBatch];
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dh;
  const auto largest = hn::Set(dd, static_cast<double>(LargestSum(0.0f)));
  const auto smallest = hn::Set(dd, l2 ? static_cast<double>(SmallestTrustedSum(0.0f)) : 0.0);
  const auto target = hn::Set(dd, job.rule.target);
  const auto eps = hn::Set(dd, job.rule.eps);
  const auto zero = hn::Zero(dd);
  const auto nan = hn::Set(dd, std::numeric_limits<double>::quiet_NaN());
  for (int j = 0; j < kRowBatch; j += static_cast<int>(hn::Lanes(dd))) {
    const auto sum = hn::PromoteTo(dd, hn::LoadU(dh, sums + j));
    // SumIsTrusted, NormFromSum and Decide (common/norms.h, decision.h).
    const auto trusted = hn::And(hn::Le(sum, largest), hn::Ge(sum, smallest));
    const auto norm = l2 ? hn::Sqrt(sum) : sum;
    auto leave = hn::Eq(norm, zero);
    if (job.rule.max_norm) leave = hn::Or(leave, hn::Le(norm, target));
    const auto d = hn::Div(target, hn::Add(norm, eps));
    const auto fast = hn::AndNot(leave, hn::And(trusted, hn::Le(d, hn::Set(dd, DBL_MAX))));
    hn::Store(hn::IfThenElse(fast, d, nan), dd, factor + j);
    hn::Store(hn::IfThenElseZero(hn::And(trusted, leave), hn::Set(dd, 1.0)), dd, left + j);
  }
  for (int j = 0; j < count; ++j) {
    if (factor[j] == factor[j]) {
      ++counts->scaled;
      ScaleVector(rows[j], rows[j], n, ScaleBy(factor[j]));
    } else if (left[j] == 0.0) {
      ProcessRow(job, rows[j], rows[j], counts);
    }
  }
}

template <class T>
HWY_INLINE void ProcessBatch(const RowJob& job, T* const* rows, int count, RowCounts* counts) {
  if constexpr (kFloat64Math<T>) {  // not batched (BatchesRows)
    for (int j = 0; j < count; ++j) ProcessRow(job, rows[j], rows[j], counts);
  } else {
    ProcessFloatBatch(job, rows, count, counts);
  }
}

// Rows to be normalized in place, gathered kRowBatch at a time.
template <class T>
struct RowBatch {
  T* rows[kRowBatch];
  int size = 0;

  HWY_INLINE void Add(const RowJob& job, T* row, RowCounts* counts) {
    rows[size++] = row;
    if (size == kRowBatch) Flush(job, counts);
  }
  HWY_INLINE void Flush(const RowJob& job, RowCounts* counts) {
    if (size > 0) ProcessBatch(job, rows, size, counts);
    size = 0;
  }
};

// Rows are gathered from the bitmap kRowBlock at a time.
constexpr int64_t kRowBlock = 256;

// The marked rows of a RowBitmap found through its summary, clearing each
// word and summary word as it is taken (which keeps RowBitmap's invariant
// and spares its release a second pass): summary words [next, end), and the
// bits of summary word next - 1 not yet taken in `pending`.
struct SummaryCursor {
  uint64_t* words;
  uint64_t* summary;
  int64_t next;
  int64_t end;
  uint64_t pending = 0;

  // Row numbers, ascending, into rows[], while at most capacity - 64 are
  // collected (a word holds at most 64: whole words are taken); returns
  // how many, 0 when none is left.
  HWY_INLINE int64_t Collect(int64_t* rows, int64_t capacity) {
    int64_t n = 0;
    while (n <= capacity - 64) {
      if (pending == 0) {
        if (next >= end) break;
        pending = summary[next];
        summary[next++] = 0;
        continue;
      }
      const int64_t w = (next - 1) * 64 + std::countr_zero(pending);
      pending &= pending - 1;
      uint64_t bits = words[w];
      words[w] = 0;
      for (; bits != 0; bits &= bits - 1) rows[n++] = w * 64 + std::countr_zero(bits);
    }
    return n;
  }
};

int64_t MarkedRows(uint64_t* words, uint64_t* summary, int64_t summary_count, int64_t* rows,
                   int64_t capacity) {
  SummaryCursor cursor{words, summary, 0, summary_count};
  return cursor.Collect(rows, capacity);
}

template <class T>
void MarkedRowsInPlaceT(const RowJob& job, int64_t summary_begin, int64_t summary_end,
                        RowCounts* counts) {
  // Rows are gathered a block at a time, the next block before the current
  // one is processed, so the prefetch runs ahead across block boundaries.
  int64_t buffers[2][kRowBlock];
  int64_t* current = buffers[0];
  int64_t* next = buffers[1];
  SummaryCursor cursor{job.marks, job.summary, summary_begin, summary_end};
  int64_t count = cursor.Collect(current, kRowBlock);
  const int64_t ahead = job.prefetch_rows;
  auto prefetch = [&](int64_t r) { PrefetchRow(job.out + r * job.out_stride_bytes, job.row_bytes); };
  for (int64_t i = 0; i < std::min(count, ahead); ++i) prefetch(current[i]);
  const bool batched = BatchesRows<T>(job);
  RowBatch<T> batch;
  while (count > 0) {
    const int64_t next_count = cursor.Collect(next, kRowBlock);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t a = i + ahead;
      if (a < count) {
        prefetch(current[a]);
      } else if (a - count < next_count) {
        prefetch(next[a - count]);
      }
      T* row = reinterpret_cast<T*>(job.out + current[i] * job.out_stride_bytes);
      if (batched) {
        batch.Add(job, row, counts);
      } else {
        ProcessRow(job, row, row, counts);
      }
    }
    counts->distinct += count;
    std::swap(current, next);
    count = next_count;
  }
  batch.Flush(job, counts);
}

template <class T>
void AllRowsOutOfPlaceT(const RowJob& job, int64_t row_begin, int64_t row_end,
                        RowCounts* counts) {
  // Both tables densely packed: runs of untouched rows are one memcpy each.
  const bool packed = job.in_stride_bytes == job.row_bytes && job.out_stride_bytes == job.row_bytes;
  int64_t r = row_begin;
  while (r < row_end) {
    int64_t run_end = r;
    while (run_end < row_end && ((job.marks[run_end >> 6] >> (run_end & 63)) & 1u) == 0) {
      ++run_end;
    }
    if (run_end > r) {
      if (packed) {
        std::memcpy(job.out + r * job.row_bytes, job.in + r * job.row_bytes,
                    static_cast<size_t>((run_end - r) * job.row_bytes));
      } else {
        for (int64_t q = r; q < run_end; ++q) {
          std::memcpy(job.out + q * job.out_stride_bytes, job.in + q * job.in_stride_bytes,
                      static_cast<size_t>(job.row_bytes));
        }
      }
      r = run_end;
      continue;
    }
    ++counts->distinct;
    ProcessRow(job, reinterpret_cast<const T*>(job.in + r * job.in_stride_bytes),
               reinterpret_cast<T*>(job.out + r * job.out_stride_bytes), counts);
    ++r;
  }
}

template <class T, class I>
void OwnedRowsInPlaceT(const RowJob& job, const I* idx, int64_t begin, int64_t end,
                       RowCounts* counts) {
  const int64_t ahead = job.prefetch_rows;
  const uint8_t* owner = job.owner;
  auto prefetch = [&](int64_t i) {
    if (owner[i]) PrefetchRow(job.out + static_cast<int64_t>(idx[i]) * job.out_stride_bytes, job.row_bytes);
  };
  for (int64_t i = begin; i < std::min(end, begin + ahead); ++i) prefetch(i);
  const bool batched = BatchesRows<T>(job);
  RowBatch<T> batch;
  for (int64_t i = begin; i < end; ++i) {
    if (i + ahead < end) prefetch(i + ahead);
    if (!owner[i]) continue;
    ++counts->distinct;
    T* row = reinterpret_cast<T*>(job.out + static_cast<int64_t>(idx[i]) * job.out_stride_bytes);
    if (batched) {
      batch.Add(job, row, counts);
    } else {
      ProcessRow(job, row, row, counts);
    }
  }
  batch.Flush(job, counts);
}

template <class T>
void NormsOfRowsT(const RowList& list, double p, VectorNorm* out) {
  const auto n = static_cast<size_t>(list.cols);
  const int64_t row_bytes = list.cols * static_cast<int64_t>(sizeof(T));
  const NormKind kind = KindOf(p);
  auto row = [&](int64_t i) { return list.base + list.rows[i] * list.stride_bytes; };
  for (int64_t i = 0; i < std::min(list.count, list.prefetch_rows); ++i) PrefetchRow(row(i), row_bytes);
  for (int64_t i = 0; i < list.count; ++i) {
    if (i + list.prefetch_rows < list.count) PrefetchRow(row(i + list.prefetch_rows), row_bytes);
    out[i] = NormOf(reinterpret_cast<const T*>(row(i)), n, kind, p);
  }
}

template <class T>
void ScaleRowsT(const RowList& list, const Scale* scales) {
  const auto n = static_cast<size_t>(list.cols);
  const int64_t row_bytes = list.cols * static_cast<int64_t>(sizeof(T));
  auto row = [&](int64_t i) { return list.base + list.rows[i] * list.stride_bytes; };
  auto prefetch = [&](int64_t i) {
    if (scales[i].action == Action::kScale) PrefetchRow(row(i), row_bytes);
  };
  for (int64_t i = 0; i < std::min(list.count, list.prefetch_rows); ++i) prefetch(i);
  for (int64_t i = 0; i < list.count; ++i) {
    if (i + list.prefetch_rows < list.count) prefetch(i + list.prefetch_rows);
    if (scales[i].action != Action::kScale) continue;
    T* x = reinterpret_cast<T*>(row(i));
    ScaleVector(x, x, n, scales[i]);
  }
}

void NormsOfRows(const RowList& list, double p, VectorNorm* out) {
  VisitDType(list.dtype, [&](auto t) { NormsOfRowsT<TypeOf<decltype(t)>>(list, p, out); });
}

void ScaleRows(const RowList& list, const Scale* scales) {
  VisitDType(list.dtype, [&](auto t) { ScaleRowsT<TypeOf<decltype(t)>>(list, scales); });
}

template <class T, class I>
int64_t FirstNonFiniteT(const RowJob& job, const I* idx, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const T* row = reinterpret_cast<const T*>(job.in + static_cast<int64_t>(idx[i]) * job.in_stride_bytes);
    if (!AllFinite(row, static_cast<size_t>(job.cols))) return i;
  }
  return -1;
}

void MarkedRowsInPlace(const RowJob& job, int64_t summary_begin, int64_t summary_end,
                       RowCounts* counts) {
  VisitDType(job.dtype, [&](auto t) {
    MarkedRowsInPlaceT<TypeOf<decltype(t)>>(job, summary_begin, summary_end, counts);
  });
}

void AllRowsOutOfPlace(const RowJob& job, int64_t row_begin, int64_t row_end, RowCounts* counts) {
  VisitDType(job.dtype, [&](auto t) { AllRowsOutOfPlaceT<TypeOf<decltype(t)>>(job, row_begin, row_end, counts); });
}

void OwnedRowsInPlace(const RowJob& job, int64_t begin, int64_t end, RowCounts* counts) {
  VisitDTypeAndIndex(job.dtype, job.index_type, [&](auto t, auto i) {
    using I = TypeOf<decltype(i)>;
    OwnedRowsInPlaceT<TypeOf<decltype(t)>>(job, static_cast<const I*>(job.indices), begin, end, counts);
  });
}

int64_t FirstNonFinitePosition(const RowJob& job, int64_t begin, int64_t end) {
  int64_t first = -1;
  VisitDTypeAndIndex(job.dtype, job.index_type, [&](auto t, auto i) {
    using I = TypeOf<decltype(i)>;
    first = FirstNonFiniteT<TypeOf<decltype(t)>>(job, static_cast<const I*>(job.indices), begin, end);
  });
  return first;
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

// n a multiple of the float32 lane count; narrow dtypes only.
void WidenForTest(DType dtype, const void* in, float* out, size_t n, bool lane_by_lane) {
  VisitDType(dtype, [&](auto t) {
    using T = TypeOf<decltype(t)>;
    if constexpr (kNarrow<T>) {
      const hn::ScalableTag<float> df;
      const T* x = static_cast<const T*>(in);
      for (size_t i = 0; i + hn::Lanes(df) <= n; i += hn::Lanes(df)) {
        hn::StoreU(lane_by_lane ? LoadWideScalar(df, x + i) : LoadWide(df, x + i), df, out + i);
      }
    }
  });
}

void NarrowForTest(DType dtype, const float* in, void* out, size_t n, bool lane_by_lane) {
  VisitDType(dtype, [&](auto t) {
    using T = TypeOf<decltype(t)>;
    if constexpr (kNarrow<T>) {
      const hn::ScalableTag<float> df;
      T* y = static_cast<T*>(out);
      for (size_t i = 0; i + hn::Lanes(df) <= n; i += hn::Lanes(df)) {
        const auto v = hn::LoadU(df, in + i);
        if (lane_by_lane) {
          StoreNarrowScalar(df, v, y + i);
        } else {
          StoreNarrow(df, v, y + i);
        }
      }
    }
  });
}

VectorNorm NormOfVectorForTest(DType dtype, const void* x, size_t n, double p) {
  VectorNorm norm{0.0, true};
  VisitDType(dtype, [&](auto t) {
    using T = TypeOf<decltype(t)>;
    norm = NormOf(static_cast<const T*>(x), n, KindOf(p), p);
  });
  return norm;
}

void ScaleVectorForTest(DType dtype, const void* in, void* out, size_t n, double scale) {
  VisitDType(dtype, [&](auto t) {
    using T = TypeOf<decltype(t)>;
    ScaleVector(static_cast<const T*>(in), static_cast<T*>(out), n, ScaleBy(scale));
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace sparsenorm::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sparsenorm::cpu {

HWY_EXPORT(MarkedRowsInPlace);
HWY_EXPORT(AllRowsOutOfPlace);
HWY_EXPORT(OwnedRowsInPlace);
HWY_EXPORT(FirstNonFinitePosition);
HWY_EXPORT(NormsOfRows);
HWY_EXPORT(MarkedRows);
HWY_EXPORT(ScaleRows);
HWY_EXPORT(TargetName);
HWY_EXPORT(NormOfVectorForTest);
HWY_EXPORT(ScaleVectorForTest);
HWY_EXPORT(WidenForTest);
HWY_EXPORT(NarrowForTest);

void MarkedRowsInPlace(const RowJob& job, std::int64_t summary_begin, std::int64_t summary_end,
                       RowCounts* counts) {
  HWY_DYNAMIC_DISPATCH(MarkedRowsInPlace)(job, summary_begin, summary_end, counts);
}

void AllRowsOutOfPlace(const RowJob& job, std::int64_t row_begin, std::int64_t row_end,
                       RowCounts* counts) {
  HWY_DYNAMIC_DISPATCH(AllRowsOutOfPlace)(job, row_begin, row_end, counts);
}

void OwnedRowsInPlace(const RowJob& job, std::int64_t begin, std::int64_t end,
                      RowCounts* counts) {
  HWY_DYNAMIC_DISPATCH(OwnedRowsInPlace)(job, begin, end, counts);
}

void NormsOfRows(const RowList& list, double p, VectorNorm* out) {
  HWY_DYNAMIC_DISPATCH(NormsOfRows)(list, p, out);
}

std::int64_t MarkedRows(std::uint64_t* words, std::uint64_t* summary, std::int64_t summary_count,
                        std::int64_t* rows, std::int64_t capacity) {
  return HWY_DYNAMIC_DISPATCH(MarkedRows)(words, summary, summary_count, rows, capacity);
}

void ScaleRows(const RowList& list, const Scale* scales) {
  HWY_DYNAMIC_DISPATCH(ScaleRows)(list, scales);
}

std::int64_t FirstNonFinitePosition(const RowJob& job, std::int64_t begin, std::int64_t end) {
  return HWY_DYNAMIC_DISPATCH(FirstNonFinitePosition)(job, begin, end);
}

const char* DispatchedTargetName() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

VectorNorm NormOfVector(DType dtype, const void* x, std::size_t n, double p) {
  return HWY_DYNAMIC_DISPATCH(NormOfVectorForTest)(dtype, x, n, p);
}

void ScaleVector(DType dtype, const void* in, void* out, std::size_t n, double scale) {
  HWY_DYNAMIC_DISPATCH(ScaleVectorForTest)(dtype, in, out, n, scale);
}

void WidenVector(DType dtype, const void* in, float* out, std::size_t n, bool lane_by_lane) {
  HWY_DYNAMIC_DISPATCH(WidenForTest)(dtype, in, out, n, lane_by_lane);
}

void NarrowVector(DType dtype, const float* in, void* out, std::size_t n, bool lane_by_lane) {
  HWY_DYNAMIC_DISPATCH(NarrowForTest)(dtype, in, out, n, lane_by_lane);
}

}  // namespace sparsenorm::cpu
#endif  // HWY_ONCE
