// The scalar oracle of the matrix normalization: the structure checked
// entry by entry, every vector gathered into a std::vector, its norm taken by
// reference::Norm (long double sums), the contract's rule applied element by
// element, serial. Written to be read, not to be fast.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

#include "common/element_types.h"
#include "core/matrix_backend.h"
#include "reference/reference.h"

namespace sparsenorm::reference {
namespace {

void SetIndex(void* data, IndexType type, std::int64_t i, std::int64_t v) {
  if (type == IndexType::kInt32) {
    static_cast<std::int32_t*>(data)[i] = static_cast<std::int32_t>(v);
  } else {
    static_cast<std::int64_t*>(data)[i] = v;
  }
}

// The first subset value out of range, or the vectors the call considers,
// ascending and distinct.
Finding Considered(const MatrixCommon& c, std::vector<std::int64_t>* v) {
  v->clear();
  if (!c.has_subset) {
    for (std::int64_t i = 0; i < c.vectors; ++i) v->push_back(i);
    return {};
  }
  for (std::int64_t i = 0; i < c.subset.size; ++i) {
    const std::int64_t x = IndexValue(c.subset.data, c.subset.type, i);
    if (x < 0 || x >= c.vectors) return SubsetIndexFinding(c.axis, i, x, c.vectors);
    v->push_back(x);
  }
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
  return {};
}

// CSR/CSC index pointers and minor indices, in the order the CPU backend
// reports them: the pointers first.
Finding CheckPointers(const SparseMatrixProblem& p) {
  const SparseMatrix& m = p.matrix;
  const std::int64_t first = IndexValue(m.indptr, m.index_type, 0);
  if (first != 0) return IndptrFinding(FindingKind::kIndptrStart, m.format, 0, first, 0);
  for (std::int64_t i = 1; i <= p.segments; ++i) {
    const std::int64_t a = IndexValue(m.indptr, m.index_type, i);
    const std::int64_t b = IndexValue(m.indptr, m.index_type, i - 1);
    if (a < b) return IndptrFinding(FindingKind::kIndptrDecrease, m.format, i, a, b);
  }
  const std::int64_t last = IndexValue(m.indptr, m.index_type, p.segments);
  if (last != m.nnz) return IndptrFinding(FindingKind::kIndptrEnd, m.format, p.segments, last, m.nnz);
  return {};
}

Finding CheckMinor(const SparseMatrixProblem& p) {
  const SparseMatrix& m = p.matrix;
  std::int64_t segment = 0;
  for (std::int64_t k = 0; k < m.nnz; ++k) {
    while (IndexValue(m.indptr, m.index_type, segment + 1) <= k) ++segment;
    const std::int64_t v = IndexValue(m.indices, m.index_type, k);
    if (v < 0 || v >= p.minor_dim) return MinorIndexFinding(m.format, k, v, segment, p.minor_dim);
  }
  return {};
}

// COO coordinates: the first entry with a coordinate out of range (its row
// when both are).
Finding CheckCoordinates(const SparseMatrix& m) {
  for (std::int64_t k = 0; k < m.nnz; ++k) {
    const std::int64_t r = IndexValue(m.row, m.index_type, k);
    const std::int64_t c = IndexValue(m.col, m.index_type, k);
    if (r < 0 || r >= m.rows) return CooIndexFinding(false, k, r, m.rows);
    if (c < 0 || c >= m.cols) return CooIndexFinding(true, k, c, m.cols);
  }
  return {};
}

// Counts and, unless dry, applies the rule to one vector whose stored
// elements are at `offsets` of `data`; `norm_input` is the vector the norm
// is taken of (the stored values, or their per-coordinate sums).
void ApplyRule(void* data, DType dtype, const std::vector<std::int64_t>& offsets,
               const std::vector<double>& norm_input, const NormalizeOptions& o, MatrixStats* stats) {
  const double norm = Norm(norm_input, o.p);
  if (std::isnan(norm)) {
    ++stats->nonfinite_vectors;
    return;
  }
  if (norm == 0.0) ++stats->zero_vectors;
  if (!IsScaled(norm, o)) return;
  const AppliedScale s = EffectiveScale(norm, dtype, o);
  for (std::int64_t off : offsets) {
    StoreRounded(data, dtype, off, std::ldexp(Load(data, dtype, off), s.shift) * s.factor);
  }
  ++stats->vectors_scaled;
}

}  // namespace

Finding NormalizeDenseMatrix(const DenseMatrixProblem& p, MatrixStats* stats_out) {
  const MatrixCommon& c = p.common;
  std::vector<std::int64_t> considered;
  if (Finding f = Considered(c, &considered)) return f;
  const NormalizeOptions o = OptionsOf(c.rule);
  const std::size_t element = ElementSize(p.dtype);
  const std::int64_t stride = p.stride_bytes / static_cast<std::int64_t>(element);
  const std::int64_t length = c.axis == 0 ? p.rows : p.cols;
  auto offsets_of = [&](std::int64_t v) {
    std::vector<std::int64_t> off(static_cast<std::size_t>(length));
    for (std::int64_t i = 0; i < length; ++i) off[i] = c.axis == 0 ? i * stride + v : v * stride + i;
    return off;
  };
  auto values_at = [&](const std::vector<std::int64_t>& off) {
    std::vector<double> x;
    for (std::int64_t k : off) x.push_back(Load(p.data, p.dtype, k));
    return x;
  };
  if (c.nonfinite_error) {
    for (std::int64_t v : considered) {
      if (std::isnan(Norm(values_at(offsets_of(v)), c.rule.p))) return NonFiniteVectorFinding(c.axis, v);
    }
  }
  MatrixStats stats;
  stats.vectors = static_cast<std::int64_t>(considered.size());
  stats.nnz_before = stats.nnz_after = p.rows * p.cols;
  for (std::int64_t v : considered) {
    const std::vector<std::int64_t> off = offsets_of(v);
    ApplyRule(p.data, p.dtype, off, values_at(off), o, &stats);
  }
  if (c.prune_below > 0.0) {
    for (std::int64_t r = 0; r < p.rows; ++r) {
      for (std::int64_t col = 0; col < p.cols; ++col) {
        const double w = Load(p.data, p.dtype, r * stride + col);
        if (std::fabs(w) < c.prune_below && w != 0.0) {
          StoreRounded(p.data, p.dtype, r * stride + col, 0.0);
          ++stats.pruned;
        }
      }
    }
  }
  *stats_out = stats;
  return {};
}

Finding NormalizeSparseMatrix(const SparseMatrixProblem& p, MatrixStats* stats_out) {
  const SparseMatrix& m = p.matrix;
  const MatrixCommon& c = p.common;
  const IndexType it = m.index_type;
  const bool coo = m.format == SparseFormat::kCOO;
  if (!coo) {
    if (Finding f = CheckPointers(p)) return f;
  }
  std::vector<std::int64_t> considered;
  if (Finding f = Considered(c, &considered)) return f;
  if (Finding f = coo ? CheckCoordinates(m) : CheckMinor(p)) return f;
  const NormalizeOptions o = OptionsOf(c.rule);

  // (vector, other coordinate, storage position) of every stored entry.
  std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> entries;
  for (std::int64_t k = 0; k < m.nnz; ++k) entries.emplace_back(0, 0, k);
  if (coo) {
    for (auto& [v, other, k] : entries) {
      const std::int64_t r = IndexValue(m.row, it, k), col = IndexValue(m.col, it, k);
      v = c.axis == 0 ? col : r;
      other = c.axis == 0 ? r : col;
    }
  } else {
    for (std::int64_t s = 0; s < p.segments; ++s) {
      for (std::int64_t k = IndexValue(m.indptr, it, s); k < IndexValue(m.indptr, it, s + 1); ++k) {
        const std::int64_t minor = IndexValue(m.indices, it, k);
        const std::int64_t r = m.format == SparseFormat::kCSR ? s : minor;
        const std::int64_t col = m.format == SparseFormat::kCSR ? minor : s;
        entries[k] = {c.axis == 0 ? col : r, c.axis == 0 ? r : col, k};
      }
    }
  }
  std::sort(entries.begin(), entries.end());

  // Per vector: the storage positions, and the per-coordinate sums.
  auto gather = [&](std::int64_t v, std::vector<std::int64_t>* positions, std::vector<double>* sums) {
    positions->clear();
    sums->clear();
    auto it_begin = std::lower_bound(entries.begin(), entries.end(), std::make_tuple(v, std::int64_t{-1}, std::int64_t{-1}));
    std::int64_t last_other = -1;
    long double sum = 0;
    for (auto e = it_begin; e != entries.end() && std::get<0>(*e) == v; ++e) {
      const auto [vec, other, k] = *e;
      if (other != last_other && last_other >= 0) {
        sums->push_back(static_cast<double>(sum));
        sum = 0;
      }
      last_other = other;
      sum += Load(m.values, m.dtype, k);
      positions->push_back(k);
    }
    if (last_other >= 0) sums->push_back(static_cast<double>(sum));
  };
  std::vector<std::int64_t> positions;
  std::vector<double> sums;
  if (c.nonfinite_error) {
    for (std::int64_t v : considered) {
      gather(v, &positions, &sums);
      if (std::isnan(Norm(sums, c.rule.p))) return NonFiniteVectorFinding(c.axis, v);
    }
  }
  MatrixStats stats;
  stats.vectors = static_cast<std::int64_t>(considered.size());
  stats.nnz_before = m.nnz;
  for (std::int64_t v : considered) {
    gather(v, &positions, &sums);
    ApplyRule(m.values, m.dtype, positions, sums, o, &stats);
  }
  std::int64_t kept = m.nnz;
  if (c.prune_below > 0.0) {
    kept = 0;
    const std::size_t es = ElementSize(m.dtype);
    auto* bytes = static_cast<unsigned char*>(m.values);
    std::vector<std::int64_t> new_counts;
    if (!coo) new_counts.assign(static_cast<std::size_t>(p.segments), 0);
    std::int64_t s = 0;
    for (std::int64_t k = 0; k < m.nnz; ++k) {
      if (!coo) {
        while (IndexValue(m.indptr, it, s + 1) <= k) ++s;
      }
      if (std::fabs(Load(m.values, m.dtype, k)) < c.prune_below) continue;
      std::copy(bytes + k * es, bytes + (k + 1) * es, bytes + kept * es);
      if (coo) {
        SetIndex(m.row, it, kept, IndexValue(m.row, it, k));
        SetIndex(m.col, it, kept, IndexValue(m.col, it, k));
      } else {
        SetIndex(m.indices, it, kept, IndexValue(m.indices, it, k));
        ++new_counts[s];
      }
      ++kept;
    }
    if (!coo) {
      std::int64_t total = 0;
      SetIndex(m.indptr, it, 0, 0);
      for (std::int64_t q = 0; q < p.segments; ++q) {
        total += new_counts[q];
        SetIndex(m.indptr, it, q + 1, total);
      }
    }
    stats.pruned = m.nnz - kept;
  }
  stats.nnz_after = kept;
  *stats_out = stats;
  return {};
}

}  // namespace sparsenorm::reference
