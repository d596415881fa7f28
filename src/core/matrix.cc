// Front end of the matrix normalization: validates everything, allocates
// every scratch buffer, and only then lets a kernel write.
//
// Order of work, so that a rejected call writes nothing:
//   1. options (norm options, axis, prune_below), the matrix's shape, dtype,
//      index type, pointers and byte sizes;
//   2. sparse structure: index pointers (start at 0, never decrease, end at
//      nnz), then the subset list, then every stored index (CSR/CSC minor
//      indices, COO coordinates), which also finds the segments that hold a
//      repeated index (an unsorted segment is checked for repeats);
//   3. the norms: for the scattered axis of a sparse matrix and axis 0 of a
//      dense one they are all computed into scratch memory first; under
//      NonFinitePolicy::kError the vectors are checked before any write;
//   4. the writes: scaling, then pruning.
//
// Which kernel runs (v = the normalized vectors):
//   dense axis 1            rows, each on its own (the row operator's kernels)
//   dense axis 0            column sums in float64 by column blocks, then scaling
//   CSR axis 1, CSC axis 0  segments: each contiguous run on its own
//   CSR axis 0, CSC axis 1  scattered: column sums (sparse_columns.cc), then
//                           every entry scaled by its column's factor
//   COO                     sorted by row (or column): as CSR (or CSC) with
//                           index pointers computed; otherwise grouped by the
//                           normalized axis through a permutation (8 bytes
//                           per entry), then as segments

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <vector>

#include "core/parallel.h"
#include "core/plan.h"
#include "core/row_set.h"
#include "core/validate.h"
#include "cpu/matrix_cpu.h"
#include "reference/reference.h"
#include "sparsenorm/matrix.h"

namespace sparsenorm {
namespace {

using detail::InvalidArgument;
using detail::StrCat;

// calloc'd float64 arrays: pages of a large array that are never touched
// cost no memory.
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using DoubleArray = std::unique_ptr<double[], FreeDeleter>;
DoubleArray ZeroedDoubles(std::int64_t n) {
  return DoubleArray(static_cast<double*>(
      std::calloc(static_cast<std::size_t>(std::max<std::int64_t>(n, 1)), sizeof(double))));
}

const char* VectorName(int axis) { return axis == 0 ? "column" : "row"; }

Status ValidateMatrixOptions(const MatrixOptions& o) {
  if (Status s = detail::ValidateOptions(o.norm); !s.ok()) return s;
  if (o.axis != 0 && o.axis != 1) {
    return InvalidArgument("options.axis = ", o.axis,
                           " is invalid: use 0 to normalize columns or 1 to normalize rows.");
  }
  if (!(o.prune_below >= 0.0)) {
    return InvalidArgument("options.prune_below = ", detail::FormatDouble(o.prune_below),
                           " is invalid: the pruning threshold must be >= 0 (0 disables it).");
  }
  if (o.subset.has_value()) {
    return detail::CheckIndexList(o.subset->data, o.subset->type, o.subset->size, "options.subset");
  }
  return Status::Ok();
}

// Marks the subset's vectors in `bitmap` (validating every value) and counts
// the distinct ones; without a subset, `vectors` is the count.
Status MarkSubset(const MatrixOptions& o, std::int64_t vectors, int threads,
                  detail::RowBitmap* bitmap, bool* has_subset, std::int64_t* distinct) {
  *has_subset = o.subset.has_value();
  *distinct = vectors;
  if (!*has_subset) return Status::Ok();
  if (!bitmap->Init(vectors)) return detail::OutOfMemory("the subset bitmap");
  const Indices& list = *o.subset;
  const std::int64_t bad = bitmap->MarkAll(list.data, list.type, list.size, threads);
  if (bad >= 0) {
    return detail::IndexOutOfRange("options.subset", bad, detail::IndexAt(list.data, list.type, bad),
                                   vectors, VectorName(o.axis));
  }
  std::int64_t n = 0;
  for (std::int64_t w = 0; w < bitmap->word_count(); ++w) n += std::popcount(bitmap->words()[w]);
  *distinct = n;
  return Status::Ok();
}

Status NonFiniteError(int axis, std::int64_t vector) {
  return Status(StatusCode::kNonFinite,
                StrCat(VectorName(axis), " ", vector,
                       " holds NaN or infinity and options.non_finite is kError; nothing was "
                       "modified."));
}

bool UseReference(const MatrixOptions& o) {
  return o.norm.backend == Backend::kReference || detail::EnvironmentForcesReference();
}

void AddCounts(const std::vector<cpu::MatrixCounts>& parts, MatrixStats* stats) {
  for (const cpu::MatrixCounts& c : parts) {
    stats->vectors_scaled += c.scaled;
    stats->zero_vectors += c.zero;
    stats->nonfinite_vectors += c.nonfinite;
    stats->pruned += c.pruned;
  }
}

// The first (lowest) non-negative value of per-part results, or -1.
std::int64_t FirstFound(const std::vector<std::int64_t>& found) {
  std::int64_t first = -1;
  for (std::int64_t f : found) {
    if (f >= 0 && (first < 0 || f < first)) first = f;
  }
  return first;
}

// ---------------------------------------------------------------------------
// Norms of the scattered axis, from the accumulated column values.
//
// acc holds, per vector: kL2 the sum of squares, kL1 the sum of |x|, kLInf
// max |x| (NaN ordered above inf), kLp max |x|; acc2 (kLp, and the robust
// recomputation of float64 columns) the sum of (|x| / max)^p; `recomputed`
// marks float64 columns whose plain sum overflowed or underflowed.
detail::VectorNorm NormFromSums(detail::NormKind kind, double p, double a, const double* acc2,
                                const std::uint64_t* recomputed, std::int64_t c) {
  constexpr double kMax = std::numeric_limits<double>::max();
  const bool robust = kind == detail::NormKind::kLp ||
                      (recomputed != nullptr && cpu::TestBit(recomputed, c));
  if (robust) {
    const double m = kind == detail::NormKind::kLp ? a : acc2[c];
    const double s = kind == detail::NormKind::kLp ? acc2[c] : a;
    if (!(m <= kMax)) return {std::nan(""), false};
    if (m == 0.0) return {0.0, true};
    switch (kind) {
      case detail::NormKind::kL1:
        return {m * s, true};
      case detail::NormKind::kL2:
        return {m * std::sqrt(s), true};
      default:
        return {m * std::pow(s, 1.0 / p), true};
    }
  }
  if (!(a <= kMax)) return {std::nan(""), false};
  if (kind == detail::NormKind::kL2) return {std::sqrt(a), true};
  return {a, true};
}

// Turns the accumulated values of `n` vectors into plan codes, in place;
// counts the considered ones and finds the first non-finite among them.
void PlanVectors(double* acc, const double* acc2, const std::uint64_t* recomputed, std::int64_t n,
                 const std::uint64_t* subset, detail::NormKind kind, const NormalizeOptions& o,
                 int threads, MatrixStats* stats, std::int64_t* first_nonfinite) {
  const int parts = std::max(1, threads);
  std::vector<cpu::MatrixCounts> counts(static_cast<std::size_t>(parts));
  std::vector<std::int64_t> first(static_cast<std::size_t>(parts), -1);
  detail::ParallelFor(parts, n, [&](std::int64_t b, std::int64_t e, int t) {
    for (std::int64_t c = b; c < e; ++c) {
      if (subset != nullptr && !cpu::TestBit(subset, c)) {
        acc[c] = std::numeric_limits<double>::quiet_NaN();
        continue;
      }
      const detail::VectorNorm norm = NormFromSums(kind, o.p, acc[c], acc2, recomputed, c);
      const detail::Plan plan = detail::PlanFor(norm, o);
      cpu::Count(plan, norm.value, &counts[t]);
      if (plan.action == detail::Action::kNonFinite && first[t] < 0) first[t] = c;
      acc[c] = cpu::EncodePlan(plan, norm.value, o.eps);
    }
  });
  AddCounts(counts, stats);
  *first_nonfinite = FirstFound(first);
}

// Bitmap of the vectors whose float64 sums are not finite (overflowed,
// flagged as underflowing, or holding NaN/inf); null when there is none.
std::unique_ptr<std::uint64_t[]> NonFiniteSums(const double* acc, std::int64_t n) {
  std::unique_ptr<std::uint64_t[]> bits;
  for (std::int64_t c = 0; c < n; ++c) {
    if (acc[c] <= std::numeric_limits<double>::max()) continue;
    if (!bits) bits.reset(new std::uint64_t[static_cast<std::size_t>((n + 63) / 64)]());
    bits[c >> 6] |= std::uint64_t{1} << (c & 63);
  }
  return bits;
}

// ---------------------------------------------------------------------------
// Dense.

// Column blocks of 1024 float64 accumulators (8 KB, in L1): each block is
// summed over all rows by one thread, so the sums do not depend on the
// thread count. With fewer than two blocks per thread the rows are split
// instead and the per-part sums added in part order.
constexpr std::int64_t kColumnBlock = 1024;

void DenseColumnReduce(const cpu::DenseJob& job, cpu::Reduce op, const double* m, int threads,
                       double* acc) {
  const std::int64_t cols = job.cols, rows = job.rows;
  const std::int64_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
  if (threads <= 1 || blocks >= 2 * threads) {
    detail::ParallelForDynamic(threads, blocks, 1, [&](std::int64_t b, std::int64_t e, int) {
      for (std::int64_t blk = b; blk < e; ++blk) {
        const std::int64_t c0 = blk * kColumnBlock, c1 = std::min(cols, c0 + kColumnBlock);
        cpu::DenseReduceColumns(job, op, m, 0, rows, c0, c1, acc + c0);
      }
    });
    return;
  }
  const int parts = threads;
  std::vector<double> partial(static_cast<std::size_t>(parts - 1) * static_cast<std::size_t>(cols), 0.0);
  detail::ParallelFor(parts, parts, [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t p = b; p < e; ++p) {
      double* out = p == 0 ? acc : partial.data() + (p - 1) * cols;
      cpu::DenseReduceColumns(job, op, m, rows * p / parts, rows * (p + 1) / parts, 0, cols, out);
    }
  });
  for (int p = 1; p < parts; ++p) {
    const double* src = partial.data() + (p - 1) * cols;
    for (std::int64_t c = 0; c < cols; ++c) {
      if (op == cpu::Reduce::kMaxAbs) {
        if (std::bit_cast<std::uint64_t>(src[c]) > std::bit_cast<std::uint64_t>(acc[c])) acc[c] = src[c];
      } else {
        acc[c] += src[c];
      }
    }
  }
}

// float64 columns whose plain sum was not finite: max |x| into acc2 and the
// sum of (|x| / max)^2 (or |x| / max) into acc, one column at a time.
void DenseRecompute(const cpu::DenseJob& job, const std::uint64_t* flagged, double* acc, double* acc2,
                    int threads) {
  std::vector<std::int64_t> cols;
  for (std::int64_t c = 0; c < job.cols; ++c) {
    if (cpu::TestBit(flagged, c)) cols.push_back(c);
  }
  detail::ParallelForDynamic(threads, static_cast<std::int64_t>(cols.size()), 1,
                             [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t i = b; i < e; ++i) {
      const std::int64_t c = cols[i];
      auto at = [&](std::int64_t r) {
        return reinterpret_cast<const double*>(job.data + r * job.stride_bytes)[c];
      };
      double m = 0.0;
      for (std::int64_t r = 0; r < job.rows; ++r) {
        const double a = std::fabs(at(r));
        if (std::bit_cast<std::uint64_t>(a) > std::bit_cast<std::uint64_t>(m)) m = a;
      }
      double s = 0.0;
      if (m > 0.0 && m <= std::numeric_limits<double>::max()) {
        for (std::int64_t r = 0; r < job.rows; ++r) {
          const double y = std::fabs(at(r)) / m;
          s += job.kind == detail::NormKind::kL2 ? y * y : y;
        }
      }
      acc2[c] = m;
      acc[c] = s;
    }
  });
}

Status RunDense(const Table& matrix, const MatrixOptions& o, MatrixStats* stats_out) {
  if (Status s = ValidateMatrixOptions(o); !s.ok()) return s;
  detail::CheckedLayout layout;
  if (Status s = detail::CheckLayout(matrix.data, matrix.dtype, matrix.rows, matrix.cols,
                                     matrix.row_stride, "matrix", &layout);
      !s.ok()) {
    return s;
  }
  const std::int64_t vectors = o.axis == 0 ? matrix.cols : matrix.rows;
  const int threads = detail::ThreadsFor(o.norm.num_threads, layout.extent_bytes, cpu::MinBytesPerThread());
  detail::RowBitmap bitmap;
  bool has_subset = false;
  MatrixStats stats;
  if (Status s = MarkSubset(o, vectors, threads, &bitmap, &has_subset, &stats.vectors); !s.ok()) return s;
  stats.nnz_before = stats.nnz_after = matrix.rows * matrix.cols;

  if (UseReference(o)) {
    const reference::MatrixResult r = reference::NormalizeDenseMatrix(matrix, o);
    if (r.first_nonfinite >= 0) return NonFiniteError(o.axis, r.first_nonfinite);
    if (stats_out != nullptr) *stats_out = r.stats;
    return Status::Ok();
  }

  cpu::DenseJob job;
  job.data = static_cast<unsigned char*>(matrix.data);
  job.stride_bytes = layout.stride * static_cast<std::int64_t>(layout.element_size);
  job.rows = matrix.rows;
  job.cols = matrix.cols;
  job.dtype = matrix.dtype;
  job.kind = detail::KindOf(o.norm.p);
  job.options = o.norm;
  job.subset = has_subset ? bitmap.words() : nullptr;
  job.prune_below = o.prune_below;
  const std::int64_t row_bytes = std::max<std::int64_t>(1, matrix.cols * static_cast<std::int64_t>(layout.element_size));
  // About 64 KB of rows per chunk of the row loops.
  const std::int64_t row_grain = std::max<std::int64_t>(1, (std::int64_t{1} << 16) / row_bytes);
  std::vector<cpu::MatrixCounts> counts(static_cast<std::size_t>(std::max(threads, 1)));

  if (o.axis == 1) {
    if (o.norm.non_finite == NonFinitePolicy::kError) {
      std::vector<std::int64_t> first(counts.size(), -1);
      detail::ParallelFor(threads, matrix.rows, [&](std::int64_t b, std::int64_t e, int t) {
        first[t] = cpu::DenseFirstNonFiniteRow(job, b, e);
      });
      if (const std::int64_t f = FirstFound(first); f >= 0) return NonFiniteError(1, f);
    }
    detail::ParallelForDynamic(threads, matrix.rows, row_grain, [&](std::int64_t b, std::int64_t e, int t) {
      cpu::DenseRows(job, b, e, &counts[t]);
    });
    AddCounts(counts, &stats);
    if (stats_out != nullptr) *stats_out = stats;
    return Status::Ok();
  }

  // Axis 0: all column norms first.
  const std::int64_t cols = matrix.cols;
  DoubleArray acc = ZeroedDoubles(cols);
  if (!acc) return detail::OutOfMemory("the column sums");
  DoubleArray acc2;
  std::unique_ptr<std::uint64_t[]> recomputed;
  switch (job.kind) {
    case detail::NormKind::kL2:
    case detail::NormKind::kL1:
      DenseColumnReduce(job, job.kind == detail::NormKind::kL2 ? cpu::Reduce::kSumSquares : cpu::Reduce::kSumAbs,
                        nullptr, threads, acc.get());
      if (matrix.dtype == DType::kFloat64) {
        recomputed = NonFiniteSums(acc.get(), cols);
        if (recomputed) {
          acc2 = ZeroedDoubles(cols);
          if (!acc2) return detail::OutOfMemory("the column maxima");
          DenseRecompute(job, recomputed.get(), acc.get(), acc2.get(), threads);
        }
      }
      break;
    case detail::NormKind::kLInf:
      DenseColumnReduce(job, cpu::Reduce::kMaxAbs, nullptr, threads, acc.get());
      break;
    case detail::NormKind::kLp:
      acc2 = ZeroedDoubles(cols);
      if (!acc2) return detail::OutOfMemory("the column sums");
      DenseColumnReduce(job, cpu::Reduce::kMaxAbs, nullptr, threads, acc.get());
      DenseColumnReduce(job, cpu::Reduce::kSumPowScaled, acc.get(), threads, acc2.get());
      break;
  }
  std::int64_t first_nonfinite = -1;
  PlanVectors(acc.get(), acc2.get(), recomputed.get(), cols, job.subset, job.kind, o.norm, threads,
              &stats, &first_nonfinite);
  if (o.norm.non_finite == NonFinitePolicy::kError && first_nonfinite >= 0) {
    return NonFiniteError(0, first_nonfinite);
  }
  std::vector<float> f;
  std::vector<std::int64_t> special;
  if (matrix.dtype != DType::kFloat64) f.resize(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) {
    const bool is_special = cpu::CodeIsSpecial(acc[c], matrix.dtype);
    if (is_special) special.push_back(c);
    if (!f.empty()) {
      f[c] = is_special || cpu::CodeLeaves(acc[c]) ? std::numeric_limits<float>::quiet_NaN()
                                                    : static_cast<float>(acc[c]);
    }
  }
  cpu::ColumnScales scales;
  scales.code = acc.get();
  scales.f = f.empty() ? nullptr : f.data();
  scales.special = special.data();
  scales.special_count = static_cast<std::int64_t>(special.size());
  if (stats.vectors_scaled > 0 || o.prune_below > 0.0) {
    detail::ParallelForDynamic(threads, matrix.rows, row_grain, [&](std::int64_t b, std::int64_t e, int t) {
      cpu::DenseScaleColumns(job, scales, b, e, &counts[t]);
    });
    for (const cpu::MatrixCounts& c : counts) stats.pruned += c.pruned;
  }
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Sparse.

const char* FormatName(SparseFormat f) {
  switch (f) {
    case SparseFormat::kCSR:
      return "CSR";
    case SparseFormat::kCSC:
      return "CSC";
    case SparseFormat::kCOO:
      return "COO";
  }
  return "unknown";
}

Status CheckArray(const void* p, std::int64_t count, std::size_t element_size, const char* name,
                  const char* what) {
  std::int64_t bytes = 0;
  if (__builtin_mul_overflow(count, static_cast<std::int64_t>(element_size), &bytes)) {
    return InvalidArgument("matrix.", name, " would hold ", count, " ", what, " of ", element_size,
                           " bytes, more bytes than a 64-bit offset can address.");
  }
  if (p == nullptr && count > 0) {
    return InvalidArgument("matrix.", name, " is null but must hold ", count, " ", what, ".");
  }
  return Status::Ok();
}

Status CheckSparseShape(const SparseMatrix& m) {
  if (m.format != SparseFormat::kCSR && m.format != SparseFormat::kCSC &&
      m.format != SparseFormat::kCOO) {
    return detail::Unsupported("matrix.format = ", static_cast<int>(m.format),
                               " is not a SparseFormat (0 = CSR, 1 = CSC, 2 = COO).");
  }
  if (DTypeSize(m.dtype) == 0) {
    return detail::Unsupported("matrix.dtype = ", static_cast<int>(m.dtype),
                               " is not a supported dtype (float32, float64, float16, bfloat16).");
  }
  if (m.index_type != IndexType::kInt32 && m.index_type != IndexType::kInt64) {
    return detail::Unsupported("matrix.index_type = ", static_cast<int>(m.index_type),
                               " is neither int32 (0) nor int64 (1).");
  }
  if (m.rows < 0) return InvalidArgument("matrix.rows = ", m.rows, " is negative.");
  if (m.cols < 0) return InvalidArgument("matrix.cols = ", m.cols, " is negative.");
  if (m.nnz < 0) return InvalidArgument("matrix.nnz = ", m.nnz, " is negative.");
  const std::size_t index_size = m.index_type == IndexType::kInt32 ? 4 : 8;
  if (Status s = CheckArray(m.values, m.nnz, DTypeSize(m.dtype), "values", "values"); !s.ok()) return s;
  if (m.format == SparseFormat::kCOO) {
    if (Status s = CheckArray(m.row, m.nnz, index_size, "row", "row indices"); !s.ok()) return s;
    return CheckArray(m.col, m.nnz, index_size, "col", "column indices");
  }
  const std::int64_t segments = m.format == SparseFormat::kCSR ? m.rows : m.cols;
  if (segments == std::numeric_limits<std::int64_t>::max()) {
    return InvalidArgument("matrix.", m.format == SparseFormat::kCSR ? "rows" : "cols", " = ",
                           segments, " leaves no room for its index pointers.");
  }
  if (Status s = CheckArray(m.indptr, segments + 1, index_size, "indptr", "index pointers"); !s.ok()) return s;
  return CheckArray(m.indices, m.nnz, index_size, "indices", "indices");
}

// Index pointers: indptr[0] == 0, never decreasing, indptr[segments] == nnz.
Status CheckIndexPointers(const SparseMatrix& m, std::int64_t segments, int threads) {
  const void* p = m.indptr;
  const IndexType t = m.index_type;
  const char* major = m.format == SparseFormat::kCSR ? "row" : "column";
  if (const std::int64_t first = detail::IndexAt(p, t, 0); first != 0) {
    return InvalidArgument("matrix.indptr[0] = ", first,
                           " but index pointers must start at 0.");
  }
  std::vector<std::int64_t> found(static_cast<std::size_t>(std::max(threads, 1)), -1);
  auto first_decrease = [](const auto* a, std::int64_t b, std::int64_t e) -> std::int64_t {
    for (std::int64_t i = b + 1; i <= e; ++i) {
      if (a[i] < a[i - 1]) return i;
    }
    return -1;
  };
  detail::ParallelFor(threads, segments, [&](std::int64_t b, std::int64_t e, int th) {
    found[th] = t == IndexType::kInt32 ? first_decrease(static_cast<const std::int32_t*>(p), b, e)
                                       : first_decrease(static_cast<const std::int64_t*>(p), b, e);
  });
  if (const std::int64_t i = FirstFound(found); i >= 0) {
    return InvalidArgument("matrix.indptr[", i, "] = ", detail::IndexAt(p, t, i),
                           " is less than matrix.indptr[", i - 1, "] = ", detail::IndexAt(p, t, i - 1),
                           ": index pointers must not decrease (", major, " ", i - 1,
                           " would have a negative length).");
  }
  if (const std::int64_t last = detail::IndexAt(p, t, segments); last != m.nnz) {
    return InvalidArgument("matrix.indptr[", segments, "] = ", last, " but matrix.nnz = ", m.nnz,
                           ": the last index pointer of a ", FormatName(m.format), " matrix with ",
                           segments, " ", major, "s must equal the number of stored entries.");
  }
  return Status::Ok();
}

// Chunks per thread of the passes whose results do not depend on how the
// work is split (validation, segment-wise normalization, scattered
// scaling): handed out as threads finish, so that a thread slowed down by
// its SMT sibling or another process does not leave the other waiting at
// the end of a static split (about 9 % of the CSR axis-0 benchmark's
// samples were that wait).
constexpr int kChunksPerThread = 16;

int ChunkCount(int parts) { return parts <= 1 ? 1 : parts * kChunksPerThread; }

// The sparse matrix as segments, with what the kernels need.
struct SparsePlan {
  cpu::SparseJob job;
  bool segment_wise = false;  // the normalized vectors are the segments
  // CSR/CSC column sums validate the indices chunk by chunk as they go
  // (ReduceColumnsValidating); the names are those of the error message.
  bool fold_validation = false;
  const char* segment_name = "row";
  const char* minor_name = "column";
  std::unique_ptr<std::uint64_t[]> unsorted;
  std::unique_ptr<std::int64_t[]> offsets;  // COO
  std::unique_ptr<std::int64_t[]> perm;     // COO, unsorted
};

Status MinorIndexError(const cpu::SparseJob& job, std::int64_t k, const char* array,
                       const char* segment_name, const char* minor_name);

// Validates the minor indices of a CSR-like job (fills job.unsorted and
// job.max_grouped_len). `array` and the names are for the message.
Status ValidateMinor(SparsePlan* plan, int threads, const char* array, const char* segment_name,
                     const char* minor_name) {
  cpu::SparseJob& job = plan->job;
  const std::int64_t words = (job.segments + 63) / 64;
  plan->unsorted.reset(new (std::nothrow) std::uint64_t[static_cast<std::size_t>(std::max<std::int64_t>(words, 1))]());
  if (!plan->unsorted) return detail::OutOfMemory("the unsorted-segment bitmap");
  const int parts = std::max(threads, 1);
  const int chunks = ChunkCount(parts);
  const std::vector<std::int64_t> slices = cpu::BalancedSlices(job, chunks);
  // Each chunk reports its first bad position: the lowest of them is the
  // first of the matrix.
  std::vector<std::int64_t> bad(static_cast<std::size_t>(chunks), -1), longest(bad.size(), 0);
  detail::ParallelForDynamic(parts, chunks, 1, [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t p = b; p < e; ++p) {
      bad[p] = cpu::ValidateSegments(job, slices[p], slices[p + 1], job.minor_dim,
                                     plan->unsorted.get(), &longest[p]);
    }
  });
  if (const std::int64_t k = FirstFound(bad); k >= 0) {
    return MinorIndexError(job, k, array, segment_name, minor_name);
  }
  job.max_grouped_len = *std::max_element(longest.begin(), longest.end());
  bool any = false;
  for (std::int64_t w = 0; w < words && !any; ++w) any = plan->unsorted[w] != 0;
  job.unsorted = any ? plan->unsorted.get() : nullptr;
  return Status::Ok();
}

// The message for a minor index out of range at storage position k.
Status MinorIndexError(const cpu::SparseJob& job, std::int64_t k, const char* array,
                       const char* segment_name, const char* minor_name) {
  {
    // The segment holding position k: the last s with offsets[s] <= k.
    std::int64_t lo = 0, hi = job.segments;
    while (hi - lo > 1) {
      const std::int64_t mid = lo + (hi - lo) / 2;
      if (cpu::OffsetAt(job, mid) <= k) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    while (lo + 1 < job.segments && cpu::OffsetAt(job, lo + 1) <= k) ++lo;
    const std::int64_t value = detail::IndexAt(job.minor, job.minor_type, k);
    const std::int64_t limit = job.minor_dim;
    if (limit == 0) {
      return detail::OutOfRange("matrix.", array, "[", k, "] = ", value, " (an entry of ", segment_name,
                                " ", lo, ") is out of range: the matrix has 0 ", minor_name, "s.");
    }
    return detail::OutOfRange("matrix.", array, "[", k, "] = ", value, " (an entry of ", segment_name, " ",
                              lo, ") is out of range for ", limit, " ", minor_name,
                              "s (valid indices are 0 to ", limit - 1, ").");
  }
}

// COO: validates both coordinate arrays, then picks the segment structure.
Status PrepareCoo(const SparseMatrix& m, int axis, int threads, SparsePlan* plan) {
  const int parts = std::max(threads, 1);
  std::int64_t bad[2] = {-1, -1};
  std::int64_t decreases[2] = {0, 0};
  const void* arrays[2] = {m.row, m.col};
  const std::int64_t limits[2] = {m.rows, m.cols};
  for (int a = 0; a < 2; ++a) {
    std::vector<std::int64_t> found(static_cast<std::size_t>(parts), -1), dec(found.size(), 0);
    detail::ParallelFor(parts, m.nnz, [&](std::int64_t b, std::int64_t e, int t) {
      // Each slice also checks the step into it from the previous slice.
      const std::int64_t from = b > 0 ? b - 1 : b;
      std::int64_t d = 0;
      found[t] = cpu::CheckCoordinates(arrays[a], m.index_type, from, e, limits[a], &d);
      dec[t] = d;
    });
    bad[a] = FirstFound(found);
    for (std::int64_t d : dec) decreases[a] += d;
  }
  if (bad[0] >= 0 || bad[1] >= 0) {
    const int a = bad[1] < 0 || (bad[0] >= 0 && bad[0] <= bad[1]) ? 0 : 1;
    return detail::IndexOutOfRange(a == 0 ? "matrix.row" : "matrix.col", bad[a],
                                   detail::IndexAt(arrays[a], m.index_type, bad[a]), limits[a],
                                   a == 0 ? "row" : "column");
  }
  cpu::SparseJob& job = plan->job;
  job.nnz = m.nnz;
  // Sorted by row (CSR-like) or by column (CSC-like): index pointers computed
  // from the sorted array. Otherwise group by the normalized axis.
  int major;
  bool sorted = true;
  if (decreases[0] == 0) {
    major = 0;
  } else if (decreases[1] == 0) {
    major = 1;
  } else {
    major = axis == 0 ? 1 : 0;
    sorted = false;
  }
  job.segments = limits[major];
  job.minor_dim = limits[1 - major];
  job.minor = arrays[1 - major];
  job.minor_type = m.index_type;
  job.offsets_type = IndexType::kInt64;
  plan->offsets.reset(new (std::nothrow) std::int64_t[static_cast<std::size_t>(job.segments) + 1]);
  if (!plan->offsets) return detail::OutOfMemory("the COO index pointers");
  job.offsets = plan->offsets.get();
  // Normalizing columns groups by column (major 1), rows by row (major 0).
  plan->segment_wise = (axis == 0) == (major == 1);
  if (sorted) {
    cpu::OffsetsOfSorted(arrays[major], m.index_type, m.nnz, job.segments, plan->offsets.get(), threads);
    return ValidateMinor(plan, threads, major == 0 ? "col" : "row", major == 0 ? "row" : "column",
                         major == 0 ? "column" : "row");
  }
  plan->perm.reset(new (std::nothrow) std::int64_t[static_cast<std::size_t>(std::max<std::int64_t>(m.nnz, 1))]);
  if (!plan->perm) return detail::OutOfMemory("the COO permutation");
  cpu::GroupByMajor(arrays[major], m.index_type, m.nnz, job.segments, plan->offsets.get(), plan->perm.get());
  job.perm = plan->perm.get();
  std::int64_t longest = 0;
  for (std::int64_t s = 0; s < job.segments; ++s) longest = std::max(longest, plan->offsets[s + 1] - plan->offsets[s]);
  job.max_grouped_len = longest;
  return Status::Ok();
}

// The first column reduction of the scattered axis, validating the indices
// on the way when the plan says so.
Status FirstReduce(SparsePlan* plan, const cpu::ColumnReduceSpec& spec, int parts, double* out) {
  if (!plan->fold_validation) {
    if (!cpu::ReduceColumns(plan->job, spec, parts, out)) return detail::OutOfMemory("the column sums");
    return Status::Ok();
  }
  std::int64_t bad = -1, longest = 0;
  if (!cpu::ReduceColumnsValidating(plan->job, spec, parts, out, &bad, &longest)) {
    return detail::OutOfMemory("the column sums");
  }
  if (bad >= 0) return MinorIndexError(plan->job, bad, "indices", plan->segment_name, plan->minor_name);
  plan->job.max_grouped_len = longest;
  plan->fold_validation = false;  // done: later passes need not validate again
  return Status::Ok();
}

Status RunSparseFast(SparseMatrix* m, const MatrixOptions& o, SparsePlan* plan,
                     const std::uint64_t* subset, int threads, MatrixStats* stats) {
  cpu::SparseJob& job = plan->job;
  job.values = m->values;
  job.dtype = m->dtype;
  job.kind = detail::KindOf(o.norm.p);
  job.options = o.norm;
  const int parts = std::max(threads, 1);

  if (plan->segment_wise) {
    job.subset = subset;
    const std::vector<std::int64_t> slices = cpu::BalancedSlices(job, parts);
    std::vector<cpu::GroupedScratch> scratch(static_cast<std::size_t>(parts));
    if (job.unsorted != nullptr || job.perm != nullptr) {
      for (auto& s : scratch) {
        if (!s.Reserve(job.max_grouped_len)) return detail::OutOfMemory("the grouping scratch");
      }
    }
    if (o.norm.non_finite == NonFinitePolicy::kError) {
      std::vector<std::int64_t> first(static_cast<std::size_t>(parts), -1);
      detail::ParallelFor(parts, parts, [&](std::int64_t b, std::int64_t e, int) {
        for (std::int64_t p = b; p < e; ++p) {
          first[p] = cpu::FirstNonFiniteSegment(job, slices[p], slices[p + 1], &scratch[p]);
        }
      });
      if (const std::int64_t f = FirstFound(first); f >= 0) return NonFiniteError(o.axis, f);
    }
    // Each segment's result depends on it alone: dynamic chunks.
    const int chunks = ChunkCount(parts);
    const std::vector<std::int64_t> chunk_slices = cpu::BalancedSlices(job, chunks);
    std::vector<cpu::MatrixCounts> counts(static_cast<std::size_t>(parts));
    detail::ParallelForDynamic(parts, chunks, 1, [&](std::int64_t b, std::int64_t e, int t) {
      for (std::int64_t c = b; c < e; ++c) {
        cpu::NormalizeSegments(job, chunk_slices[c], chunk_slices[c + 1], &scratch[t], &counts[t]);
      }
    });
    AddCounts(counts, stats);
    return Status::Ok();
  }

  // Scattered: the vectors are the minor indices.
  const std::int64_t n = job.minor_dim;
  DoubleArray acc = ZeroedDoubles(n);
  if (!acc) return detail::OutOfMemory("the column sums");
  DoubleArray acc2;
  std::unique_ptr<std::uint64_t[]> recomputed;
  cpu::ColumnReduceSpec spec;
  switch (job.kind) {
    case detail::NormKind::kL2:
    case detail::NormKind::kL1:
      spec.op = job.kind == detail::NormKind::kL2 ? cpu::Reduce::kSumSquares : cpu::Reduce::kSumAbs;
      if (Status s = FirstReduce(plan, spec, parts, acc.get()); !s.ok()) return s;
      if (m->dtype == DType::kFloat64) {
        recomputed = NonFiniteSums(acc.get(), n);
        if (recomputed) {
          // max |y| of those columns, then their sums divided by it.
          acc2 = ZeroedDoubles(n);
          if (!acc2) return detail::OutOfMemory("the column maxima");
          cpu::ColumnReduceSpec max_spec;
          max_spec.op = cpu::Reduce::kMaxAbs;
          max_spec.only = recomputed.get();
          if (!cpu::ReduceColumns(job, max_spec, parts, acc2.get())) return detail::OutOfMemory("the column maxima");
          for (std::int64_t c = 0; c < n; ++c) {
            if (cpu::TestBit(recomputed.get(), c)) acc[c] = 0.0;
          }
          cpu::ColumnReduceSpec sum_spec = spec;
          sum_spec.only = recomputed.get();
          sum_spec.divide_by_m = true;
          sum_spec.m = acc2.get();
          if (!cpu::ReduceColumns(job, sum_spec, parts, acc.get())) return detail::OutOfMemory("the column sums");
        }
      }
      break;
    case detail::NormKind::kLInf:
      spec.op = cpu::Reduce::kMaxAbs;
      if (Status s = FirstReduce(plan, spec, parts, acc.get()); !s.ok()) return s;
      break;
    case detail::NormKind::kLp: {
      acc2 = ZeroedDoubles(n);
      if (!acc2) return detail::OutOfMemory("the column sums");
      spec.op = cpu::Reduce::kMaxAbs;
      if (Status s = FirstReduce(plan, spec, parts, acc.get()); !s.ok()) return s;
      cpu::ColumnReduceSpec pow_spec;
      pow_spec.op = cpu::Reduce::kSumPowScaled;
      pow_spec.m = acc.get();
      if (!cpu::ReduceColumns(job, pow_spec, parts, acc2.get())) return detail::OutOfMemory("the column sums");
      break;
    }
  }
  std::int64_t first_nonfinite = -1;
  PlanVectors(acc.get(), acc2.get(), recomputed.get(), n, subset, job.kind, o.norm, threads, stats,
              &first_nonfinite);
  if (o.norm.non_finite == NonFinitePolicy::kError && first_nonfinite >= 0) {
    return NonFiniteError(o.axis, first_nonfinite);
  }
  if (stats->vectors_scaled == 0) return Status::Ok();
  // Narrow dtypes: the codes as float32, written over the first half of the
  // same memory (serially, front to back: code c is read before float c,
  // at half its offset, is written), so the gathers hit a table half the
  // size. Unless a column needs the float64 path, or the table is so large
  // that the serial pass would cost more than it saves.
  // Each entry is scaled on its own: dynamic chunks (see kChunksPerThread),
  // a multiple of 64 entries.
  const std::int64_t grain =
      std::max<std::int64_t>(64, (job.nnz / ChunkCount(parts) + 63) / 64 * 64);
  bool use_float = m->dtype != DType::kFloat64 && n <= (std::int64_t{1} << 24);
  for (std::int64_t c = 0; c < n && use_float; ++c) use_float = !cpu::CodeIsSpecial(acc[c], m->dtype);
  if (use_float) {
    float* f = reinterpret_cast<float*>(acc.get());
    for (std::int64_t c = 0; c < n; ++c) {
      const double code = acc[c];
      f[c] = static_cast<float>(code);
    }
    detail::ParallelForDynamic(parts, job.nnz, grain, [&](std::int64_t b, std::int64_t e, int) {
      cpu::ScaleByMinorFloat(job, f, b, e);
    });
    return Status::Ok();
  }
  detail::ParallelForDynamic(parts, job.nnz, grain, [&](std::int64_t b, std::int64_t e, int) {
    cpu::ScaleByMinor(job, acc.get(), b, e);
  });
  return Status::Ok();
}

Status RunSparse(SparseMatrix* m, const MatrixOptions& o, MatrixStats* stats_out) {
  if (m == nullptr) return InvalidArgument("matrix is null: pass a SparseMatrix to normalize.");
  if (Status s = ValidateMatrixOptions(o); !s.ok()) return s;
  if (Status s = CheckSparseShape(*m); !s.ok()) return s;
  const std::size_t index_size = m->index_type == IndexType::kInt32 ? 4 : 8;
  std::int64_t bytes = 0;  // only sizes the thread count: saturate
  if (__builtin_mul_overflow(m->nnz, static_cast<std::int64_t>(DTypeSize(m->dtype) + 2 * index_size), &bytes)) {
    bytes = std::numeric_limits<std::int64_t>::max();
  }
  const int threads = detail::ThreadsFor(o.norm.num_threads, bytes, cpu::MinBytesPerThread());

  SparsePlan plan;
  if (m->format != SparseFormat::kCOO) {
    const bool csr = m->format == SparseFormat::kCSR;
    const std::int64_t segments = csr ? m->rows : m->cols;
    if (Status s = CheckIndexPointers(*m, segments, threads); !s.ok()) return s;
    plan.job.segments = segments;
    plan.job.minor_dim = csr ? m->cols : m->rows;
    plan.job.nnz = m->nnz;
    plan.job.offsets = m->indptr;
    plan.job.offsets_type = m->index_type;
    plan.job.minor = m->indices;
    plan.job.minor_type = m->index_type;
    plan.segment_wise = (o.axis == 1) == csr;
  }
  const std::int64_t vectors = o.axis == 0 ? m->cols : m->rows;
  detail::RowBitmap bitmap;
  bool has_subset = false;
  MatrixStats stats;
  if (Status s = MarkSubset(o, vectors, threads, &bitmap, &has_subset, &stats.vectors); !s.ok()) return s;
  if (m->format == SparseFormat::kCOO) {
    if (Status s = PrepareCoo(*m, o.axis, threads, &plan); !s.ok()) return s;
  } else {
    const bool csr = m->format == SparseFormat::kCSR;
    plan.segment_name = csr ? "row" : "column";
    plan.minor_name = csr ? "column" : "row";
    plan.fold_validation = !UseReference(o) && !plan.segment_wise &&
                           cpu::ColumnSumModeFor(plan.job.minor_dim, std::max(threads, 1)) ==
                               cpu::ColumnSumMode::kPrivateArrays;
    if (plan.fold_validation) {
      const std::int64_t words = (plan.job.segments + 63) / 64;
      plan.unsorted.reset(new (std::nothrow) std::uint64_t[static_cast<std::size_t>(std::max<std::int64_t>(words, 1))]());
      if (!plan.unsorted) return detail::OutOfMemory("the unsorted-segment bitmap");
      plan.job.unsorted = plan.unsorted.get();
    } else if (Status s = ValidateMinor(&plan, threads, "indices", plan.segment_name, plan.minor_name);
               !s.ok()) {
      return s;
    }
  }
  stats.nnz_before = m->nnz;

  if (UseReference(o)) {
    const reference::MatrixResult r = reference::NormalizeSparseMatrix(m, o);
    if (r.first_nonfinite >= 0) return NonFiniteError(o.axis, r.first_nonfinite);
    if (stats_out != nullptr) *stats_out = r.stats;
    return Status::Ok();
  }

  cpu::PruneArrays arrays;
  cpu::PruneWorkspace prune_workspace;
  if (o.prune_below > 0.0) {
    arrays.values = m->values;
    arrays.dtype = m->dtype;
    arrays.index_type = m->index_type;
    arrays.nnz = m->nnz;
    if (m->format == SparseFormat::kCOO) {
      arrays.row = m->row;
      arrays.col = m->col;
    } else {
      arrays.indptr = m->indptr;
      arrays.segments = plan.job.segments;
      arrays.indices = m->indices;
    }
    cpu::PreparePrune(arrays, threads, &prune_workspace);
  }
  if (Status s = RunSparseFast(m, o, &plan, has_subset ? bitmap.words() : nullptr, threads, &stats);
      !s.ok()) {
    return s;
  }
  stats.nnz_after = m->nnz;
  if (o.prune_below > 0.0) {
    const std::int64_t kept = cpu::PruneSparse(arrays, o.prune_below, &prune_workspace);
    stats.pruned = m->nnz - kept;
    m->nnz = kept;
    stats.nnz_after = kept;
  }
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

}  // namespace

Status NormalizeMatrix(Table matrix, const MatrixOptions& options, MatrixStats* stats) noexcept {
  try {
    return RunDense(matrix, options, stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the matrix normalization");
  }
}

Status NormalizeMatrix(SparseMatrix* matrix, const MatrixOptions& options, MatrixStats* stats) noexcept {
  try {
    return RunSparse(matrix, options, stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the matrix normalization");
  }
}

}  // namespace sparsenorm
