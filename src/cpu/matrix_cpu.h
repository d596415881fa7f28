// Inside the CPU backend of the matrix normalization
// (include/sparsenorm/matrix.h). A call is run by dense_matrix.cc or
// sparse_matrix.cc, which validate what only they read (the subset's
// values, the sparse structure), allocate every scratch buffer, and only
// then call anything here that writes the matrix. Behind this header:
//   - matrix_common.cc: the subset bitmap, and the scale codes of vectors
//     whose norms were summed into per-vector tables;
//   - matrix_kernels.cc: per-SIMD-target kernels (Highway dynamic dispatch)
//     for the work that streams contiguous memory: dense rows and columns,
//     contiguous sparse segments, index validation and the scattered scaling
//     of sparse entries;
//   - sparse_columns.cc: scalar code compiled once, for the work that is bound
//     by random access or is rare: the deterministic, memory-bounded column
//     sums of a sparse matrix, segments with repeated or unsorted minor
//     indices, COO grouping and the in-place compaction of pruned entries.
#ifndef SPARSENORM_CPU_MATRIX_CPU_H_
#define SPARSENORM_CPU_MATRIX_CPU_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "common/decision.h"
#include "core/matrix_backend.h"

namespace sparsenorm::cpu {

// ---------------------------------------------------------------------------
// One vector's decision in 8 bytes, so that a per-vector table of them costs
// what a table of doubles does and the SIMD kernels can gather it as one:
//   NaN     leave the vector as it is (zero norm, within the max norm,
//           non-finite, or not in the subset);
//   d >= 0  multiply by d (narrow dtypes: rounded to float32 when that is a
//           normal float32, exactly as ScaleBy does);
//   d < 0   Decide's shift path: target / (norm + eps) overflows float64
//           and -d is the denominator norm + eps.
class ScaleCode {
 public:
  ScaleCode() = default;  // trivial: tables of codes are filled in place
  static ScaleCode Leave() { return ScaleCode(std::numeric_limits<double>::quiet_NaN()); }
  // A plain factor (not the shift path).
  static ScaleCode Factor(double d) { return ScaleCode(d); }
  static ScaleCode Of(const Scale& scale, double norm, double eps) {
    if (scale.action != Action::kScale) return Leave();
    if (scale.shift == 0) return Factor(scale.d);
    return ScaleCode(-(norm + eps));
  }

  bool leaves() const { return std::isnan(code_); }
  // The scale a code that does not leave stands for.
  Scale Decode(double target) const {
    if (code_ >= 0.0) return ScaleBy(code_);
    const double denominator = -code_;
    const int shift = -std::ilogb(denominator);
    return ScaleBy(target / std::ldexp(denominator, shift), shift);
  }
  // True when the SIMD kernels cannot apply this code with a float32
  // multiply (narrow dtypes) or a float64 multiply (float64): the scalar
  // path takes it.
  bool NeedsScalarPath(DType dtype) const {
    if (std::isnan(code_)) return false;
    if (code_ < 0.0) return true;
    return dtype != DType::kFloat64 && !numerics::ScaleFitsFloat(code_);
  }
  // The code as the kernels gather it: NaN, or the factor.
  double raw() const { return code_; }
  // A table of codes as the doubles the gathers read.
  static const double* Raw(const ScaleCode* codes) { return reinterpret_cast<const double*>(codes); }

 private:
  explicit ScaleCode(double code) : code_(code) {}
  double code_;
};
static_assert(sizeof(ScaleCode) == sizeof(double) && std::is_standard_layout_v<ScaleCode>,
              "a table of codes is gathered as doubles");

struct MatrixCounts {
  std::int64_t scaled = 0;
  std::int64_t zero = 0;
  std::int64_t nonfinite = 0;
  std::int64_t pruned = 0;
};

// Counts one vector's decision.
inline void Count(const Scale& scale, double norm, MatrixCounts* counts) {
  switch (OutcomeOf(scale, norm)) {
    case Outcome::kScaled:
      ++counts->scaled;
      break;
    case Outcome::kNonFinite:
      ++counts->nonfinite;
      break;
    case Outcome::kZero:
      ++counts->zero;
      break;
    case Outcome::kLeft:
      break;
  }
}

inline bool TestBit(const std::uint64_t* bits, std::int64_t i) {
  return (bits[i >> 6] >> (i & 63)) & 1u;
}

// ---------------------------------------------------------------------------
// Shared by the dense and sparse drivers (matrix_common.cc).

// calloc'd float64 tables: pages of a large table that are never touched
// cost no memory.
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using DoubleArray = std::unique_ptr<double[], FreeDeleter>;
DoubleArray ZeroedDoubles(std::int64_t n);

// Marks the subset's vectors in `bitmap`, checking every value (a finding
// for the first one out of range), and counts the distinct ones; without a
// subset, every vector counts and the bitmap stays empty.
class RowBitmap;
Finding MarkSubset(const MatrixCommon& common, int threads, RowBitmap* bitmap,
                   std::int64_t* distinct);

// The first (lowest) non-negative value of per-part results, or -1.
std::int64_t FirstFound(const std::vector<std::int64_t>& found);

void AddCounts(const std::vector<MatrixCounts>& parts, MatrixStats* stats);

// Per-vector tables of sums (the scattered axis of a sparse matrix, the
// columns of a dense one) turned into decisions, in place: on return the
// `n` doubles of `acc` hold ScaleCodes. acc holds, per vector: kL2 the sum
// of squares, kL1 the sum of |x|, kLInf max |x| (NaN ordered above inf),
// kLp max |x|; acc2 (kLp, and the robust recomputation of float64 vectors)
// the sum of (|x| / max)^p; `recomputed` marks float64 vectors whose plain
// sum overflowed or underflowed. Counts the considered vectors and finds
// the first non-finite one among them (-1 when none).
ScaleCode* PlanVectors(double* acc, const double* acc2, const std::uint64_t* recomputed,
                       std::int64_t n, const std::uint64_t* subset, const NormRule& rule,
                       int threads, MatrixStats* stats, std::int64_t* first_nonfinite);

// Bitmap of the vectors whose float64 sums are not finite (overflowed,
// flagged as underflowing, or holding NaN/inf); null when there is none.
std::unique_ptr<std::uint64_t[]> NonFiniteSums(const double* acc, std::int64_t n);

// ---------------------------------------------------------------------------
// Dense row-major matrices.

struct DenseJob {
  unsigned char* data = nullptr;  // row r starts at data + r * stride_bytes
  std::int64_t stride_bytes = 0;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  DType dtype = DType::kFloat32;
  NormRule rule{};
  const std::uint64_t* subset = nullptr;  // bitmap over the vectors; null: all
  double prune_below = 0.0;               // 0: no pruning
};

// Axis 1: rows [row_begin, row_end) normalized (those in the subset) and
// pruned (all of them).
void DenseRows(const DenseJob& job, std::int64_t row_begin, std::int64_t row_end,
               MatrixCounts* counts);

// Axis 1: the first row of [begin, end) in the subset that holds NaN or
// infinity, or -1.
std::int64_t DenseFirstNonFiniteRow(const DenseJob& job, std::int64_t begin, std::int64_t end);

// What a column reduction accumulates per element x (into float64):
enum class Reduce : std::uint8_t {
  kSumSquares,    // x^2; float64 data: +inf for a nonzero x with x^2 < 2^-1000,
                  // which marks the column for the robust recomputation
  kSumAbs,        // |x|
  kMaxAbs,        // max |x|, NaN ordered above +inf (compared as bit patterns)
  kSumPowScaled,  // (|x| / m[c])^p with m the column's max |x|; p from the job
};

// Axis 0: acc[c - c0] (op)= f(W[r, c]) for r = r0, r0 + 1, ..., r1 - 1 in
// that order and c in [c0, c1). `m` is used by kSumPowScaled only.
void DenseReduceColumns(const DenseJob& job, Reduce op, const double* m, std::int64_t r0,
                        std::int64_t r1, std::int64_t c0, std::int64_t c1, double* acc);

// Per-column scales for the dense scaling kernel.
struct ColumnScales {
  const ScaleCode* code = nullptr;   // per column
  const float* f = nullptr;          // narrow dtypes: code as float32; NaN to leave or special
  const std::int64_t* special = nullptr;  // columns whose code NeedsScalarPath
  std::int64_t special_count = 0;
};

// Axis 0: rows [r0, r1) get W[r, c] = round(W[r, c] * scale[c]), then pruning.
void DenseScaleColumns(const DenseJob& job, const ColumnScales& scales, std::int64_t r0,
                       std::int64_t r1, MatrixCounts* counts);

// ---------------------------------------------------------------------------
// Sparse matrices, seen as segments (CSR rows, CSC columns, or the groups of a
// COO matrix) of entries that carry a minor index.

struct SparseJob {
  std::int64_t segments = 0;
  std::int64_t minor_dim = 0;
  std::int64_t nnz = 0;
  // Segment s holds the entries at positions [offsets[s], offsets[s + 1]) of
  // the order, which is `perm` when set and the storage order otherwise.
  const void* offsets = nullptr;
  IndexType offsets_type = IndexType::kInt64;
  const void* minor = nullptr;  // minor index of each stored entry
  IndexType minor_type = IndexType::kInt64;
  const std::int64_t* perm = nullptr;
  void* values = nullptr;
  DType dtype = DType::kFloat32;
  // Segments that take the grouped path: those holding a repeated minor
  // index, and those longer than 256 entries whose indices are not strictly
  // increasing (not checked for repeats); null when none is. A shorter
  // segment that is merely unsorted is not set: its order does not matter.
  const std::uint64_t* unsorted = nullptr;
  // The longest segment that takes the grouped path (unsorted, or any
  // segment when `perm` is set): scratch buffers are reserved for it.
  std::int64_t max_grouped_len = 0;
  NormRule rule{};
  const std::uint64_t* subset = nullptr;  // bitmap over the normalized vectors
};

inline std::int64_t OffsetAt(const SparseJob& job, std::int64_t s) {
  return job.offsets_type == IndexType::kInt32 ? static_cast<const std::int32_t*>(job.offsets)[s]
                                               : static_cast<const std::int64_t*>(job.offsets)[s];
}

// Validates minor indices of segments [s0, s1) (storage order, no perm):
// returns the first position whose index is outside [0, limit), or -1. Sets
// in `unsorted` the bit of every segment whose indices are not strictly
// increasing and that holds a repeated index or is longer than 256 entries
// (atomically: neighbouring slices may share a word), and raises
// *max_unsorted_len to the length of the longest such segment.
std::int64_t ValidateSegments(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                              std::int64_t limit, std::uint64_t* unsorted,
                              std::int64_t* max_unsorted_len);

// Flat check of a COO coordinate array over positions [begin, end): returns
// the first position outside [0, limit) or -1, and counts the positions k in
// (begin, end) with a[k] < a[k - 1] into *decreases.
std::int64_t CheckCoordinates(const void* a, IndexType type, std::int64_t begin,
                              std::int64_t end, std::int64_t limit, std::int64_t* decreases);

// Segment-wise normalization (the vectors are the segments): segments
// [s0, s1) in the subset get their norm computed and their stored values
// scaled. `scratch` must have been reserved for the longest segment that
// takes the grouped path (see GroupedScratch).
struct GroupedScratch;
void NormalizeSegments(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                       GroupedScratch* scratch, MatrixCounts* counts);

// The first segment of [s0, s1) in the subset whose vector is not finite, or -1.
std::int64_t FirstNonFiniteSegment(const SparseJob& job, std::int64_t s0, std::int64_t s1,
                                   GroupedScratch* scratch);

// Scattered scaling (the vectors are the minor indices): the entries at
// storage positions [k0, k1) get values[k] = round(values[k] * scale of
// code[minor[k]]).
void ScaleByMinor(const SparseJob& job, const ScaleCode* code, std::int64_t k0, std::int64_t k1);

// The same for narrow dtypes when no code NeedsScalarPath: `f` holds the
// codes as float32 (NaN: leave), which halves the table the gathers hit.
// minor_dim must be below 2^31.
void ScaleByMinorFloat(const SparseJob& job, const float* f, std::int64_t k0, std::int64_t k1);

// ---------------------------------------------------------------------------
// The split-phase primitives of sparsenorm/sharded.h on a CSR/CSC slice whose
// vectors are its minor indices (problem.common.path == kScattered), in
// sparse_matrix.cc. Both check the structure first, as NormalizeSparseMatrix
// does, and return its findings.

// Per vector c in [0, minor_dim): scale[c] = max |y| over its coordinates
// (repeats summed; NaN ordered above inf), and, except for the max norm,
// sum[c] = the float64 sum of ScaledTerm(y, scale[c]) (left as it was where
// scale[c] is 0 or not finite). Both arrays zeroed by the caller; the
// result depends on the input and plan.threads only.
Finding ScatteredVectorParts(const SparseMatrixProblem& problem, const MatrixPlan& plan,
                             double* scale, double* sum);

// Every stored entry scaled by codes[its minor index] (when any_scaled), then
// pruning with problem.common.prune_below: stats' nnz_before, nnz_after and
// pruned. Nothing is written when the structure is rejected.
Finding ApplyScatteredCodes(const SparseMatrixProblem& problem, const MatrixPlan& plan,
                            const ScaleCode* codes, bool any_scaled, MatrixStats* stats);

// ---------------------------------------------------------------------------
// Scalar parts (sparse_columns.cc).

// Per-thread scratch for segments that hold repeated or unsorted minor
// indices: their (minor, position) pairs sorted, and the summed values.
struct GroupedScratch {
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
  std::vector<double> sums;
  // Allocates for segments of up to n entries; false when out of memory.
  bool Reserve(std::int64_t n) noexcept;
};

// The norm of segment s where repeated coordinates count as their sum; takes
// `perm` and unsorted segments into account.
VectorNorm GroupedSegmentNorm(const SparseJob& job, std::int64_t s, GroupedScratch* scratch);

// Scales the stored entries of segment s (through `perm`), one by one.
void ScaleSegmentScalar(const SparseJob& job, std::int64_t s, const Scale& scale);

// The norm of a vector given as float64 values (the grouped sums): scaled by
// max |y| before summing, so it neither overflows nor underflows.
VectorNorm RobustNorm(const double* y, std::int64_t n, NormKind kind, double p);

// Column sums of the scattered axis: out[c] for c in [0, minor_dim) gets
// the reduction `op` of f(y) over the distinct coordinates y of column c
// (repeated coordinates summed first). Only columns whose bit is set in
// `only` are reduced when it is not null (others keep their value). `m`: the
// column maxima for kSumPowScaled and kSumSquares/kSumAbs divided by m.
//
// Threads: `parts` logical slices of the segments, balanced by entries; the
// result depends only on the input and `parts`. Memory beyond `out`: see the
// comment in sparse_columns.cc. Returns false when scratch memory cannot be
// allocated (nothing written but `out`).
struct ColumnReduceSpec {
  Reduce op = Reduce::kSumSquares;
  bool divide_by_m = false;              // f(y / m[c]) for kSumSquares and kSumAbs
  const double* m = nullptr;
  const std::uint64_t* only = nullptr;   // restrict to these columns
};
// How the partials are kept (the plan's choice) and the epoch length of the
// striped mode.
struct ColumnSumConfig {
  int parts = 1;
  ColumnSumMode mode = ColumnSumMode::kPrivateArrays;
  std::int64_t epoch_entries = 32768;
};
bool ReduceColumns(const SparseJob& job, const ColumnReduceSpec& spec, const ColumnSumConfig& config,
                   double* out);

// The first pass of the column sums with the validation of the minor indices
// folded in (private-array mode only; see ColumnSumModeFor): each part
// validates a chunk of its segments (ValidateSegments: range, and the
// unsorted bits in job.unsorted, which must point to a zeroed bitmap) just
// before it accumulates that chunk, whose indices are then still in cache,
// instead of a separate pass over all indices. Accumulating writes only
// `out`, so the matrix is still untouched when an index turns out bad.
// Returns false when out of memory; otherwise *bad is the first position
// holding an index outside [0, minor_dim) (or -1) and *longest_unsorted the
// length of the longest unsorted segment.
bool ReduceColumnsValidating(const SparseJob& job, const ColumnReduceSpec& spec, int parts,
                             double* out, std::int64_t* bad, std::int64_t* longest_unsorted);

// Slices [0, segments) into `parts` contiguous ranges of about equal
// entries + segments; boundaries[0] = 0, boundaries[parts] = segments.
std::vector<std::int64_t> BalancedSlices(const SparseJob& job, int parts);

// Pruning: removes the stored entries with |value| < tau (NaN is kept),
// compacting values and the index arrays in place. For CSR/CSC (`indptr`
// not null) the segments are given by `job` and indptr is rewritten; for COO
// the arrays `row` and `col` are compacted. Returns the new number of
// entries.
struct PruneArrays {
  void* values = nullptr;
  DType dtype = DType::kFloat32;
  IndexType index_type = IndexType::kInt32;
  std::int64_t nnz = 0;
  void* indptr = nullptr;  // CSR/CSC: segments + 1 entries
  std::int64_t segments = 0;
  void* indices = nullptr;  // CSR/CSC
  void* row = nullptr;      // COO
  void* col = nullptr;      // COO
};
// Slice boundaries and counters, prepared before the matrix is written so
// that pruning allocates nothing once writing has begun.
struct PruneWorkspace {
  int parts = 1;
  std::vector<std::int64_t> bound;   // slices: segments (CSR/CSC) or positions (COO)
  std::vector<std::int64_t> kstart;  // storage position where each slice starts
  std::vector<std::int64_t> kept, base;
};
void PreparePrune(const PruneArrays& arrays, int threads, PruneWorkspace* workspace);
std::int64_t PruneSparse(const PruneArrays& arrays, double tau, PruneWorkspace* workspace);

// COO grouping. Offsets (segments + 1 entries) of an array of major indices
// that is non-decreasing: offsets[s] = the first position whose index is >= s.
void OffsetsOfSorted(const void* major, IndexType type, std::int64_t nnz, std::int64_t segments,
                     std::int64_t* offsets, int threads);
// A stable counting sort of the positions by major index: offsets as above
// and perm[offsets[s] ..] the positions of segment s in storage order.
void GroupByMajor(const void* major, IndexType type, std::int64_t nnz, std::int64_t segments,
                  std::int64_t* offsets, std::int64_t* perm);

}  // namespace sparsenorm::cpu

#endif  // SPARSENORM_CPU_MATRIX_CPU_H_
