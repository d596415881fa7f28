// The scalar oracle of the matrix normalization: every vector gathered into
// a std::vector, its norm taken by reference::Norm (long double sums), the
// contract's rule applied element by element, serial. Written to be read,
// not to be fast.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

#include "reference/reference.h"

namespace sparsenorm::reference {
namespace {

std::int64_t IndexValue(const void* data, IndexType type, std::int64_t i) {
  return type == IndexType::kInt32 ? static_cast<const std::int32_t*>(data)[i]
                                   : static_cast<const std::int64_t*>(data)[i];
}

void SetIndex(void* data, IndexType type, std::int64_t i, std::int64_t v) {
  if (type == IndexType::kInt32) {
    static_cast<std::int32_t*>(data)[i] = static_cast<std::int32_t>(v);
  } else {
    static_cast<std::int64_t*>(data)[i] = v;
  }
}

// The vectors the call considers, ascending and distinct.
std::vector<std::int64_t> Considered(const MatrixOptions& o, std::int64_t vectors) {
  std::vector<std::int64_t> v;
  if (!o.subset.has_value()) {
    for (std::int64_t i = 0; i < vectors; ++i) v.push_back(i);
    return v;
  }
  for (std::int64_t i = 0; i < o.subset->size; ++i) v.push_back(IndexValue(o.subset->data, o.subset->type, i));
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
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

MatrixResult NormalizeDenseMatrix(const Table& m, const MatrixOptions& o) {
  MatrixResult result;
  const std::int64_t stride = m.row_stride == 0 ? m.cols : m.row_stride;
  const std::int64_t vectors = o.axis == 0 ? m.cols : m.rows;
  const std::int64_t length = o.axis == 0 ? m.rows : m.cols;
  const std::vector<std::int64_t> considered = Considered(o, vectors);
  auto offsets_of = [&](std::int64_t v) {
    std::vector<std::int64_t> off(static_cast<std::size_t>(length));
    for (std::int64_t i = 0; i < length; ++i) off[i] = o.axis == 0 ? i * stride + v : v * stride + i;
    return off;
  };
  auto values_at = [&](const std::vector<std::int64_t>& off) {
    std::vector<double> x;
    for (std::int64_t k : off) x.push_back(Load(m.data, m.dtype, k));
    return x;
  };
  if (o.norm.non_finite == NonFinitePolicy::kError) {
    for (std::int64_t v : considered) {
      if (std::isnan(Norm(values_at(offsets_of(v)), o.norm.p))) {
        result.first_nonfinite = v;
        return result;
      }
    }
  }
  MatrixStats& stats = result.stats;
  stats.vectors = static_cast<std::int64_t>(considered.size());
  stats.nnz_before = stats.nnz_after = m.rows * m.cols;
  for (std::int64_t v : considered) {
    const std::vector<std::int64_t> off = offsets_of(v);
    ApplyRule(m.data, m.dtype, off, values_at(off), o.norm, &stats);
  }
  if (o.prune_below > 0.0) {
    for (std::int64_t r = 0; r < m.rows; ++r) {
      for (std::int64_t c = 0; c < m.cols; ++c) {
        const double w = Load(m.data, m.dtype, r * stride + c);
        if (std::fabs(w) < o.prune_below && w != 0.0) {
          StoreRounded(m.data, m.dtype, r * stride + c, 0.0);
          ++stats.pruned;
        }
      }
    }
  }
  return result;
}

MatrixResult NormalizeSparseMatrix(SparseMatrix* m, const MatrixOptions& o) {
  MatrixResult result;
  const IndexType it = m->index_type;
  // (vector, other coordinate, storage position) of every stored entry.
  std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> entries;
  for (std::int64_t k = 0; k < m->nnz; ++k) entries.emplace_back(0, 0, k);
  if (m->format == SparseFormat::kCOO) {
    for (auto& [v, other, k] : entries) {
      const std::int64_t r = IndexValue(m->row, it, k), c = IndexValue(m->col, it, k);
      v = o.axis == 0 ? c : r;
      other = o.axis == 0 ? r : c;
    }
  } else {
    const std::int64_t segments = m->format == SparseFormat::kCSR ? m->rows : m->cols;
    for (std::int64_t s = 0; s < segments; ++s) {
      for (std::int64_t k = IndexValue(m->indptr, it, s); k < IndexValue(m->indptr, it, s + 1); ++k) {
        const std::int64_t minor = IndexValue(m->indices, it, k);
        const std::int64_t r = m->format == SparseFormat::kCSR ? s : minor;
        const std::int64_t c = m->format == SparseFormat::kCSR ? minor : s;
        entries[k] = {o.axis == 0 ? c : r, o.axis == 0 ? r : c, k};
      }
    }
  }
  std::sort(entries.begin(), entries.end());
  const std::int64_t vectors = o.axis == 0 ? m->cols : m->rows;
  const std::vector<std::int64_t> considered = Considered(o, vectors);

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
      sum += Load(m->values, m->dtype, k);
      positions->push_back(k);
    }
    if (last_other >= 0) sums->push_back(static_cast<double>(sum));
  };
  std::vector<std::int64_t> positions;
  std::vector<double> sums;
  if (o.norm.non_finite == NonFinitePolicy::kError) {
    for (std::int64_t v : considered) {
      gather(v, &positions, &sums);
      if (std::isnan(Norm(sums, o.norm.p))) {
        result.first_nonfinite = v;
        return result;
      }
    }
  }
  MatrixStats& stats = result.stats;
  stats.vectors = static_cast<std::int64_t>(considered.size());
  stats.nnz_before = m->nnz;
  for (std::int64_t v : considered) {
    gather(v, &positions, &sums);
    ApplyRule(m->values, m->dtype, positions, sums, o.norm, &stats);
  }
  std::int64_t kept = m->nnz;
  if (o.prune_below > 0.0) {
    kept = 0;
    const std::size_t es = DTypeSize(m->dtype);
    auto* bytes = static_cast<unsigned char*>(m->values);
    std::vector<std::int64_t> new_counts;
    const std::int64_t segments = m->format == SparseFormat::kCSR   ? m->rows
                                  : m->format == SparseFormat::kCSC ? m->cols
                                                                    : 0;
    if (m->format != SparseFormat::kCOO) new_counts.assign(static_cast<std::size_t>(segments), 0);
    std::int64_t s = 0;
    for (std::int64_t k = 0; k < m->nnz; ++k) {
      if (m->format != SparseFormat::kCOO) {
        while (IndexValue(m->indptr, it, s + 1) <= k) ++s;
      }
      if (std::fabs(Load(m->values, m->dtype, k)) < o.prune_below) continue;
      std::copy(bytes + k * es, bytes + (k + 1) * es, bytes + kept * es);
      if (m->format == SparseFormat::kCOO) {
        SetIndex(m->row, it, kept, IndexValue(m->row, it, k));
        SetIndex(m->col, it, kept, IndexValue(m->col, it, k));
      } else {
        SetIndex(m->indices, it, kept, IndexValue(m->indices, it, k));
        ++new_counts[s];
      }
      ++kept;
    }
    if (m->format != SparseFormat::kCOO) {
      std::int64_t total = 0;
      SetIndex(m->indptr, it, 0, 0);
      for (std::int64_t q = 0; q < segments; ++q) {
        total += new_counts[q];
        SetIndex(m->indptr, it, q + 1, total);
      }
    }
    stats.pruned = m->nnz - kept;
    m->nnz = kept;
  }
  stats.nnz_after = kept;
  return result;
}

}  // namespace sparsenorm::reference
