// The boundary between the CUDA backend's host code (runtime.cc, compiled
// by the host compiler) and its kernels (*.cu, compiled by nvcc as C++17):
// plain structs of raw pointers and sizes, a stream as an opaque pointer,
// launchers that enqueue work and return a cudaError_t as an int, and the
// header at the start of the scratch memory in which the device reports.
// Nothing here includes a CUDA header or a public sparsenorm header beyond
// sparsenorm/dtype.h.
//
// Every launcher assumes its arguments were validated by the front end
// (src/core/). What only the device can check (index values, sparse
// structure, non-finite vectors under the error policy) is checked by the
// first kernels of the sequence, which record the first offending position
// in the header; every later kernel reads the header first and writes
// nothing when it holds an error. results.cc turns the header into a
// Finding, which the front end formats like any backend's.
#ifndef SPARSENORM_CUDA_LAUNCH_H_
#define SPARSENORM_CUDA_LAUNCH_H_

#include <stddef.h>
#include <stdint.h>

#include "common/decision.h"
#include "common/host_device.h"
#include "common/matrix_path.h"
#include "common/optim_rules.h"
#include "sparsenorm/dtype.h"

namespace sparsenorm {
namespace cuda {
namespace detail {

// Scratch memory starts with a header; the rest is 256-byte aligned pieces.
constexpr size_t kHeaderBytes = 512;
constexpr size_t kScratchAlignment = 256;

inline size_t AlignUp(size_t bytes) {
  return (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment;
}

// The first position at which a check failed, found by many threads at once:
// each thread offers the key of its position with one atomicMax on `key`
// (zeroed beforehand), and the smallest position has the largest key.
struct FirstPosition {
  static constexpr unsigned long long kBase = 1ull << 62;
  unsigned long long key;  // kBase - position; 0: none found
  SN_HD static unsigned long long KeyOf(int64_t position) {
    return kBase - static_cast<unsigned long long>(position);
  }
  SN_HD bool found() const { return key != 0; }
  SN_HD int64_t position() const { return static_cast<int64_t>(kBase - key); }
};

// Element i of an int32 or int64 array.
SN_HD long long LoadIndex(const void* p, IndexType type, int64_t i) {
  return type == IndexType::kInt32 ? static_cast<const int32_t*>(p)[i] : static_cast<const long long*>(p)[i];
}

// v outside [0, limit), in one unsigned compare.
SN_HD bool OutOfRange(long long v, int64_t limit) {
  return static_cast<unsigned long long>(v) >= static_cast<unsigned long long>(limit);
}

// ---------------------------------------------------------------------------
// Row operator.

// Device-side result of one row-operator call.
struct RowsHeader {
  FirstPosition bad;        // first index outside [0, rows)
  FirstPosition nonfinite;  // first index whose row holds NaN/inf (kError)
  unsigned int nonfinite_found;  // some indexed row holds NaN/inf (kError)
  unsigned int pad0;
  long long bad_value;        // indices[bad], filled in by the last kernel
  long long nonfinite_value;  // indices[nonfinite]
  unsigned long long distinct;
  unsigned long long scaled;
  unsigned long long nonfinite_rows;
  long long num_indices;
  long long rows;
  unsigned long long magic;  // kRowsMagic once the sequence ran
};
constexpr unsigned long long kRowsMagic = 0x73706e726f777332ull;  // "spnrows2"
static_assert(sizeof(RowsHeader) <= kHeaderBytes, "header too large");

// What the last kernel of a row-operator call writes into the header, error
// or not: the call's sizes and the offending values for the report.
SN_HD void FinishRowsHeader(const void* indices, IndexType type, int64_t n, int64_t rows,
                            RowsHeader* header) {
  header->num_indices = n;
  header->rows = rows;
  header->magic = kRowsMagic;
  if (header->bad.found()) header->bad_value = LoadIndex(indices, type, header->bad.position());
  if (header->nonfinite.found()) {
    header->nonfinite_value = LoadIndex(indices, type, header->nonfinite.position());
  }
}

struct RowsLaunch {
  const void* in = nullptr;  // == out for the in-place operator
  void* out = nullptr;
  int64_t in_stride = 0;  // elements between row starts
  int64_t out_stride = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  DType dtype = DType::kFloat32;
  bool vectorized = false;  // 16-byte aligned rows of a multiple of 16 bytes
  bool in_place = true;

  const void* indices = nullptr;
  IndexType index_type = IndexType::kInt64;
  int64_t num_indices = 0;

  NormRule rule{};
  bool nonfinite_error = false;

  void* scratch = nullptr;  // header, bitmap, owner flags (RowsScratchLayout)
  void* stream = nullptr;
};

struct RowsScratchLayout {
  size_t bitmap_offset;
  size_t bitmap_bytes;  // one bit per table row, in 32-bit words
  size_t owner_offset;  // one byte per index
  size_t total;
};

inline RowsScratchLayout RowsLayout(int64_t rows, int64_t num_indices) {
  RowsScratchLayout l;
  l.bitmap_offset = kHeaderBytes;
  l.bitmap_bytes = static_cast<size_t>((rows + 31) / 32) * 4;
  l.owner_offset = l.bitmap_offset + AlignUp(l.bitmap_bytes);
  l.total = l.owner_offset + AlignUp(static_cast<size_t>(num_indices));
  return l;
}

// Enqueues the whole row operator on the stream; returns a cudaError_t.
int LaunchRows(const RowsLaunch& job);

// ---------------------------------------------------------------------------
// Matrix normalization.

// The checks the device makes, in the order they are reported when several
// fail (the CPU backend's order: structure, subset, indices, values).
enum MatrixCheck : int {
  kCheckIndptrStart = 0,     // indptr[0] != 0
  kCheckIndptrDecrease = 1,  // indptr[i] < indptr[i - 1]
  kCheckIndptrEnd = 2,       // indptr[segments] != nnz
  kCheckSubsetIndex = 3,     // subset[k] outside [0, vectors)
  kCheckMinorIndex = 4,      // CSR/CSC indices[k] outside the matrix; COO row[k]
  kCheckCooCol = 5,          // COO col[k] outside the matrix
  kCheckUnsorted = 6,        // an entry not after its predecessor (canonical order needed)
  kCheckNonFinite = 7,       // a NaN/inf vector under NonFinitePolicy::kError
  kCheckCount = 8,
};

enum class Format : int { kDense = 0, kCSR = 1, kCSC = 2, kCOO = 3 };

// Device-side result of one matrix call.
struct MatrixHeader {
  FirstPosition check[kCheckCount];
  long long value[kCheckCount];  // the offending value, filled in at the end
  long long extra[kCheckCount];  // a second value (previous indptr or index, segment, COO col)
  long long coo_previous[2];     // kCheckUnsorted on COO: the previous entry's row and col
  FirstPosition coo_colmajor;    // COO: first position breaking (col, row) order
  unsigned long long vectors;
  unsigned long long scaled;
  unsigned long long zero;
  unsigned long long nonfinite;
  unsigned long long kept;    // sparse pruning: entries kept
  unsigned long long pruned;  // values zeroed (dense) or entries removed (sparse)
  long long format;
  long long axis;
  long long rows;
  long long cols;
  long long nnz;
  unsigned long long magic;
};
constexpr unsigned long long kMatrixMagic = 0x73706e6d61747832ull;  // "spnmatx2"
static_assert(sizeof(MatrixHeader) <= kHeaderBytes, "header too large");

// Whether check `c` failed. A COO matrix is canonical in either order: an
// entry breaking row-major order is an error only when column-major order
// is broken too.
SN_HD bool CheckFailed(const MatrixHeader& h, int c, bool coo) {
  if (!h.check[c].found()) return false;
  return !(c == kCheckUnsorted && coo && !h.coo_colmajor.found());
}

SN_HD bool AnyCheckFailed(const MatrixHeader& h, bool coo) {
  for (int c = 0; c < kCheckCount; ++c) {
    if (CheckFailed(h, c, coo)) return true;
  }
  return false;
}

struct MatrixReportArgs {
  Format format;
  int axis;
  int64_t rows;
  int64_t cols;
  int64_t nnz;
  int64_t vectors;
  bool has_subset;
  const void* subset;
  IndexType subset_type;
  IndexType index_type;
  const void* indptr;
  const void* indices;
  const void* row;
  const void* col;
};

// What the last kernel of a matrix call writes into the header, error or
// not: the offending values of the failed checks and the call's sizes.
SN_HD void FinishMatrixHeader(const MatrixReportArgs& a, MatrixHeader* header) {
  const bool coo = a.format == Format::kCOO;
  const IndexType t = a.index_type;
  for (int c = 0; c < kCheckCount; ++c) {
    if (!header->check[c].found()) continue;
    const int64_t pos = header->check[c].position();
    switch (c) {
      case kCheckSubsetIndex:
        header->value[c] = LoadIndex(a.subset, a.subset_type, pos);
        break;
      case kCheckIndptrStart:
      case kCheckIndptrEnd:
        header->value[c] = LoadIndex(a.indptr, t, pos);
        break;
      case kCheckIndptrDecrease:
        header->value[c] = LoadIndex(a.indptr, t, pos);
        header->extra[c] = LoadIndex(a.indptr, t, pos - 1);
        break;
      case kCheckMinorIndex:
        header->value[c] = LoadIndex(coo ? a.row : a.indices, t, pos);
        if (!coo) {
          // The segment holding the entry: the last s with indptr[s] <= pos
          // (the pointers are valid when this check ran).
          const int64_t segments = a.format == Format::kCSR ? a.rows : a.cols;
          int64_t lo = 0, hi = segments;
          while (hi - lo > 1) {
            const int64_t mid = lo + (hi - lo) / 2;
            if (LoadIndex(a.indptr, t, mid) <= pos) {
              lo = mid;
            } else {
              hi = mid;
            }
          }
          while (lo + 1 < segments && LoadIndex(a.indptr, t, lo + 1) <= pos) ++lo;
          header->extra[c] = lo;
        }
        break;
      case kCheckCooCol:
        header->value[c] = LoadIndex(a.col, t, pos);
        break;
      case kCheckUnsorted:
        if (coo) {
          header->value[c] = LoadIndex(a.row, t, pos);
          header->extra[c] = LoadIndex(a.col, t, pos);
          header->coo_previous[0] = LoadIndex(a.row, t, pos - 1);
          header->coo_previous[1] = LoadIndex(a.col, t, pos - 1);
        } else {
          header->value[c] = LoadIndex(a.indices, t, pos);
          header->extra[c] = LoadIndex(a.indices, t, pos - 1);
        }
        break;
      default:
        header->value[c] = pos;
        break;
    }
  }
  if (!a.has_subset) header->vectors = static_cast<unsigned long long>(a.vectors);
  header->format = static_cast<long long>(a.format);
  header->axis = a.axis;
  header->rows = a.rows;
  header->cols = a.cols;
  header->nnz = a.nnz;
  header->magic = kMatrixMagic;
}

struct MatrixLaunch {
  Format format = Format::kDense;
  MatrixPath path = MatrixPath::kContiguous;  // kCoo is run as kScattered
  int axis = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;  // dense, elements
  int64_t nnz = 0;         // sparse
  void* values = nullptr;
  DType dtype = DType::kFloat32;
  bool vectorized = false;  // dense rows: 16-byte aligned
  IndexType index_type = IndexType::kInt32;  // sparse arrays
  void* indptr = nullptr;
  void* indices = nullptr;
  void* row = nullptr;
  void* col = nullptr;

  const void* subset = nullptr;
  IndexType subset_type = IndexType::kInt64;
  int64_t subset_size = -1;  // -1: every vector

  NormRule rule{};
  bool nonfinite_error = false;
  double prune_below = 0.0;

  void* scratch = nullptr;
  void* stream = nullptr;
};

// The report's view of a launch (FinishMatrixHeader).
inline MatrixReportArgs ReportArgsOf(const MatrixLaunch& job) {
  MatrixReportArgs a{};
  a.format = job.format;
  a.axis = job.axis;
  a.rows = job.rows;
  a.cols = job.cols;
  a.nnz = job.format == Format::kDense ? job.rows * job.cols : job.nnz;
  a.vectors = job.axis == 0 ? job.cols : job.rows;
  a.has_subset = job.subset_size >= 0;
  a.subset = job.subset;
  a.subset_type = job.subset_type;
  a.index_type = job.index_type;
  a.indptr = job.indptr;
  a.indices = job.indices;
  a.row = job.row;
  a.col = job.col;
  return a;
}

struct MatrixScratchLayout {
  size_t bitmap_offset;  // subset marks, one bit per vector
  size_t bitmap_bytes;
  size_t owner_offset;   // subset owner flags, one byte per subset entry
  size_t vector_offset;  // per-vector state (scattered: max key, fixed sum; dense columns: scale)
  size_t vector_bytes;
  size_t zeroed_bytes;   // header onwards, to be zeroed before the call
  size_t partial_offset;  // dense columns: per chunk and column partial sums
  size_t prune_offset;    // sparse pruning: tile counts, prefixes, compacted copies
  size_t total;
};

// Rows per chunk of the dense column-norm pass: a function of the shape
// only, so that the result does not depend on the device.
int64_t DenseChunkRows(int64_t rows, int64_t cols);

// Lanes per vector on the contiguous path for sparse matrices (the dense
// path uses num::GroupSizeFor on its row length): from the mean length.
int SegmentGroupSize(int64_t nnz, int64_t segments);

MatrixScratchLayout MatrixLayout(const MatrixLaunch& job);

int LaunchMatrix(const MatrixLaunch& job);

// ---------------------------------------------------------------------------
// Optimizer step (include/sparsenorm/optim.h; kernels: optim_kernels.cu).

// Device-side result of one optimizer step.
struct StepHeader {
  FirstPosition bad;        // first index outside [0, rows)
  FirstPosition nonfinite;  // first gradient row holding NaN/inf (kError)
  long long bad_value;      // indices[bad], filled in by the last kernel
  long long nonfinite_row;  // the table row of gradient row `nonfinite`
  unsigned long long distinct;  // table rows named (the segments of the sorted list)
  unsigned long long scaled;
  unsigned long long nonfinite_rows;
  long long num_indices;  // gradient rows (the table's rows for a dense gradient)
  long long rows;
  unsigned long long magic;  // kStepMagic once the sequence ran
};
constexpr unsigned long long kStepMagic = 0x73706e7374657031ull;  // "spnstep1"
static_assert(sizeof(StepHeader) <= kHeaderBytes, "header too large");

SN_HD bool StepFailed(const StepHeader& h) { return h.bad.found() || h.nonfinite.found(); }

// What the last kernel of a step writes into the header, error or not: the
// call's sizes and the offending values for the report. `indices` is null
// for a dense gradient, whose gradient row i is table row i and whose
// distinct rows are all of them.
SN_HD void FinishStepHeader(const void* indices, IndexType type, int64_t n, int64_t rows,
                            StepHeader* header) {
  header->num_indices = n;
  header->rows = rows;
  header->magic = kStepMagic;
  if (indices == nullptr) header->distinct = static_cast<unsigned long long>(rows);
  if (header->bad.found()) header->bad_value = LoadIndex(indices, type, header->bad.position());
  if (header->nonfinite.found()) {
    const int64_t pos = header->nonfinite.position();
    header->nonfinite_row = indices == nullptr ? pos : LoadIndex(indices, type, pos);
  }
}

// One strided 2-D array of the step: row r at data + r * stride elements.
struct StepArrayArg {
  void* data;
  int64_t stride;
};

struct StepLaunch {
  StepArrayArg table{};
  int64_t rows = 0;
  int64_t cols = 0;
  DType dtype = DType::kFloat32;

  const void* grad = nullptr;
  int64_t grad_stride = 0;  // elements
  DType grad_dtype = DType::kFloat32;
  const void* indices = nullptr;  // null: dense (gradient row r is table row r)
  IndexType index_type = IndexType::kInt64;
  int64_t num_indices = 0;

  StepArrayArg state[2] = {};  // of the arithmetic type (common/optim_rules.h)

  StepRule rule{};
  bool has_constraint = false;
  NormRule constraint{};
  bool stochastic = false;
  uint64_t seed = 0;
  int64_t step = 1;
  bool nonfinite_error = false;

  void* scratch = nullptr;  // StepScratchLayout
  void* stream = nullptr;

  bool dense() const { return indices == nullptr; }
};

// Scratch of a sparse step: the sort's double buffers of keys (the index
// list, as unsigned integers of its width) and values (list positions,
// int64), the segments of the sorted list (one per distinct row), the
// repeat-group slots of the segments longer than kRepeatGroupSize and their
// partial sums, and CUB's temporary storage. A dense step needs the header
// alone.
struct StepScratchLayout {
  size_t keys_offset[2];
  size_t values_offset[2];
  size_t begin_offset;    // n + 1 segment starts, int64
  size_t slot_offset;     // n + 1 first repeat-group slots per segment, int64
  size_t partial_offset;  // partial_rows rows of cols elements of the arithmetic type
  int64_t partial_rows;
  size_t temp_offset;  // CUB's temporary storage
  size_t temp_bytes;
  size_t total;
};

// Repeat groups summed in advance for a segment of `count` occurrences: all
// of them when there is more than one, none otherwise (the update kernel
// sums a short segment itself).
SN_HD int64_t RepeatGroupsOf(int64_t count) {
  return count > kRepeatGroupSize ? (count + kRepeatGroupSize - 1) / kRepeatGroupSize : 0;
}

// The most repeat groups (kRepeatGroupSize = 64 occurrences each) that the
// segments longer than one group can have in a list of n indices: a segment
// of c > 64 occurrences has ceil(c / 64) <= floor(c / 32) of them, and the
// floors add up to at most floor(n / 32).
SN_HD int64_t MaxRepeatGroups(int64_t n) { return n / (kRepeatGroupSize / 2); }

// The layout of a launch (CUB's storage sizes depend on the device's
// architecture: a cudaError_t, nonzero when the runtime cannot tell them).
int StepLayout(const StepLaunch& job, StepScratchLayout* layout);

// Enqueues the whole step on the stream; returns a cudaError_t.
int LaunchStep(const StepLaunch& job);

}  // namespace detail
}  // namespace cuda
}  // namespace sparsenorm

#endif  // SPARSENORM_CUDA_LAUNCH_H_
