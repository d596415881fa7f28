// The CPU backend of the matrix normalization for dense row-major matrices.
//
//   axis 1   rows, each on its own (the row operator's norm and scaling);
//   axis 0   column sums in float64 by column blocks, then every row scaled
//            lane-wise by the per-column decisions.
//
// Under NonFinitePolicy::kError every vector is checked (axis 1) or every
// norm is known (axis 0) before the first write.

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "core/matrix_backend.h"
#include "cpu/matrix_cpu.h"
#include "cpu/parallel.h"
#include "cpu/row_set.h"

namespace sparsenorm::cpu {
namespace {

// Column blocks of 1024 float64 accumulators (8 KB, in L1): each block is
// summed over all rows by one thread, so the sums do not depend on the
// thread count. With fewer than two blocks per thread the rows are split
// instead and the per-part sums added in part order.
constexpr std::int64_t kColumnBlock = 1024;

void DenseColumnReduce(const DenseJob& job, Reduce op, const double* m, int threads, double* acc) {
  const std::int64_t cols = job.cols, rows = job.rows;
  const std::int64_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
  if (threads <= 1 || blocks >= 2 * threads) {
    ParallelForDynamic(threads, blocks, 1, [&](std::int64_t b, std::int64_t e, int) {
      for (std::int64_t blk = b; blk < e; ++blk) {
        const std::int64_t c0 = blk * kColumnBlock, c1 = std::min(cols, c0 + kColumnBlock);
        DenseReduceColumns(job, op, m, 0, rows, c0, c1, acc + c0);
      }
    });
    return;
  }
  const int parts = threads;
  std::vector<double> partial(static_cast<std::size_t>(parts - 1) * static_cast<std::size_t>(cols), 0.0);
  ParallelFor(parts, parts, [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t p = b; p < e; ++p) {
      double* out = p == 0 ? acc : partial.data() + (p - 1) * cols;
      DenseReduceColumns(job, op, m, rows * p / parts, rows * (p + 1) / parts, 0, cols, out);
    }
  });
  for (int p = 1; p < parts; ++p) {
    const double* src = partial.data() + (p - 1) * cols;
    for (std::int64_t c = 0; c < cols; ++c) {
      if (op == Reduce::kMaxAbs) {
        if (std::bit_cast<std::uint64_t>(src[c]) > std::bit_cast<std::uint64_t>(acc[c])) acc[c] = src[c];
      } else {
        acc[c] += src[c];
      }
    }
  }
}

// float64 columns whose plain sum was not finite: max |x| into acc2 and the
// sum of (|x| / max)^2 (or |x| / max) into acc, one column at a time.
void DenseRecompute(const DenseJob& job, const std::uint64_t* flagged, double* acc, double* acc2,
                    int threads) {
  std::vector<std::int64_t> cols;
  for (std::int64_t c = 0; c < job.cols; ++c) {
    if (TestBit(flagged, c)) cols.push_back(c);
  }
  ParallelForDynamic(threads, static_cast<std::int64_t>(cols.size()), 1,
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
          s += job.rule.kind == NormKind::kL2 ? y * y : y;
        }
      }
      acc2[c] = m;
      acc[c] = s;
    }
  });
}

}  // namespace

Finding NormalizeDenseMatrix(const DenseMatrixProblem& p, const MatrixPlan& plan, MatrixStats* stats_out) {
  const int threads = plan.threads;
  const MatrixCommon& c = p.common;
  RowBitmap bitmap;
  MatrixStats stats;
  if (Finding f = MarkSubset(c, threads, &bitmap, &stats.vectors)) return f;
  stats.nnz_before = stats.nnz_after = p.rows * p.cols;

  DenseJob job;
  job.data = p.data;
  job.stride_bytes = p.stride_bytes;
  job.rows = p.rows;
  job.cols = p.cols;
  job.dtype = p.dtype;
  job.rule = c.rule;
  job.subset = c.has_subset ? bitmap.words() : nullptr;
  job.prune_below = c.prune_below;
  const std::int64_t row_bytes =
      std::max<std::int64_t>(1, p.cols * static_cast<std::int64_t>(ElementSize(p.dtype)));
  // About 64 KB of rows per chunk of the row loops.
  const std::int64_t row_grain = std::max<std::int64_t>(1, (std::int64_t{1} << 16) / row_bytes);
  std::vector<MatrixCounts> counts(static_cast<std::size_t>(std::max(threads, 1)));

  if (c.axis == 1) {
    if (c.nonfinite_error) {
      std::vector<std::int64_t> first(counts.size(), -1);
      ParallelFor(threads, p.rows, [&](std::int64_t b, std::int64_t e, int t) {
        first[t] = DenseFirstNonFiniteRow(job, b, e);
      });
      if (const std::int64_t f = FirstFound(first); f >= 0) return NonFiniteVectorFinding(1, f);
    }
    ParallelForDynamic(threads, p.rows, row_grain, [&](std::int64_t b, std::int64_t e, int t) {
      DenseRows(job, b, e, &counts[t]);
    });
    AddCounts(counts, &stats);
    *stats_out = stats;
    return {};
  }

  // Axis 0: all column norms first.
  const std::int64_t cols = p.cols;
  DoubleArray acc = ZeroedDoubles(cols);
  if (!acc) return OutOfMemoryFinding("the column sums");
  DoubleArray acc2;
  std::unique_ptr<std::uint64_t[]> recomputed;
  switch (job.rule.kind) {
    case NormKind::kL2:
    case NormKind::kL1:
      DenseColumnReduce(job, job.rule.kind == NormKind::kL2 ? Reduce::kSumSquares : Reduce::kSumAbs,
                        nullptr, threads, acc.get());
      if (p.dtype == DType::kFloat64) {
        recomputed = NonFiniteSums(acc.get(), cols);
        if (recomputed) {
          acc2 = ZeroedDoubles(cols);
          if (!acc2) return OutOfMemoryFinding("the column maxima");
          DenseRecompute(job, recomputed.get(), acc.get(), acc2.get(), threads);
        }
      }
      break;
    case NormKind::kLInf:
      DenseColumnReduce(job, Reduce::kMaxAbs, nullptr, threads, acc.get());
      break;
    case NormKind::kLp:
      acc2 = ZeroedDoubles(cols);
      if (!acc2) return OutOfMemoryFinding("the column sums");
      DenseColumnReduce(job, Reduce::kMaxAbs, nullptr, threads, acc.get());
      DenseColumnReduce(job, Reduce::kSumPowScaled, acc.get(), threads, acc2.get());
      break;
  }
  std::int64_t first_nonfinite = -1;
  const ScaleCode* codes = PlanVectors(acc.get(), acc2.get(), recomputed.get(), cols, job.subset,
                                       job.rule, threads, &stats, &first_nonfinite);
  if (c.nonfinite_error && first_nonfinite >= 0) return NonFiniteVectorFinding(0, first_nonfinite);
  std::vector<float> f;
  std::vector<std::int64_t> special;
  if (p.dtype != DType::kFloat64) f.resize(static_cast<std::size_t>(cols));
  for (std::int64_t col = 0; col < cols; ++col) {
    const ScaleCode code = codes[col];
    const bool is_special = code.NeedsScalarPath(p.dtype);
    if (is_special) special.push_back(col);
    if (!f.empty()) {
      f[col] = is_special || code.leaves() ? std::numeric_limits<float>::quiet_NaN()
                                           : static_cast<float>(code.raw());
    }
  }
  ColumnScales scales;
  scales.code = codes;
  scales.f = f.empty() ? nullptr : f.data();
  scales.special = special.data();
  scales.special_count = static_cast<std::int64_t>(special.size());
  if (stats.vectors_scaled > 0 || c.prune_below > 0.0) {
    ParallelForDynamic(threads, p.rows, row_grain, [&](std::int64_t b, std::int64_t e, int t) {
      DenseScaleColumns(job, scales, b, e, &counts[t]);
    });
    for (const MatrixCounts& mc : counts) stats.pruned += mc.pruned;
  }
  *stats_out = stats;
  return {};
}

}  // namespace sparsenorm::cpu
