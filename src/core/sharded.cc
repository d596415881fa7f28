// The split-phase primitives of include/sparsenorm/sharded.h. The numerics
// are the single-process call's: a part's norm comes from the kernel the row
// operator uses (cpu::NormOfVector, or the reference's norm when the
// reference backend is asked for), parts combine with the scaled terms of
// common/norms.h, and the decision and rounding are common/decision.h's.
// A sparse slice's structure checks, column sums, scaling and pruning are
// the CPU backend's (cpu/sparse_matrix.cc), shared with NormalizeMatrix.

#include "sparsenorm/sharded.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "common/decision.h"
#include "common/element_types.h"
#include "common/norms.h"
#include "core/backend.h"
#include "core/matrix_backend.h"
#include "core/messages.h"
#include "core/plan.h"
#include "core/sharded_parts.h"
#include "core/status.h"
#include "core/validate.h"
#include "cpu/matrix_cpu.h"
#include "cpu/parallel.h"
#include "cpu/row_set.h"
#include "cpu/rows_cpu.h"
#include "reference/reference.h"

namespace sparsenorm {
namespace detail {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <class Fn>
void ForEachIndex(const Indices& indices, Fn&& fn) {
  VisitIndexType(indices.type, [&](auto t) {
    using I = TypeOf<decltype(t)>;
    const I* v = static_cast<const I*>(indices.data);
    for (std::int64_t i = 0; i < indices.size; ++i) fn(i, static_cast<std::int64_t>(v[i]));
  });
}

// A row's norm as the single-process call of the same options computes it.
VectorNorm RowNorm(const unsigned char* row, DType dtype, std::int64_t cols, double p,
                   bool reference) {
  if (!reference) return cpu::NormOfVector(dtype, row, static_cast<std::size_t>(cols), p);
  std::vector<double> x(static_cast<std::size_t>(cols));
  for (std::int64_t k = 0; k < cols; ++k) x[static_cast<std::size_t>(k)] = reference::Load(row, dtype, k);
  const double n = reference::Norm(x, p);
  return VectorNorm{n, !std::isnan(n)};
}

}  // namespace

NormPart CombineParts(const NormPart* parts, std::size_t count, std::size_t stride, double p) {
  const NormKind kind = KindOf(p);
  double m = 0.0;
  for (std::size_t k = 0; k < count; ++k) {
    const NormPart& q = parts[k * stride];
    if (!IsFinitePart(q)) return NormPart{kNaN, 0.0};
    m = std::max(m, q.scale);
  }
  if (m == 0.0) return NormPart{0.0, 0.0};
  if (kind == NormKind::kLInf) return NormPart{m, 1.0};
  // Each part is scale * sum^(1/p): its share of the combined sum is
  // sum * (scale / m)^p, below 1 * sum, so nothing overflows.
  double s = 0.0;
  for (std::size_t k = 0; k < count; ++k) {
    const NormPart& q = parts[k * stride];
    if (q.scale > 0.0) s += q.sum * ScaledTerm(q.scale, m, kind, p);
  }
  return NormPart{m, s};
}

Status RowNormParts(const ConstTable& slice, const Indices& indices,
                    const NormalizeOptions& options, std::vector<std::int64_t>* rows_out,
                    std::vector<NormPart>* parts_out) {
  if (rows_out == nullptr || parts_out == nullptr) {
    return InvalidArgument("rows and parts must not be null.");
  }
  if (Status s = ValidateOptions(options); !s.ok()) return s;
  CheckedLayout layout;
  if (Status s = CheckLayout(slice.data, slice.dtype, slice.rows, slice.cols, slice.row_stride,
                             "table", &layout);
      !s.ok()) {
    return s;
  }
  if (Status s = CheckIndexList(indices.data, indices.type, indices.size, "indices"); !s.ok()) {
    return s;
  }
  // The distinct rows, ascending: the row operator's bitmap where core/plan.cc
  // would choose it, else a sort.
  const std::int64_t row_bytes = slice.cols * static_cast<std::int64_t>(layout.element_size);
  RowsProblem shape;
  shape.rows = slice.rows;
  shape.cols = slice.cols;
  shape.row_bytes = row_bytes;
  shape.num_indices = indices.size;
  const RowsPlan plan = PlanRows(shape, options.num_threads, Tuning{});
  std::vector<std::int64_t> rows;
  std::int64_t bad_position = -1;
  if (plan.use_bitmap) {
    cpu::RowBitmap marks;
    if (!marks.Init(slice.rows)) throw std::bad_alloc();
    bad_position = marks.MarkAll(indices.data, indices.type, indices.size, plan.index_threads);
    if (bad_position < 0) {
      // At most one row per index, and the 64 entries MarkedRows needs to spare.
      rows.resize(static_cast<std::size_t>(indices.size) + 64);
      rows.resize(static_cast<std::size_t>(cpu::MarkedRows(marks.mutable_words(), marks.summary(),
                                                           marks.summary_count(), rows.data(),
                                                           static_cast<std::int64_t>(rows.size()))));
      marks.SetCleared();
    }
  } else {
    rows.resize(static_cast<std::size_t>(indices.size));
    ForEachIndex(indices, [&](std::int64_t i, std::int64_t r) {
      if (bad_position < 0 && (r < 0 || r >= slice.rows)) bad_position = i;
      rows[static_cast<std::size_t>(i)] = r;
    });
    if (bad_position < 0) {
      std::sort(rows.begin(), rows.end());
      rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    }
  }
  if (bad_position >= 0) {
    std::int64_t value = 0;
    ForEachIndex(Indices(static_cast<const unsigned char*>(indices.data) +
                             bad_position * static_cast<std::int64_t>(IndexSize(indices.type)),
                         indices.type, 1),
                 [&](std::int64_t, std::int64_t v) { value = v; });
    return IndexOutOfRange("indices", bad_position, value, slice.rows, "table row");
  }

  std::vector<NormPart> parts(rows.size());
  const auto* base = static_cast<const unsigned char*>(slice.data);
  const std::int64_t stride_bytes = layout.stride * static_cast<std::int64_t>(layout.element_size);
  const bool reference = UseReference(options.backend);
  const auto n = static_cast<std::int64_t>(rows.size());
  const std::int64_t ahead = plan.prefetch_rows;
  std::vector<VectorNorm> norms(reference ? 0 : rows.size());
  cpu::ParallelFor(reference ? 1 : plan.row_threads, n, [&](std::int64_t begin, std::int64_t end, int) {
    if (!reference) {
      cpu::RowList list{const_cast<unsigned char*>(base), slice.dtype, stride_bytes, slice.cols,
                        rows.data() + begin, end - begin, ahead};
      cpu::NormsOfRows(list, options.p, norms.data() + begin);
      for (std::int64_t i = begin; i < end; ++i) parts[static_cast<std::size_t>(i)] = PartOf(norms[static_cast<std::size_t>(i)]);
      return;
    }
    for (std::int64_t i = begin; i < end; ++i) {
      const unsigned char* row = base + rows[static_cast<std::size_t>(i)] * stride_bytes;
      parts[static_cast<std::size_t>(i)] = PartOf(RowNorm(row, slice.dtype, slice.cols, options.p, true));
    }
  });
  *rows_out = std::move(rows);
  *parts_out = std::move(parts);
  return Status::Ok();
}

Status ApplyRowNorms(const Table& slice, std::span<const std::int64_t> rows,
                     std::span<const NormPart> combined, const NormalizeOptions& options,
                     RowStats* stats_out) {
  if (Status s = ValidateOptions(options); !s.ok()) return s;
  CheckedLayout layout;
  if (Status s = CheckLayout(slice.data, slice.dtype, slice.rows, slice.cols, slice.row_stride,
                             "table", &layout);
      !s.ok()) {
    return s;
  }
  if (rows.size() != combined.size()) {
    return InvalidArgument("rows has ", rows.size(), " entries but combined has ", combined.size(),
                           ": pass one combined norm per row.");
  }
  const auto n = static_cast<std::int64_t>(rows.size());
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t r = rows[static_cast<std::size_t>(i)];
    if (r < 0 || r >= slice.rows) return IndexOutOfRange("rows", i, r, slice.rows, "table row");
    if (i > 0 && r <= rows[static_cast<std::size_t>(i - 1)]) {
      return InvalidArgument("rows[", i, "] = ", r, " does not exceed rows[", i - 1, "] = ",
                             rows[static_cast<std::size_t>(i - 1)],
                             ": rows must be strictly ascending, as RowNormParts gives them.");
    }
    if (Status s = CheckCombinedPart(combined[static_cast<std::size_t>(i)], static_cast<std::size_t>(i));
        !s.ok()) {
      return s;
    }
  }
  const NormRule rule = RuleOf(options);
  std::vector<Scale> scales(rows.size());
  RowStats stats;
  stats.indices_seen = n;
  stats.distinct_rows = n;
  for (std::int64_t i = 0; i < n; ++i) {
    const NormPart& q = combined[static_cast<std::size_t>(i)];
    const double norm = NormOfPart(q, options.p);
    const Scale s = Decide(norm, !std::isnan(norm), rule);
    if (s.action == Action::kNonFinite) {
      if (options.non_finite == NonFinitePolicy::kError) {
        return Status(StatusCode::kNonFinite,
                      StrCat("row ", rows[static_cast<std::size_t>(i)], " (rows[", i,
                             "]) holds NaN or infinity on some shard and options.non_finite is "
                             "kError; nothing was modified."));
      }
      ++stats.nonfinite_rows;
    }
    if (s.action == Action::kScale) ++stats.rows_scaled;
    scales[static_cast<std::size_t>(i)] = s;
  }

  auto* base = static_cast<unsigned char*>(slice.data);
  const std::int64_t stride_bytes = layout.stride * static_cast<std::int64_t>(layout.element_size);
  const std::int64_t row_bytes = slice.cols * static_cast<std::int64_t>(layout.element_size);
  // Rows prefetched ahead, as core/plan.cc sizes it for the row operator.
  const std::int64_t kApplyAhead =
      std::clamp<std::int64_t>(Tuning{}.prefetch_bytes / std::max<std::int64_t>(row_bytes, 1), 2, 16);
  const int threads = ThreadsFor(options.num_threads, stats.rows_scaled * std::max<std::int64_t>(row_bytes, 1),
                                 Tuning{}.bytes_per_thread);
  if (slice.cols > 0) {
    cpu::ParallelFor(threads, n, [&](std::int64_t begin, std::int64_t end, int) {
      cpu::ScaleRows(cpu::RowList{base, slice.dtype, stride_bytes, slice.cols, rows.data() + begin,
                                  end - begin, kApplyAhead},
                     scales.data() + begin);
    });
  }
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

Status OwnedRowIndices(const Indices& indices, const RowOwnership& o,
                       std::vector<std::int64_t>* local_out) {
  if (local_out == nullptr) return InvalidArgument("local_indices must not be null.");
  if (o.global_rows < 0 || o.local_rows < 0) {
    return InvalidArgument("ownership.global_rows = ", o.global_rows, " and ownership.local_rows = ",
                           o.local_rows, ": row counts must be >= 0.");
  }
  if (o.cyclic) {
    if (o.world < 1 || o.rank < 0 || o.rank >= o.world) {
      return InvalidArgument("ownership.rank = ", o.rank, " with ownership.world = ", o.world,
                             ": a cyclic layout needs world >= 1 and 0 <= rank < world.");
    }
    const std::int64_t owned =
        o.global_rows > o.rank ? (o.global_rows - o.rank + o.world - 1) / o.world : 0;
    if (o.local_rows != owned) {
      return InvalidArgument("ownership.local_rows = ", o.local_rows, " but rank ", o.rank, " of ",
                             o.world, " owns ", owned, " of ", o.global_rows,
                             " global rows in a cyclic layout (rows g with g % world == rank).");
    }
  } else if (o.row_offset < 0 || o.row_offset > o.global_rows - o.local_rows) {
    return InvalidArgument("ownership.row_offset = ", o.row_offset, " with local_rows = ",
                           o.local_rows, " does not lie within the ", o.global_rows,
                           " global rows.");
  }
  if (Status s = CheckIndexList(indices.data, indices.type, indices.size, "indices"); !s.ok()) {
    return s;
  }
  std::vector<std::int64_t> local;
  Status bad;
  ForEachIndex(indices, [&](std::int64_t i, std::int64_t g) {
    if (!bad.ok()) return;
    if (g < 0 || g >= o.global_rows) {
      bad = IndexOutOfRange("indices", i, g, o.global_rows, "global table row");
      return;
    }
    if (o.cyclic) {
      if (g % o.world == o.rank) local.push_back(g / o.world);
    } else if (g >= o.row_offset && g - o.row_offset < o.local_rows) {
      local.push_back(g - o.row_offset);
    }
  });
  if (!bad.ok()) return bad;
  *local_out = std::move(local);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Dense matrices.

namespace {

// The vectors a call considers: the subset's entries (checked) or all.
Status SubsetOf(const MatrixOptions& o, std::int64_t vectors, std::vector<std::int64_t>* out) {
  out->clear();
  if (!o.subset) {
    out->resize(static_cast<std::size_t>(vectors));
    for (std::int64_t v = 0; v < vectors; ++v) (*out)[static_cast<std::size_t>(v)] = v;
    return Status::Ok();
  }
  if (Status s = CheckIndexList(o.subset->data, o.subset->type, o.subset->size, "options.subset");
      !s.ok()) {
    return s;
  }
  Status bad;
  ForEachIndex(*o.subset, [&](std::int64_t i, std::int64_t v) {
    if (bad.ok() && (v < 0 || v >= vectors)) bad = IndexOutOfRange("options.subset", i, v, vectors, VectorName(o.axis));
    out->push_back(v);
  });
  return bad;
}

// A scattered vector's part from its max |x| (NaN or inf: not finite) and
// the sum of its scaled terms.
NormPart ScaledPart(double scale, double sum, NormKind kind) {
  if (!(scale <= DBL_MAX)) return NormPart{kNaN, 0.0};
  if (scale == 0.0) return NormPart{0.0, 0.0};
  return NormPart{scale, kind == NormKind::kLInf ? 1.0 : sum};
}

// The part of a scattered vector (a column of a row block) for every
// column: max |x|, then the float64 sum of the scaled terms, as
// common/norms.h forms a norm that must not overflow.
template <class T>
void ColumnParts(const DenseMatrixProblem& m, NormKind kind, double p, std::vector<NormPart>* parts) {
  const auto cols = static_cast<std::size_t>(m.cols);
  std::vector<double> scale(cols, 0.0);
  std::vector<double> sum(cols, 0.0);
  for (std::int64_t r = 0; r < m.rows; ++r) {
    const T* row = reinterpret_cast<const T*>(m.data + r * m.stride_bytes);
    for (std::size_t j = 0; j < cols; ++j) {
      const double a = std::fabs(static_cast<double>(Element<T>::Widen(row[j])));
      scale[j] = a > scale[j] || a != a ? a : scale[j];  // NaN sticks
    }
  }
  if (kind != NormKind::kLInf) {
    for (std::int64_t r = 0; r < m.rows; ++r) {
      const T* row = reinterpret_cast<const T*>(m.data + r * m.stride_bytes);
      for (std::size_t j = 0; j < cols; ++j) {
        if (scale[j] > 0.0 && scale[j] <= DBL_MAX) {
          sum[j] += ScaledTerm(static_cast<double>(Element<T>::Widen(row[j])), scale[j], kind, p);
        }
      }
    }
  }
  parts->resize(cols);
  for (std::size_t j = 0; j < cols; ++j) (*parts)[j] = ScaledPart(scale[j], sum[j], kind);
}

}  // namespace

Status MatrixNormParts(const ConstTable& slice, const MatrixOptions& options,
                       std::vector<NormPart>* parts_out) {
  if (parts_out == nullptr) return InvalidArgument("parts must not be null.");
  DenseMatrixProblem m;
  if (Status s = PrepareDenseMatrix(Table{const_cast<void*>(slice.data), slice.dtype, slice.rows,
                                          slice.cols, slice.row_stride},
                                    options, &m);
      !s.ok()) {
    return s;
  }
  const std::int64_t vectors = options.axis == 0 ? m.cols : m.rows;
  std::vector<std::int64_t> subset;
  if (Status s = SubsetOf(options, vectors, &subset); !s.ok()) return s;
  const double p = options.norm.p;
  std::vector<NormPart> all;
  if (options.axis == 0) {
    VisitDType(m.dtype, [&](auto t) { ColumnParts<TypeOf<decltype(t)>>(m, KindOf(p), p, &all); });
  } else {
    all.resize(static_cast<std::size_t>(m.rows));
    const bool reference = UseReference(options.norm.backend);
    for (std::int64_t r = 0; r < m.rows; ++r) {
      all[static_cast<std::size_t>(r)] = PartOf(RowNorm(m.data + r * m.stride_bytes, m.dtype, m.cols, p, reference));
    }
  }
  std::vector<NormPart> parts(subset.size());
  for (std::size_t i = 0; i < subset.size(); ++i) parts[i] = all[static_cast<std::size_t>(subset[i])];
  *parts_out = std::move(parts);
  return Status::Ok();
}

namespace {

// Every vector's decision from the combined norms of the subset's entries (or
// of all vectors), each vector decided once: scales[v] (LeaveScale() for a
// vector not considered) and norms[v] (NaN then), and the whole matrix's
// vector counts in *stats. Checks `combined` first, then, under
// NonFinitePolicy::kError, fails with kNonFinite naming the lowest vector
// holding NaN or infinity: all before the caller writes anything.
Status DecideVectors(const MatrixOptions& options, std::int64_t vectors,
                     std::span<const NormPart> combined, std::vector<Scale>* scales,
                     std::vector<double>* norms, MatrixStats* stats) {
  std::vector<std::int64_t> subset;
  if (Status s = SubsetOf(options, vectors, &subset); !s.ok()) return s;
  if (combined.size() != subset.size()) {
    return InvalidArgument("combined has ", combined.size(), " entries but the call considers ",
                           subset.size(), " ", VectorName(options.axis),
                           "s: pass one combined norm per vector (per subset entry).");
  }
  for (std::size_t i = 0; i < combined.size(); ++i) {
    if (Status s = CheckCombinedPart(combined[i], i); !s.ok()) return s;
  }
  // One decision per vector; a vector named twice in the subset has the
  // same combined norm both times, so deciding it twice changes nothing.
  const NormRule rule = RuleOf(options.norm);
  scales->assign(static_cast<std::size_t>(vectors), LeaveScale());
  norms->assign(static_cast<std::size_t>(vectors), kNaN);
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(vectors), 0);
  std::int64_t first_nonfinite = -1;
  for (std::size_t i = 0; i < subset.size(); ++i) {
    const auto v = static_cast<std::size_t>(subset[i]);
    const double norm = NormOfPart(combined[i], options.norm.p);
    const Scale s = Decide(norm, !std::isnan(norm), rule);
    if (seen[v]) continue;
    seen[v] = 1;
    (*scales)[v] = s;
    (*norms)[v] = norm;
    ++stats->vectors;
    switch (OutcomeOf(s, norm)) {
      case Outcome::kScaled: ++stats->vectors_scaled; break;
      case Outcome::kZero: ++stats->zero_vectors; break;
      case Outcome::kNonFinite:
        ++stats->nonfinite_vectors;
        if (first_nonfinite < 0 || subset[i] < first_nonfinite) first_nonfinite = subset[i];
        break;
      case Outcome::kLeft: break;
    }
  }
  if (first_nonfinite >= 0 && options.norm.non_finite == NonFinitePolicy::kError) {
    return Status(StatusCode::kNonFinite,
                  StrCat(VectorName(options.axis), " ", first_nonfinite,
                         " holds NaN or infinity on some shard and options.non_finite is kError; "
                         "nothing was modified."));
  }
  return Status::Ok();
}

}  // namespace

Status ApplyMatrixNorms(const Table& slice, const MatrixOptions& options,
                        std::span<const NormPart> combined, MatrixStats* stats_out) {
  DenseMatrixProblem m;
  if (Status s = PrepareDenseMatrix(slice, options, &m); !s.ok()) return s;
  std::vector<Scale> scales;
  std::vector<double> norms;
  MatrixStats stats;
  if (Status s = DecideVectors(options, options.axis == 0 ? m.cols : m.rows, combined, &scales,
                               &norms, &stats);
      !s.ok()) {
    return s;
  }
  const double tau = options.prune_below;
  VisitDType(m.dtype, [&](auto t) {
    using T = TypeOf<decltype(t)>;
    using E = Element<T>;
    for (std::int64_t r = 0; r < m.rows; ++r) {
      T* row = reinterpret_cast<T*>(m.data + r * m.stride_bytes);
      for (std::int64_t j = 0; j < m.cols; ++j) {
        const Scale& s = scales[static_cast<std::size_t>(options.axis == 0 ? j : r)];
        if (s.action == Action::kScale) row[j] = ScaleElement(row[j], s);
        if (tau > 0.0) {
          const double a = std::fabs(static_cast<double>(E::Widen(row[j])));
          if (a < tau) {
            if (a != 0.0) ++stats.pruned;
            row[j] = E::RoundDouble(0.0);
          }
        }
      }
    }
  });
  stats.nnz_before = m.rows * m.cols;
  stats.nnz_after = stats.nnz_before;
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Sparse matrices: the slices whose vectors are their minor indices (the
// columns of a CSR block of rows, the rows of a CSC block of columns), on
// the CPU backend's scattered path (cpu/sparse_matrix.cc).

namespace {

Status PrepareSparseSlice(const SparseMatrix* slice, const MatrixOptions& options,
                          SparseMatrixProblem* m) {
  if (Status s = PrepareSparseMatrix(slice, options, m); !s.ok()) return s;
  if (slice->format == SparseFormat::kCOO) {
    return Unsupported("the slice is a COO matrix, which the sharded normalization does not take: "
                       "convert it to CSR (a block of rows, axis 0) or CSC (a block of columns, "
                       "axis 1).");
  }
  if (m->common.path != MatrixPath::kScattered) {
    const bool csr = slice->format == SparseFormat::kCSR;
    return Unsupported(
        "the slice is a ", csr ? "CSR" : "CSC", " matrix on axis ", options.axis,
        ", whose vectors (its ", csr ? "rows" : "columns",
        ") it holds whole: normalize it with NormalizeMatrix, no other shard is needed. The "
        "sharded normalization takes a CSR block of rows on axis 0 or a CSC block of columns "
        "on axis 1.");
  }
  return Status::Ok();
}

}  // namespace

Status MatrixNormParts(const SparseMatrix& slice, const MatrixOptions& options,
                       std::vector<NormPart>* parts_out) {
  if (parts_out == nullptr) return InvalidArgument("parts must not be null.");
  SparseMatrixProblem m;
  if (Status s = PrepareSparseSlice(&slice, options, &m); !s.ok()) return s;
  std::vector<std::int64_t> subset;
  if (Status s = SubsetOf(options, m.minor_dim, &subset); !s.ok()) return s;
  const auto n = static_cast<std::size_t>(m.minor_dim);
  std::vector<double> scale(n, 0.0), sum(n, 0.0);
  const MatrixPlan plan = PlanSparseMatrix(m, options.norm.num_threads, Tuning{});
  if (Finding f = cpu::ScatteredVectorParts(m, plan, scale.data(), sum.data())) return StatusOf(f);
  const NormKind kind = KindOf(options.norm.p);
  std::vector<NormPart> parts(subset.size());
  for (std::size_t i = 0; i < subset.size(); ++i) {
    const auto v = static_cast<std::size_t>(subset[i]);
    parts[i] = ScaledPart(scale[v], sum[v], kind);
  }
  *parts_out = std::move(parts);
  return Status::Ok();
}

Status ApplyMatrixNorms(SparseMatrix* slice, const MatrixOptions& options,
                        std::span<const NormPart> combined, MatrixStats* stats_out) {
  SparseMatrixProblem m;
  if (Status s = PrepareSparseSlice(slice, options, &m); !s.ok()) return s;
  std::vector<Scale> scales;
  std::vector<double> norms;
  MatrixStats stats;
  if (Status s = DecideVectors(options, m.minor_dim, combined, &scales, &norms, &stats); !s.ok()) {
    return s;
  }
  std::vector<cpu::ScaleCode> codes(scales.size());
  for (std::size_t v = 0; v < scales.size(); ++v) {
    codes[v] = cpu::ScaleCode::Of(scales[v], norms[v], options.norm.eps);
  }
  const MatrixPlan plan = PlanSparseMatrix(m, options.norm.num_threads, Tuning{});
  if (Finding f = cpu::ApplyScatteredCodes(m, plan, codes.data(), stats.vectors_scaled > 0, &stats)) {
    return StatusOf(f);
  }
  slice->nnz = stats.nnz_after;
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

std::uint64_t IndexListDigest(const Indices& indices) {
  std::uint64_t h = Fold(0x5eed, static_cast<std::uint64_t>(indices.size));
  if (indices.size > 0 && indices.data == nullptr) return h;
  ForEachIndex(indices, [&](std::int64_t, std::int64_t v) { h = Fold(h, static_cast<std::uint64_t>(v)); });
  return h;
}

std::uint64_t OptionsDigest(const NormalizeOptions& o) {
  std::uint64_t h = Fold(0x0b7, static_cast<std::uint64_t>(o.mode));
  h = Fold(h, DoubleWord(o.target));
  h = Fold(h, DoubleWord(o.p));
  h = Fold(h, DoubleWord(o.eps));
  return Fold(h, static_cast<std::uint64_t>(o.non_finite));
}

std::uint64_t OptionsDigest(const MatrixOptions& o) {
  std::uint64_t h = Fold(detail::OptionsDigest(o.norm), static_cast<std::uint64_t>(o.axis));
  h = Fold(h, DoubleWord(o.prune_below));
  return Fold(h, o.subset ? detail::IndexListDigest(*o.subset) : 0);
}

}  // namespace detail

NormPart CombineNormParts(std::span<const NormPart> parts, double p) noexcept {
  return detail::CombineParts(parts.data(), parts.size(), 1, p);
}

double NormOfPart(const NormPart& part, double p) noexcept {
  if (!(part.scale >= 0.0 && part.scale <= DBL_MAX && part.sum >= 0.0 && part.sum <= DBL_MAX)) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  if (part.scale == 0.0) return 0.0;
  const NormKind kind = KindOf(p);
  if (kind == NormKind::kLInf) return part.scale;
  return FinishScaled(part.scale, part.sum, kind, p);
}

Status CombineGatheredParts(std::span<const NormPart> gathered, int shards, double p,
                            std::vector<NormPart>* combined) noexcept {
  try {
    if (combined == nullptr) return detail::InvalidArgument("combined must not be null.");
    if (shards < 1 || gathered.size() % static_cast<std::size_t>(shards) != 0) {
      return detail::InvalidArgument("gathered has ", gathered.size(), " parts, which is not ",
                                     shards, " shards of equal length (shards must be >= 1).");
    }
    const std::size_t n = gathered.size() / static_cast<std::size_t>(shards);
    combined->resize(n);  // no allocation when its capacity suffices
    for (std::size_t i = 0; i < n; ++i) {
      (*combined)[i] = detail::CombineParts(gathered.data() + i, static_cast<std::size_t>(shards), n, p);
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("the combined norms");
  }
}

Status RowNormParts(ConstTable slice, Indices indices, const NormalizeOptions& options,
                    std::vector<std::int64_t>* rows, std::vector<NormPart>* parts) noexcept {
  try {
    return detail::RowNormParts(slice, indices, options, rows, parts);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("the rows and parts of the row operator");
  }
}

Status ApplyRowNorms(Table slice, std::span<const std::int64_t> rows,
                     std::span<const NormPart> combined, const NormalizeOptions& options,
                     RowStats* stats) noexcept {
  try {
    return detail::ApplyRowNorms(slice, rows, combined, options, stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the row operator");
  }
}

Status OwnedRowIndices(Indices global_indices, const RowOwnership& ownership,
                       std::vector<std::int64_t>* local_indices) noexcept {
  try {
    return detail::OwnedRowIndices(global_indices, ownership, local_indices);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("the owned row indices");
  }
}

std::uint64_t IndexListDigest(Indices indices) noexcept { return detail::IndexListDigest(indices); }

std::uint64_t OptionsDigest(const NormalizeOptions& options) noexcept {
  return detail::OptionsDigest(options);
}

std::uint64_t OptionsDigest(const MatrixOptions& options) noexcept {
  return detail::OptionsDigest(options);
}

Status MatrixNormParts(ConstTable slice, const MatrixOptions& options,
                       std::vector<NormPart>* parts) noexcept {
  try {
    return detail::MatrixNormParts(slice, options, parts);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("the parts of the matrix normalization");
  }
}

Status ApplyMatrixNorms(Table slice, const MatrixOptions& options,
                        std::span<const NormPart> combined, MatrixStats* stats) noexcept {
  try {
    return detail::ApplyMatrixNorms(slice, options, combined, stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the matrix normalization");
  }
}

Status MatrixNormParts(const SparseMatrix& slice, const MatrixOptions& options,
                       std::vector<NormPart>* parts) noexcept {
  try {
    return detail::MatrixNormParts(slice, options, parts);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("the parts of the sparse matrix normalization");
  }
}

Status ApplyMatrixNorms(SparseMatrix* slice, const MatrixOptions& options,
                        std::span<const NormPart> combined, MatrixStats* stats) noexcept {
  try {
    return detail::ApplyMatrixNorms(slice, options, combined, stats);
  } catch (const std::bad_alloc&) {
    return detail::OutOfMemory("scratch memory for the sparse matrix normalization");
  }
}

}  // namespace sparsenorm
