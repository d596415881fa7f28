// The contract between the front ends (src/core/) and the backends
// (src/cpu/, src/reference/, src/cuda/): what every operator shares. Each
// operator adds its own part in core/<operator>_backend.h: the problem a
// front end hands a backend, the plan of a CPU run, and one function per
// backend.
//
// A problem is a call whose arguments the front end has validated as far as
// the host can see them (options, shapes, strides, pointers, byte sizes)
// and turned into plain facts. A backend runs it and returns a Finding:
// kNone, or what it found wrong in the data that only it reads (index
// values, sparse structure, NaN/infinity under the error policy), or that it
// could not get memory. core/messages.cc turns a finding into the Status the
// caller sees, one sentence per kind whatever the backend, so the CPU, the
// reference and the CUDA backend report a bad input in the same words.
//
// The backends, each in its own folder, including nothing of another:
//
//   cpu::        src/cpu/        multi-threaded SIMD kernels (Highway, OpenMP)
//   reference::  src/reference/  the scalar oracle: serial, long double sums,
//                                no SIMD; what every fast path is tested against
//   cuda::dev::  src/cuda/       the CUDA kernels (built with SPARSENORM_CUDA)
//
// Contract for every backend function: the problem is validated as above;
// the function checks what only it reads before it writes any caller data,
// and on a finding writes none. Statistics are written only when the
// finding is kNone. These headers and src/common/ are all a backend
// includes of the library.
#ifndef SPARSENORM_CORE_BACKEND_H_
#define SPARSENORM_CORE_BACKEND_H_

#include <cstddef>
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
  // Optimizer step.
  kNonFiniteGradient,  // gradient row `position` (table row `value`) holds NaN/inf, kError policy
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

// What a backend found in a call on many tables: the finding of the first
// table (in the list's order) that has one.
struct BatchFinding {
  std::int64_t table = -1;
  Finding finding;
  explicit operator bool() const { return static_cast<bool>(finding); }
};

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
  // Optimizer step: each index's rows count as at least this many bytes of
  // work (StepWorkBytes, core/plan.h), about what one core streams in the
  // ~100 ns that a table row from memory costs it: a step's table and state
  // rows are usually cold (tables far larger than the caches), so even a
  // small batch of short rows is worth a second thread. Measured on the
  // cold 256-index steps of bench/optim_bench.cc (rows of 64 and 256
  // bytes): 0.64 to 0.79 of the one-thread time. The row operator does not
  // count this way: its rows have usually just been written by a step.
  std::int64_t min_step_row_bytes = 1024;
  // Optimizer step: index lists shorter than this are grouped by row
  // through a hash table, rows in the order the list first names them;
  // longer ones by a sort, rows ascending (cpu/group_rows.h).
  std::int64_t hash_groups_below = 16384;
  // Row operator: index validation and marking count as this many bytes of
  // work per index.
  std::int64_t bytes_per_index = 64;
  // Row operator: the row bitmap (one bit per table row) is used while it
  // is at most this many bytes per index plus the slack; beyond, a hash set
  // of the indices (core/plan.cc). A bitmap the CPU backend's pool keeps
  // (cpu::kPooledBitmapBytes) costs a call only the scan of its summary;
  // a larger one its whole size to allocate and clear, hence the smaller
  // bound for those.
  std::int64_t bitmap_bytes_per_index = 64;
  std::int64_t large_bitmap_bytes_per_index = 16;
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
// What every operator's backends share.

namespace cpu {

// The thread count a call with num_threads == 0 may use: SPARSENORM_NUM_THREADS
// or OMP_NUM_THREADS when set, else every processor this process may run on.
int AvailableThreads();

// The SIMD instruction set the kernels dispatch to on this CPU, e.g. "AVX2".
const char* SimdTarget();

}  // namespace cpu

namespace cuda::dev {

// Where `p` points: whether the current device can address it (device,
// managed, or mapped host memory) and, for device memory, which device owns
// it. A finding (kDeviceError) when the runtime cannot say.
struct PointerKind {
  bool device_addressable = false;
  int device = -1;          // the device that owns it (the current one for managed or mapped memory)
  int current_device = -1;  // the caller's current device
};
Finding InspectPointer(const void* p, PointerKind* kind);

// Stream-ordered scratch memory from the device's default pool; `what` is
// the operator, for the message.
Finding AllocateScratch(std::size_t bytes, void* stream, const char* what, void** scratch);
void FreeScratch(void* scratch, void* stream);

int DeviceCount();

}  // namespace cuda::dev

}  // namespace sparsenorm

#endif  // SPARSENORM_CORE_BACKEND_H_
