// The boundary between the C++ front ends (rows_cuda.cc, matrix_cuda.cc,
// compiled by the host compiler as C++20) and the kernels (*.cu, compiled by
// nvcc as C++17): plain structs of raw pointers and sizes, a stream as an
// opaque pointer, and launchers that enqueue work and return a cudaError_t
// as an int. Nothing here includes a CUDA or a sparsenorm public header.
//
// Every launcher assumes its arguments were validated on the host: shapes,
// strides, options and pointers. What only the device can check (index
// values, sparse structure, non-finite vectors under the error policy) is
// checked by the first kernels of the sequence, which record the first
// offending position in a header at the start of the scratch memory; every
// later kernel reads that header first and writes nothing when it holds an
// error. The front end turns the header into a sparsenorm::Status.
#ifndef SPARSENORM_CUDA_LAUNCH_H_
#define SPARSENORM_CUDA_LAUNCH_H_

#include <stddef.h>
#include <stdint.h>

#include "cuda/device_numerics.h"

namespace sparsenorm {
namespace cuda {
namespace detail {

// Scratch memory starts with a header; the rest is 256-byte aligned pieces.
constexpr size_t kHeaderBytes = 512;
constexpr size_t kScratchAlignment = 256;

inline size_t AlignUp(size_t bytes) {
  return (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment;
}

// Device-side result of one row-operator call. Positions are recorded as
// keys n - position (0: none), so that one atomicMax over a zeroed header
// keeps the first position.
struct RowsHeader {
  unsigned long long bad_key;        // first index outside [0, rows)
  unsigned long long nonfinite_key;  // first index whose row holds NaN/inf (kError)
  unsigned int nonfinite_found;      // some indexed row holds NaN/inf (kError)
  unsigned int pad0;
  long long bad_value;        // indices[first bad position], filled in on error
  long long nonfinite_value;  // indices[first non-finite position]
  unsigned long long distinct;
  unsigned long long scaled;
  unsigned long long nonfinite;
  long long num_indices;
  long long rows;
  unsigned long long magic;  // kRowsMagic once the sequence ran
};
constexpr unsigned long long kRowsMagic = 0x73706e726f777331ull;  // "spnrows1"
static_assert(sizeof(RowsHeader) <= kHeaderBytes, "header too large");

struct RowsLaunch {
  const void* in = nullptr;  // == out for the in-place operator
  void* out = nullptr;
  int64_t in_stride = 0;  // elements between row starts
  int64_t out_stride = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  int dtype = 0;            // num::Kind
  bool vectorized = false;  // 16-byte aligned rows of a multiple of 16 bytes
  bool in_place = true;

  const void* indices = nullptr;
  int index_type = 1;  // 0: int32, 1: int64
  int64_t num_indices = 0;

  num::NormParams params{};
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

// Positions in the matrix header are keys kKeyBase - position.
constexpr unsigned long long kKeyBase = 1ull << 62;

// The checks the device makes, in the order they are reported.
enum MatrixError : int {
  kErrSubsetIndex = 0,  // subset[k] outside [0, vectors)
  kErrIndptrStart = 1,  // indptr[0] != 0
  kErrIndptrOrder = 2,  // indptr[i] > indptr[i + 1]
  kErrIndptrEnd = 3,    // indptr[last] != nnz
  kErrMinorIndex = 4,   // indices[k] (COO: row[k]) outside the matrix
  kErrCooCol = 5,       // col[k] outside the matrix (COO)
  kErrUnsorted = 6,     // an entry not after its predecessor (canonical order needed)
  kErrNonFinite = 7,    // a NaN/inf vector under NonFinitePolicy::kError
  kErrCount = 8,
};

enum class Format : int { kDense = 0, kCSR = 1, kCSC = 2, kCOO = 3 };

// Device-side result of one matrix call.
struct MatrixHeader {
  unsigned long long error_key[kErrCount];
  long long error_value[kErrCount];  // the offending value, filled in at the end
  long long error_extra[kErrCount];  // a second value (indptr[i + 1], indices[k - 1], COO col[k])
  long long error_aux[2];            // COO order: the previous entry's row and col
  unsigned long long coo_colmajor_key;  // COO: first position breaking (col, row) order
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
constexpr unsigned long long kMatrixMagic = 0x73706e6d61747831ull;  // "spnmatx1"
static_assert(sizeof(MatrixHeader) <= kHeaderBytes, "header too large");

struct MatrixLaunch {
  Format format = Format::kDense;
  int axis = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;  // dense, elements
  int64_t nnz = 0;         // sparse
  void* values = nullptr;
  int dtype = 0;
  bool vectorized = false;  // dense rows: 16-byte aligned
  int index_type = 0;       // 0: int32, 1: int64 (sparse arrays)
  void* indptr = nullptr;
  void* indices = nullptr;
  void* row = nullptr;
  void* col = nullptr;

  const void* subset = nullptr;
  int subset_type = 1;
  int64_t subset_size = -1;  // -1: every vector

  num::NormParams params{};
  bool nonfinite_error = false;
  double prune_below = 0.0;

  void* scratch = nullptr;
  void* stream = nullptr;
};

// How the norms are computed (docs/CUDA.md).
enum class MatrixPath : int {
  kContiguous = 0,  // each vector is one contiguous run: dense rows, CSR rows, CSC columns
  kDenseColumns = 1,  // columns of a row-major dense matrix
  kScattered = 2,   // entries of a vector scattered: CSR columns, CSC rows, COO
};

MatrixPath PathOf(const MatrixLaunch& job);

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

}  // namespace detail
}  // namespace cuda
}  // namespace sparsenorm

#endif  // SPARSENORM_CUDA_LAUNCH_H_
