// The CPU backend of the matrix normalization for CSR, CSC and COO matrices.
//
// Order of work, so that a rejected call writes nothing:
//   1. index pointers (start at 0, never decrease, end at nnz), then the
//      subset's values, then every stored index (CSR/CSC minor indices, COO
//      coordinates), which also finds the segments that hold a repeated
//      index (an unsorted segment is checked for repeats);
//   2. the norms: on the scattered axis they are all summed into a
//      per-vector table first; under NonFinitePolicy::kError every vector is
//      checked before the first write;
//   3. the writes: scaling, then pruning.
//
// Which kernel runs (the plan's path, core/plan.cc):
//   contiguous (CSR axis 1, CSC axis 0)   each segment on its own
//   scattered (CSR axis 0, CSC axis 1)    column sums (sparse_columns.cc),
//                                         then every entry scaled by its
//                                         column's decision
//   COO                                   sorted by row (or column): as CSR
//                                         (or CSC) with index pointers
//                                         computed; otherwise grouped by the
//                                         normalized axis through a
//                                         permutation (8 bytes per entry),
//                                         then as segments

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <vector>

#include "core/matrix_backend.h"
#include "cpu/matrix_cpu.h"
#include "cpu/parallel.h"
#include "cpu/row_set.h"

namespace sparsenorm::cpu {
namespace {

std::int64_t IndexAt(const void* data, IndexType type, std::int64_t i) {
  std::int64_t v = 0;
  VisitIndexType(type, [&](auto t) { v = static_cast<const TypeOf<decltype(t)>*>(data)[i]; });
  return v;
}

// The sparse matrix as segments, with what the kernels need.
struct SparsePlan {
  SparseJob job;
  SparseFormat format = SparseFormat::kCSR;
  bool segment_wise = false;  // the normalized vectors are the segments
  // CSR/CSC column sums validate the indices chunk by chunk as they go
  // (ReduceColumnsValidating).
  bool fold_validation = false;
  int chunks_per_thread = 16;
  std::unique_ptr<std::uint64_t[]> unsorted;
  std::unique_ptr<std::int64_t[]> offsets;  // COO
  std::unique_ptr<std::int64_t[]> perm;     // COO, unsorted

  // Chunks of the passes whose results do not depend on how the work is
  // split (validation, segment-wise normalization, scattered scaling):
  // handed out as threads finish, so that a thread slowed down by its SMT
  // sibling or another process does not leave the other waiting at the end
  // of a static split.
  int ChunkCount(int parts) const { return parts <= 1 ? 1 : parts * chunks_per_thread; }
};

// The segments of a CSR/CSC problem (rows or columns) as the kernels see them.
void DescribeSegments(const SparseMatrixProblem& problem, SparseJob* job) {
  const SparseMatrix& m = problem.matrix;
  job->segments = problem.segments;
  job->minor_dim = problem.minor_dim;
  job->nnz = m.nnz;
  job->offsets = m.indptr;
  job->offsets_type = m.index_type;
  job->minor = m.indices;
  job->minor_type = m.index_type;
}

// What pruning compacts: every array of the matrix.
PruneArrays PruneArraysOf(const SparseMatrix& m, const SparseJob& job) {
  PruneArrays arrays;
  arrays.values = m.values;
  arrays.dtype = m.dtype;
  arrays.index_type = m.index_type;
  arrays.nnz = m.nnz;
  if (m.format == SparseFormat::kCOO) {
    arrays.row = m.row;
    arrays.col = m.col;
  } else {
    arrays.indptr = m.indptr;
    arrays.segments = job.segments;
    arrays.indices = m.indices;
  }
  return arrays;
}

// Index pointers: indptr[0] == 0, never decreasing, indptr[segments] == nnz.
Finding CheckIndexPointers(const SparseMatrix& m, std::int64_t segments, int threads) {
  const void* p = m.indptr;
  const IndexType t = m.index_type;
  if (const std::int64_t first = IndexAt(p, t, 0); first != 0) {
    return IndptrFinding(FindingKind::kIndptrStart, m.format, 0, first, 0);
  }
  std::vector<std::int64_t> found(static_cast<std::size_t>(std::max(threads, 1)), -1);
  ParallelFor(threads, segments, [&](std::int64_t b, std::int64_t e, int th) {
    VisitIndexType(t, [&](auto tag) {
      const auto* a = static_cast<const TypeOf<decltype(tag)>*>(p);
      for (std::int64_t i = b + 1; i <= e; ++i) {
        if (a[i] < a[i - 1]) {
          found[th] = i;
          return;
        }
      }
    });
  });
  if (const std::int64_t i = FirstFound(found); i >= 0) {
    return IndptrFinding(FindingKind::kIndptrDecrease, m.format, i, IndexAt(p, t, i), IndexAt(p, t, i - 1));
  }
  if (const std::int64_t last = IndexAt(p, t, segments); last != m.nnz) {
    return IndptrFinding(FindingKind::kIndptrEnd, m.format, segments, last, m.nnz);
  }
  return {};
}

// A minor index out of range at storage position k of a CSR/CSC matrix.
Finding MinorIndexAt(const SparseJob& job, SparseFormat format, std::int64_t k) {
  // The segment holding position k: the last s with offsets[s] <= k.
  std::int64_t lo = 0, hi = job.segments;
  while (hi - lo > 1) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (OffsetAt(job, mid) <= k) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  while (lo + 1 < job.segments && OffsetAt(job, lo + 1) <= k) ++lo;
  return MinorIndexFinding(format, k, IndexAt(job.minor, job.minor_type, k), lo, job.minor_dim);
}

// Validates the minor indices of a CSR-like job (fills job.unsorted and
// job.max_grouped_len).
Finding ValidateMinor(SparsePlan* plan, int threads) {
  SparseJob& job = plan->job;
  const std::int64_t words = (job.segments + 63) / 64;
  plan->unsorted.reset(new (std::nothrow) std::uint64_t[static_cast<std::size_t>(std::max<std::int64_t>(words, 1))]());
  if (!plan->unsorted) return OutOfMemoryFinding("the unsorted-segment bitmap");
  const int parts = std::max(threads, 1);
  const int chunks = plan->ChunkCount(parts);
  const std::vector<std::int64_t> slices = BalancedSlices(job, chunks);
  // Each chunk reports its first bad position: the lowest of them is the
  // first of the matrix.
  std::vector<std::int64_t> bad(static_cast<std::size_t>(chunks), -1), longest(bad.size(), 0);
  ParallelForDynamic(parts, chunks, 1, [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t p = b; p < e; ++p) {
      bad[p] = ValidateSegments(job, slices[p], slices[p + 1], job.minor_dim, plan->unsorted.get(),
                                &longest[p]);
    }
  });
  if (const std::int64_t k = FirstFound(bad); k >= 0) return MinorIndexAt(job, plan->format, k);
  job.max_grouped_len = *std::max_element(longest.begin(), longest.end());
  bool any = false;
  for (std::int64_t w = 0; w < words && !any; ++w) any = plan->unsorted[w] != 0;
  job.unsorted = any ? plan->unsorted.get() : nullptr;
  return {};
}

// COO: validates both coordinate arrays, then picks the segment structure.
Finding PrepareCoo(const SparseMatrix& m, int axis, int threads, SparsePlan* plan) {
  const int parts = std::max(threads, 1);
  std::int64_t bad[2] = {-1, -1};
  std::int64_t decreases[2] = {0, 0};
  const void* arrays[2] = {m.row, m.col};
  const std::int64_t limits[2] = {m.rows, m.cols};
  for (int a = 0; a < 2; ++a) {
    std::vector<std::int64_t> found(static_cast<std::size_t>(parts), -1), dec(found.size(), 0);
    ParallelFor(parts, m.nnz, [&](std::int64_t b, std::int64_t e, int t) {
      // Each slice also checks the step into it from the previous slice.
      const std::int64_t from = b > 0 ? b - 1 : b;
      std::int64_t d = 0;
      found[t] = CheckCoordinates(arrays[a], m.index_type, from, e, limits[a], &d);
      dec[t] = d;
    });
    bad[a] = FirstFound(found);
    for (std::int64_t d : dec) decreases[a] += d;
  }
  if (bad[0] >= 0 || bad[1] >= 0) {
    const int a = bad[1] < 0 || (bad[0] >= 0 && bad[0] <= bad[1]) ? 0 : 1;
    return CooIndexFinding(a == 1, bad[a], IndexAt(arrays[a], m.index_type, bad[a]), limits[a]);
  }
  SparseJob& job = plan->job;
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
  if (!plan->offsets) return OutOfMemoryFinding("the COO index pointers");
  job.offsets = plan->offsets.get();
  // Normalizing columns groups by column (major 1), rows by row (major 0).
  plan->segment_wise = (axis == 0) == (major == 1);
  plan->format = major == 0 ? SparseFormat::kCSR : SparseFormat::kCSC;
  if (sorted) {
    OffsetsOfSorted(arrays[major], m.index_type, m.nnz, job.segments, plan->offsets.get(), threads);
    // The coordinates are in range: this only finds the repeated ones.
    return ValidateMinor(plan, threads);
  }
  plan->perm.reset(new (std::nothrow) std::int64_t[static_cast<std::size_t>(std::max<std::int64_t>(m.nnz, 1))]);
  if (!plan->perm) return OutOfMemoryFinding("the COO permutation");
  GroupByMajor(arrays[major], m.index_type, m.nnz, job.segments, plan->offsets.get(), plan->perm.get());
  job.perm = plan->perm.get();
  std::int64_t longest = 0;
  for (std::int64_t s = 0; s < job.segments; ++s) longest = std::max(longest, plan->offsets[s + 1] - plan->offsets[s]);
  job.max_grouped_len = longest;
  return {};
}

// The first column reduction of the scattered axis, validating the indices
// on the way when the plan says so.
Finding FirstReduce(SparsePlan* plan, const ColumnReduceSpec& spec, const ColumnSumConfig& config,
                    double* out) {
  if (!plan->fold_validation) {
    if (!ReduceColumns(plan->job, spec, config, out)) return OutOfMemoryFinding("the column sums");
    return {};
  }
  std::int64_t bad = -1, longest = 0;
  if (!ReduceColumnsValidating(plan->job, spec, config.parts, out, &bad, &longest)) {
    return OutOfMemoryFinding("the column sums");
  }
  if (bad >= 0) return MinorIndexAt(plan->job, plan->format, bad);
  plan->job.max_grouped_len = longest;
  plan->fold_validation = false;  // done: later passes need not validate again
  return {};
}

Finding NormalizeSegmentWise(const MatrixCommon& c, SparsePlan* plan, int parts, MatrixStats* stats) {
  SparseJob& job = plan->job;
  const std::vector<std::int64_t> slices = BalancedSlices(job, parts);
  std::vector<GroupedScratch> scratch(static_cast<std::size_t>(parts));
  if (job.unsorted != nullptr || job.perm != nullptr) {
    for (auto& s : scratch) {
      if (!s.Reserve(job.max_grouped_len)) return OutOfMemoryFinding("the grouping scratch");
    }
  }
  if (c.nonfinite_error) {
    std::vector<std::int64_t> first(static_cast<std::size_t>(parts), -1);
    ParallelFor(parts, parts, [&](std::int64_t b, std::int64_t e, int) {
      for (std::int64_t p = b; p < e; ++p) {
        first[p] = FirstNonFiniteSegment(job, slices[p], slices[p + 1], &scratch[p]);
      }
    });
    if (const std::int64_t f = FirstFound(first); f >= 0) return NonFiniteVectorFinding(c.axis, f);
  }
  // Each segment's result depends on it alone: dynamic chunks.
  const int chunks = plan->ChunkCount(parts);
  const std::vector<std::int64_t> chunk_slices = BalancedSlices(job, chunks);
  std::vector<MatrixCounts> counts(static_cast<std::size_t>(parts));
  ParallelForDynamic(parts, chunks, 1, [&](std::int64_t b, std::int64_t e, int t) {
    for (std::int64_t k = b; k < e; ++k) {
      NormalizeSegments(job, chunk_slices[k], chunk_slices[k + 1], &scratch[t], &counts[t]);
    }
  });
  AddCounts(counts, stats);
  return {};
}

void ScaleScattered(const SparsePlan& plan, const ScaleCode* codes, int parts);

Finding NormalizeScattered(const MatrixCommon& c, SparsePlan* plan, const ColumnSumConfig& config,
                           MatrixStats* stats) {
  SparseJob& job = plan->job;
  const int parts = config.parts;
  const std::int64_t n = job.minor_dim;
  DoubleArray acc = ZeroedDoubles(n);
  if (!acc) return OutOfMemoryFinding("the column sums");
  DoubleArray acc2;
  std::unique_ptr<std::uint64_t[]> recomputed;
  ColumnReduceSpec spec;
  switch (job.rule.kind) {
    case NormKind::kL2:
    case NormKind::kL1:
      spec.op = job.rule.kind == NormKind::kL2 ? Reduce::kSumSquares : Reduce::kSumAbs;
      if (Finding f = FirstReduce(plan, spec, config, acc.get())) return f;
      if (job.dtype == DType::kFloat64) {
        recomputed = NonFiniteSums(acc.get(), n);
        if (recomputed) {
          // max |y| of those columns, then their sums divided by it.
          acc2 = ZeroedDoubles(n);
          if (!acc2) return OutOfMemoryFinding("the column maxima");
          ColumnReduceSpec max_spec;
          max_spec.op = Reduce::kMaxAbs;
          max_spec.only = recomputed.get();
          if (!ReduceColumns(job, max_spec, config, acc2.get())) return OutOfMemoryFinding("the column maxima");
          for (std::int64_t col = 0; col < n; ++col) {
            if (TestBit(recomputed.get(), col)) acc[col] = 0.0;
          }
          ColumnReduceSpec sum_spec = spec;
          sum_spec.only = recomputed.get();
          sum_spec.divide_by_m = true;
          sum_spec.m = acc2.get();
          if (!ReduceColumns(job, sum_spec, config, acc.get())) return OutOfMemoryFinding("the column sums");
        }
      }
      break;
    case NormKind::kLInf:
      spec.op = Reduce::kMaxAbs;
      if (Finding f = FirstReduce(plan, spec, config, acc.get())) return f;
      break;
    case NormKind::kLp: {
      acc2 = ZeroedDoubles(n);
      if (!acc2) return OutOfMemoryFinding("the column sums");
      spec.op = Reduce::kMaxAbs;
      if (Finding f = FirstReduce(plan, spec, config, acc.get())) return f;
      ColumnReduceSpec pow_spec;
      pow_spec.op = Reduce::kSumPowScaled;
      pow_spec.m = acc.get();
      if (!ReduceColumns(job, pow_spec, config, acc2.get())) return OutOfMemoryFinding("the column sums");
      break;
    }
  }
  std::int64_t first_nonfinite = -1;
  const ScaleCode* codes = PlanVectors(acc.get(), acc2.get(), recomputed.get(), n, job.subset, job.rule,
                                       parts, stats, &first_nonfinite);
  if (c.nonfinite_error && first_nonfinite >= 0) return NonFiniteVectorFinding(c.axis, first_nonfinite);
  if (stats->vectors_scaled == 0) return {};
  ScaleScattered(*plan, codes, parts);
  return {};
}

// Every stored entry scaled by the code of its minor index (its vector).
// Cannot fail, as writing may already have begun: when the float32 copy of
// the codes cannot be allocated, the float64 codes are used.
void ScaleScattered(const SparsePlan& plan, const ScaleCode* codes, int parts) {
  const SparseJob& job = plan.job;
  const std::int64_t n = job.minor_dim;
  // Each entry is scaled on its own: dynamic chunks, a multiple of 64 entries.
  const std::int64_t grain = std::max<std::int64_t>(64, (job.nnz / plan.ChunkCount(parts) + 63) / 64 * 64);
  // Narrow dtypes: the codes as float32, so that the gathers hit a table half
  // the size. Unless a column needs the float64 path, or the table is so
  // large that making the copy would cost more than it saves.
  bool use_float = job.dtype != DType::kFloat64 && n <= (std::int64_t{1} << 24);
  for (std::int64_t col = 0; col < n && use_float; ++col) use_float = !codes[col].NeedsScalarPath(job.dtype);
  std::unique_ptr<float[]> f;
  if (use_float) f.reset(new (std::nothrow) float[static_cast<std::size_t>(std::max<std::int64_t>(n, 1))]);
  if (f) {
    for (std::int64_t col = 0; col < n; ++col) f[col] = static_cast<float>(codes[col].raw());
    ParallelForDynamic(parts, job.nnz, grain, [&](std::int64_t b, std::int64_t e, int) {
      ScaleByMinorFloat(job, f.get(), b, e);
    });
    return;
  }
  ParallelForDynamic(parts, job.nnz, grain, [&](std::int64_t b, std::int64_t e, int) {
    ScaleByMinor(job, codes, b, e);
  });
}

}  // namespace

Finding NormalizeSparseMatrix(const SparseMatrixProblem& problem, const MatrixPlan& mplan,
                              MatrixStats* stats_out) {
  const SparseMatrix& m = problem.matrix;
  const MatrixCommon& c = problem.common;
  const int threads = mplan.threads;
  const int parts = std::max(threads, 1);

  SparsePlan plan;
  plan.chunks_per_thread = mplan.tuning.chunks_per_thread;
  plan.format = m.format;
  if (m.format != SparseFormat::kCOO) {
    if (Finding f = CheckIndexPointers(m, problem.segments, threads)) return f;
    DescribeSegments(problem, &plan.job);
    plan.segment_wise = c.path == MatrixPath::kContiguous;
  }
  RowBitmap bitmap;
  MatrixStats stats;
  if (Finding f = MarkSubset(c, threads, &bitmap, &stats.vectors)) return f;
  if (m.format == SparseFormat::kCOO) {
    if (Finding f = PrepareCoo(m, c.axis, threads, &plan)) return f;
  } else {
    plan.fold_validation = mplan.fold_validation;
    if (plan.fold_validation) {
      const std::int64_t words = (plan.job.segments + 63) / 64;
      plan.unsorted.reset(new (std::nothrow) std::uint64_t[static_cast<std::size_t>(std::max<std::int64_t>(words, 1))]());
      if (!plan.unsorted) return OutOfMemoryFinding("the unsorted-segment bitmap");
      plan.job.unsorted = plan.unsorted.get();
    } else if (Finding f = ValidateMinor(&plan, threads)) {
      return f;
    }
  }
  stats.nnz_before = m.nnz;

  const PruneArrays arrays = PruneArraysOf(m, plan.job);
  PruneWorkspace prune_workspace;
  if (c.prune_below > 0.0) PreparePrune(arrays, threads, &prune_workspace);

  SparseJob& job = plan.job;
  job.values = m.values;
  job.dtype = m.dtype;
  job.rule = c.rule;
  job.subset = c.has_subset ? bitmap.words() : nullptr;
  if (plan.segment_wise) {
    if (Finding f = NormalizeSegmentWise(c, &plan, parts, &stats)) return f;
  } else {
    ColumnSumConfig config;
    config.parts = parts;
    config.mode = mplan.column_sums;
    config.epoch_entries = mplan.tuning.epoch_entries;
    if (Finding f = NormalizeScattered(c, &plan, config, &stats)) return f;
  }
  stats.nnz_after = m.nnz;
  if (c.prune_below > 0.0) {
    const std::int64_t kept = PruneSparse(arrays, c.prune_below, &prune_workspace);
    stats.pruned = m.nnz - kept;
    stats.nnz_after = kept;
  }
  *stats_out = stats;
  return {};
}

// ---------------------------------------------------------------------------
// The split-phase primitives (sparsenorm/sharded.h) on a slice whose vectors
// are its minor indices: the structure checked as above, then the column
// reductions, or the scaling and pruning, of the whole call.

namespace {

Finding PrepareScatteredSlice(const SparseMatrixProblem& problem, const MatrixPlan& mplan,
                              SparsePlan* plan) {
  const SparseMatrix& m = problem.matrix;
  plan->chunks_per_thread = mplan.tuning.chunks_per_thread;
  plan->format = m.format;
  if (Finding f = CheckIndexPointers(m, problem.segments, mplan.threads)) return f;
  DescribeSegments(problem, &plan->job);
  if (Finding f = ValidateMinor(plan, mplan.threads)) return f;
  plan->job.values = m.values;
  plan->job.dtype = m.dtype;
  plan->job.rule = problem.common.rule;
  return {};
}

ColumnSumConfig ConfigOf(const MatrixPlan& mplan) {
  ColumnSumConfig config;
  config.parts = std::max(mplan.threads, 1);
  config.mode = mplan.column_sums;
  config.epoch_entries = mplan.tuning.epoch_entries;
  return config;
}

}  // namespace

Finding ScatteredVectorParts(const SparseMatrixProblem& problem, const MatrixPlan& mplan,
                             double* scale, double* sum) {
  SparsePlan plan;
  if (Finding f = PrepareScatteredSlice(problem, mplan, &plan)) return f;
  const ColumnSumConfig config = ConfigOf(mplan);
  ColumnReduceSpec max_spec;
  max_spec.op = Reduce::kMaxAbs;
  if (!ReduceColumns(plan.job, max_spec, config, scale)) return OutOfMemoryFinding("the column maxima");
  const NormKind kind = plan.job.rule.kind;
  if (kind == NormKind::kLInf) return {};
  // The terms divided by the maximum, as common/norms.h's ScaledTerm forms
  // them (columns whose maximum is 0 or not finite are skipped).
  ColumnReduceSpec spec;
  spec.m = scale;
  spec.divide_by_m = kind != NormKind::kLp;
  spec.op = kind == NormKind::kL2 ? Reduce::kSumSquares
            : kind == NormKind::kL1 ? Reduce::kSumAbs
                                    : Reduce::kSumPowScaled;
  if (!ReduceColumns(plan.job, spec, config, sum)) return OutOfMemoryFinding("the column sums");
  return {};
}

Finding ApplyScatteredCodes(const SparseMatrixProblem& problem, const MatrixPlan& mplan,
                            const ScaleCode* codes, bool any_scaled, MatrixStats* stats) {
  SparsePlan plan;
  if (Finding f = PrepareScatteredSlice(problem, mplan, &plan)) return f;
  const SparseMatrix& m = problem.matrix;
  const double tau = problem.common.prune_below;
  const PruneArrays arrays = PruneArraysOf(m, plan.job);
  PruneWorkspace prune_workspace;
  if (tau > 0.0) PreparePrune(arrays, mplan.threads, &prune_workspace);
  if (any_scaled) ScaleScattered(plan, codes, std::max(mplan.threads, 1));
  stats->nnz_before = m.nnz;
  stats->nnz_after = m.nnz;
  stats->pruned = 0;
  if (tau > 0.0) {
    stats->nnz_after = PruneSparse(arrays, tau, &prune_workspace);
    stats->pruned = m.nnz - stats->nnz_after;
  }
  return {};
}

}  // namespace sparsenorm::cpu
