// What the dense and the sparse drivers of the matrix normalization share:
// the subset bitmap, per-thread results, and the decisions of vectors whose
// norms were summed into per-vector tables.

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <new>
#include <vector>

#include "common/norms.h"
#include "cpu/matrix_cpu.h"
#include "cpu/parallel.h"
#include "cpu/row_set.h"

namespace sparsenorm::cpu {

DoubleArray ZeroedDoubles(std::int64_t n) {
  return DoubleArray(static_cast<double*>(
      std::calloc(static_cast<std::size_t>(std::max<std::int64_t>(n, 1)), sizeof(double))));
}

Finding MarkSubset(const MatrixCommon& c, int threads, RowBitmap* bitmap, std::int64_t* distinct) {
  *distinct = c.vectors;
  if (!c.has_subset) return {};
  if (!bitmap->Init(c.vectors)) return OutOfMemoryFinding("the subset bitmap");
  const Indices& list = c.subset;
  const std::int64_t bad = bitmap->MarkAll(list.data, list.type, list.size, threads);
  if (bad >= 0) {
    std::int64_t value = 0;
    VisitIndexType(list.type, [&](auto i) { value = static_cast<const TypeOf<decltype(i)>*>(list.data)[bad]; });
    return SubsetIndexFinding(c.axis, bad, value, c.vectors);
  }
  std::int64_t n = 0;
  for (std::int64_t w = 0; w < bitmap->word_count(); ++w) n += std::popcount(bitmap->words()[w]);
  *distinct = n;
  return {};
}

std::int64_t FirstFound(const std::vector<std::int64_t>& found) {
  std::int64_t first = -1;
  for (std::int64_t f : found) {
    if (f >= 0 && (first < 0 || f < first)) first = f;
  }
  return first;
}

void AddCounts(const std::vector<MatrixCounts>& parts, MatrixStats* stats) {
  for (const MatrixCounts& c : parts) {
    stats->vectors_scaled += c.scaled;
    stats->zero_vectors += c.zero;
    stats->nonfinite_vectors += c.nonfinite;
    stats->pruned += c.pruned;
  }
}

namespace {

// The norm of one vector from its table entries (see PlanVectors).
VectorNorm NormFromSums(NormKind kind, double p, double a, const double* acc2,
                        const std::uint64_t* recomputed, std::int64_t c) {
  constexpr double kMax = std::numeric_limits<double>::max();
  const bool robust = kind == NormKind::kLp || (recomputed != nullptr && TestBit(recomputed, c));
  if (robust) {
    const double m = kind == NormKind::kLp ? a : acc2[c];
    const double s = kind == NormKind::kLp ? acc2[c] : a;
    if (!(m <= kMax)) return {std::nan(""), false};
    if (m == 0.0) return {0.0, true};
    return {FinishScaled(m, s, kind, p), true};
  }
  if (!(a <= kMax)) return {std::nan(""), false};
  return {NormFromSum(a, kind == NormKind::kLInf ? NormKind::kL1 : kind), true};
}

}  // namespace

ScaleCode* PlanVectors(double* acc, const double* acc2, const std::uint64_t* recomputed,
                       std::int64_t n, const std::uint64_t* subset, const NormRule& rule,
                       int threads, MatrixStats* stats, std::int64_t* first_nonfinite) {
  const int parts = std::max(1, threads);
  std::vector<MatrixCounts> counts(static_cast<std::size_t>(parts));
  std::vector<std::int64_t> first(static_cast<std::size_t>(parts), -1);
  ParallelFor(parts, n, [&](std::int64_t b, std::int64_t e, int t) {
    for (std::int64_t c = b; c < e; ++c) {
      ScaleCode code = ScaleCode::Leave();
      if (subset == nullptr || TestBit(subset, c)) {
        const VectorNorm norm = NormFromSums(rule.kind, rule.p, acc[c], acc2, recomputed, c);
        const Scale scale = Decide(norm, rule);
        Count(scale, norm.value, &counts[t]);
        if (scale.action == Action::kNonFinite && first[t] < 0) first[t] = c;
        code = ScaleCode::Of(scale, norm.value, rule.eps);
      }
      // The code takes the place of the sum it was made from.
      ::new (static_cast<void*>(acc + c)) ScaleCode(code);
    }
  });
  AddCounts(counts, stats);
  *first_nonfinite = FirstFound(first);
  return std::launder(reinterpret_cast<ScaleCode*>(acc));
}

std::unique_ptr<std::uint64_t[]> NonFiniteSums(const double* acc, std::int64_t n) {
  std::unique_ptr<std::uint64_t[]> bits;
  for (std::int64_t c = 0; c < n; ++c) {
    if (acc[c] <= std::numeric_limits<double>::max()) continue;
    if (!bits) bits.reset(new std::uint64_t[static_cast<std::size_t>((n + 63) / 64)]());
    bits[c >> 6] |= std::uint64_t{1} << (c & 63);
  }
  return bits;
}

}  // namespace sparsenorm::cpu
