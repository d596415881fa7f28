// What the front end hands a backend, and what a backend hands back.
//
// A problem is a call whose arguments the front end has validated as far
// as the host can see them (options, shapes, strides, pointers, byte
// sizes) and turned into plain facts. A plan says how to run it on the CPU
// (thread counts, paths, tuning). A backend runs the problem and returns a
// Finding: kNone, or what it found wrong in the data that only it reads
// (index values, sparse structure, NaN/infinity under the error policy),
// or that it could not get memory. core/messages.cc turns a finding into
// the Status the caller sees, one sentence per kind whatever the backend,
// so the CPU, the reference and the CUDA backend report a bad input in the
// same words.
//
// Data only: this header and core/backend.h are all of src/core/ that a
// backend includes.
#ifndef SPARSENORM_CORE_PROBLEM_H_
#define SPARSENORM_CORE_PROBLEM_H_

#include <cstdint>

#include "common/decision.h"
#include "common/matrix_path.h"
#include "sparsenorm/dtype.h"
#include "sparsenorm/matrix.h"

namespace sparsenorm {

// ---------------------------------------------------------------------------
// Findings.

enum class FindingKind : std::uint8_t {
  kNone = 0,
  kOutOfMemory,      // `what` could not be allocated
  kDeviceError,      // a CUDA runtime call failed while doing `what`
  // Row operator.
  kRowIndex,         // indices[position] = value is outside [0, limit)
  kNonFiniteRow,     // row `value` (indices[position]) holds NaN/inf, kError policy
  // Matrix normalization.
  kSubsetIndex,      // options.subset[position] = value is outside [0, limit)
  kNonFiniteVector,  // vector `value` (a column on axis 0) holds NaN/inf, kError policy
  kIndptrStart,      // matrix.indptr[0] = value is not 0
  kIndptrDecrease,   // matrix.indptr[position] = value < matrix.indptr[position - 1] = extra
  kIndptrEnd,        // matrix.indptr[position] = value, but matrix.nnz = extra
  kMinorIndex,       // matrix.indices[position] = value (in segment `extra`) is outside [0, limit)
  kCooRow,           // matrix.row[position] = value is outside [0, limit)
  kCooCol,           // matrix.col[position] = value is outside [0, limit)
  kUnsortedIndices,  // matrix.indices[position] = value does not exceed [position - 1] = extra
  kUnsortedCoo,      // entry position (value, extra) is not after entry position - 1 (aux)
};

struct Finding {
  FindingKind kind = FindingKind::kNone;
  int axis = 0;                              // matrix: the normalized axis
  SparseFormat format = SparseFormat::kCSR;  // matrix: the format
  std::int64_t position = 0;
  std::int64_t value = 0;
  std::int64_t extra = 0;
  std::int64_t limit = 0;
  std::int64_t aux[2] = {0, 0};
  const char* what = nullptr;  // kOutOfMemory, kDeviceError: what was being done
  // kDeviceError: the runtime's name and description of the error, and
  // whether it was an allocation failure (reported as kOutOfMemory).
  const char* device_name = nullptr;
  const char* device_text = nullptr;
  bool device_out_of_memory = false;

  explicit operator bool() const { return kind != FindingKind::kNone; }
};

// The findings as backends make them, one constructor per kind.

inline Finding MakeFinding(FindingKind kind, std::int64_t position, std::int64_t value,
                           std::int64_t extra = 0, std::int64_t limit = 0) {
  Finding f;
  f.kind = kind;
  f.position = position;
  f.value = value;
  f.extra = extra;
  f.limit = limit;
  return f;
}

inline Finding OutOfMemoryFinding(const char* what) {
  Finding f;
  f.kind = FindingKind::kOutOfMemory;
  f.what = what;
  return f;
}

inline Finding RowIndexFinding(std::int64_t position, std::int64_t value, std::int64_t rows) {
  return MakeFinding(FindingKind::kRowIndex, position, value, 0, rows);
}

inline Finding NonFiniteRowFinding(std::int64_t position, std::int64_t row) {
  return MakeFinding(FindingKind::kNonFiniteRow, position, row);
}

inline Finding SubsetIndexFinding(int axis, std::int64_t position, std::int64_t value,
                                  std::int64_t vectors) {
  Finding f = MakeFinding(FindingKind::kSubsetIndex, position, value, 0, vectors);
  f.axis = axis;
  return f;
}

inline Finding NonFiniteVectorFinding(int axis, std::int64_t vector) {
  Finding f = MakeFinding(FindingKind::kNonFiniteVector, 0, vector);
  f.axis = axis;
  return f;
}

// Index pointers of a CSR/CSC matrix: indptr[0] != 0; indptr[position] <
// indptr[position - 1] = previous; indptr[segments] != nnz.
inline Finding IndptrFinding(FindingKind kind, SparseFormat format, std::int64_t position,
                             std::int64_t value, std::int64_t extra) {
  Finding f = MakeFinding(kind, position, value, extra);
  f.format = format;
  return f;
}

inline Finding MinorIndexFinding(SparseFormat format, std::int64_t position, std::int64_t value,
                                 std::int64_t segment, std::int64_t limit) {
  Finding f = MakeFinding(FindingKind::kMinorIndex, position, value, segment, limit);
  f.format = format;
  return f;
}

inline Finding CooIndexFinding(bool column, std::int64_t position, std::int64_t value,
                               std::int64_t limit) {
  return MakeFinding(column ? FindingKind::kCooCol : FindingKind::kCooRow, position, value, 0, limit);
}

// ---------------------------------------------------------------------------
// Tuning: the thresholds that decide how a call runs on the CPU. The
// defaults are what the front ends use; tests pass others (to run small
// inputs on several threads, or to force a path) through the functions of
// core/entry.h. docs/PERFORMANCE.md has the measurements behind each value.

// How the column sums of a sparse matrix's scattered axis keep their
// per-thread partials (src/cpu/sparse_columns.cc).
enum class ColumnSumMode : std::uint8_t { kAuto, kPrivateArrays, kStripedBuckets };

struct Tuning {
  // Work below this many bytes per thread runs on fewer threads: starting
  // a thread costs microseconds.
  std::int64_t bytes_per_thread = std::int64_t{1} << 17;
  // Row operator: index validation and marking count as this many bytes of
  // work per index.
  std::int64_t bytes_per_index = 64;
  // Row operator: the row bitmap (one bit per table row) is used while it
  // is at most this many bytes per index plus the slack; beyond, a hash set
  // of the indices (core/plan.cc).
  std::int64_t bitmap_bytes_per_index = 16;
  std::int64_t bitmap_slack_bytes = std::int64_t{1} << 16;
  // Row operator: rows prefetched ahead, about this many bytes of them,
  // clamped to [2, 16] rows.
  std::int64_t prefetch_bytes = 4096;
  // Matrix: column sums of the scattered axis (kAuto: private arrays while
  // one thread's array is at most private_array_bytes); the striped mode's
  // epoch length in entries.
  ColumnSumMode column_sums = ColumnSumMode::kAuto;
  std::int64_t private_array_bytes = std::int64_t{4} << 20;
  std::int64_t epoch_entries = 32768;
  // Matrix: chunks per thread of the passes whose result does not depend on
  // the split, handed out as threads finish.
  int chunks_per_thread = 16;
};

// ---------------------------------------------------------------------------
// The row operator (include/sparsenorm/rows.h).

struct RowsProblem {
  const unsigned char* in = nullptr;  // row r at in + r * in_stride_bytes
  unsigned char* out = nullptr;       // == in for the in-place operator
  std::int64_t in_stride_bytes = 0;
  std::int64_t out_stride_bytes = 0;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_bytes = 0;  // cols * element size
  DType dtype = DType::kFloat32;
  bool in_place = true;

  const void* indices = nullptr;
  IndexType index_type = IndexType::kInt64;
  std::int64_t num_indices = 0;

  NormRule rule{};
  bool nonfinite_error = false;
};

struct RowsPlan {
  int index_threads = 1;    // validating and deduplicating the indices
  int row_threads = 1;      // the rows themselves
  bool use_bitmap = true;   // false: the hash set of the indices
  std::int64_t prefetch_rows = 4;
};

// ---------------------------------------------------------------------------
// The matrix normalization (include/sparsenorm/matrix.h).

struct MatrixCommon {
  NormRule rule{};
  bool nonfinite_error = false;
  int axis = 0;
  std::int64_t vectors = 0;  // columns on axis 0, rows on axis 1
  double prune_below = 0.0;
  bool has_subset = false;
  Indices subset;            // validated as a list; its values are the backend's to check
  MatrixPath path = MatrixPath::kContiguous;
};

struct DenseMatrixProblem {
  unsigned char* data = nullptr;  // row r at data + r * stride_bytes
  std::int64_t stride_bytes = 0;
  std::int64_t extent_bytes = 0;  // from the first to one past the last element
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  DType dtype = DType::kFloat32;
  MatrixCommon common;
};

struct SparseMatrixProblem {
  SparseMatrix matrix;  // shape, arrays and byte sizes validated
  // CSR/CSC: the segments (rows, columns) and the other dimension.
  std::int64_t segments = 0;
  std::int64_t minor_dim = 0;
  MatrixCommon common;
};

struct MatrixPlan {
  int threads = 1;
  Tuning tuning;
  // CSR/CSC scattered axis: the column sums validate the minor indices as
  // they go instead of a separate pass (only with private arrays).
  bool fold_validation = false;
  ColumnSumMode column_sums = ColumnSumMode::kPrivateArrays;
};

}  // namespace sparsenorm

#endif  // SPARSENORM_CORE_PROBLEM_H_
