// The CUDA backend: the row operator (rows.h), the matrix normalization
// (matrix.h) and the optimizer step (optim.h) on device memory, on the
// caller's stream. Available when the
// library was built with SPARSENORM_CUDA=ON (then SPARSENORM_WITH_CUDA is
// defined to 1 for code that links sparsenorm::sparsenorm).
//
// Same options, dtypes, index types and contract as the CPU functions; every
// pointer (table, indices, subset, sparse arrays, scratch) must be device
// memory of the current device (cudaMalloc, cudaMallocAsync, managed memory
// or mapped pinned host memory). This header needs no CUDA header: a stream
// is passed as an opaque pointer (a cudaStream_t converts to it implicitly;
// nullptr is the legacy default stream).
//
// Two ways to call each operator:
//
//   Synchronous: NormalizeRows / NormalizeMatrix take stream-ordered
//   scratch memory from the device's default memory pool, wait for the
//   stream, and return the full Status and statistics.
//
//   Asynchronous (CUB's pattern): ask RowsScratchBytes / MatrixScratchBytes
//   for the size, provide that much device memory (16-byte aligned, not
//   overlapping the data), enqueue with NormalizeRowsAsync /
//   NormalizeMatrixAsync, which neither waits nor allocates, and later read
//   the outcome with RowsResult / MatrixResult, which waits for the stream.
//   The Async functions check on the host what the host can see (options,
//   sizes, strides, pointer kinds) and return such errors at once, having
//   enqueued nothing. What only the device can see (index values, sparse
//   structure, NaN/infinity under NonFinitePolicy::kError) is checked by the
//   first kernels, before any kernel writes caller data; when a check fails,
//   no caller data is modified and the Result function returns the error.
//   The scratch memory must stay allocated, and must not be reused, until
//   the Result function has been called or the stream has passed the call.
//
// Numerics are those of the CPU path (float32 accumulation for the 16-bit
// types, float64 for float64; each element rounded once, nearest-even).
// Results may differ from the CPU in the last bit of float32/float64 values,
// and rarely by one 16-bit ulp, because sums run in another order; the
// matrix normalization of scattered vectors (CSR/COO columns, CSC/COO rows)
// sums exactly in fixed point instead (docs/CUDA.md). Results on the device
// are bit-for-bit deterministic: independent of index order, repeats and
// scheduling.
//
// Differences from the CPU functions: options.num_threads is ignored;
// options.backend = kReference and SPARSENORM_BACKEND=reference are not
// available on the device (kReference is rejected with kUnsupported); a
// sparse matrix must be in canonical order (CSR/CSC: strictly increasing
// indices within each row/column; COO: entries strictly increasing by
// (row, col) or by (col, row)), anything else is rejected with
// kUnsupported before anything is written.
#ifndef SPARSENORM_CUDA_H_
#define SPARSENORM_CUDA_H_

#include <cstddef>
#include <cstdint>

#include "sparsenorm/export.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/optim.h"
#include "sparsenorm/types.h"

namespace sparsenorm::cuda {

// A cudaStream_t as an opaque pointer.
using StreamHandle = void*;

// The number of CUDA devices the runtime sees; 0 without a device or driver.
SPARSENORM_API int DeviceCount() noexcept;

// ---------------------------------------------------------------------------
// Row operator (contract: rows.h).

// Bytes of scratch memory a call on a table of `table_rows` rows with
// `num_indices` indices needs: 512 + one bit per table row + one byte per
// index, each piece rounded up to 256 bytes.
SPARSENORM_API std::size_t RowsScratchBytes(std::int64_t table_rows,
                                            std::int64_t num_indices) noexcept;

SPARSENORM_API Status NormalizeRowsAsync(Table table, Indices indices,
                                         const NormalizeOptions& options, void* scratch,
                                         std::size_t scratch_bytes, StreamHandle stream) noexcept;

// Out of place: every row of `input` is written to `output`, the indexed
// rows normalized (rows.h). `output` may be the same memory as `input`.
SPARSENORM_API Status NormalizeRowsAsync(ConstTable input, Table output, Indices indices,
                                         const NormalizeOptions& options, void* scratch,
                                         std::size_t scratch_bytes, StreamHandle stream) noexcept;

// Waits for `stream` and returns the outcome of the row-operator call that
// used `scratch`; fills `stats` (may be null) when it succeeded.
SPARSENORM_API Status RowsResult(const void* scratch, StreamHandle stream,
                                 RowStats* stats = nullptr) noexcept;

SPARSENORM_API Status NormalizeRows(Table table, Indices indices,
                                    const NormalizeOptions& options = {},
                                    RowStats* stats = nullptr,
                                    StreamHandle stream = nullptr) noexcept;

SPARSENORM_API Status NormalizeRows(ConstTable input, Table output, Indices indices,
                                    const NormalizeOptions& options = {},
                                    RowStats* stats = nullptr,
                                    StreamHandle stream = nullptr) noexcept;

// ---------------------------------------------------------------------------
// Matrix normalization (contract: matrix.h).

// Bytes of scratch memory for a call with these shapes and options; 0 when
// the arguments are invalid (the call then reports why).
SPARSENORM_API std::size_t MatrixScratchBytes(const Table& matrix,
                                              const MatrixOptions& options) noexcept;
SPARSENORM_API std::size_t MatrixScratchBytes(const SparseMatrix& matrix,
                                              const MatrixOptions& options) noexcept;

SPARSENORM_API Status NormalizeMatrixAsync(Table matrix, const MatrixOptions& options,
                                           void* scratch, std::size_t scratch_bytes,
                                           StreamHandle stream) noexcept;

// With pruning, the compacted arrays are written in place on the device;
// the new entry count is known once MatrixResult returns (it updates
// matrix->nnz there).
SPARSENORM_API Status NormalizeMatrixAsync(const SparseMatrix& matrix,
                                           const MatrixOptions& options, void* scratch,
                                           std::size_t scratch_bytes,
                                           StreamHandle stream) noexcept;

// Waits for `stream` and returns the outcome of the matrix call that used
// `scratch`. When `matrix` is not null and the call succeeded, matrix->nnz
// is set to the entry count after pruning.
SPARSENORM_API Status MatrixResult(const void* scratch, StreamHandle stream,
                                   MatrixStats* stats = nullptr,
                                   SparseMatrix* matrix = nullptr) noexcept;

SPARSENORM_API Status NormalizeMatrix(Table matrix, const MatrixOptions& options = {},
                                      MatrixStats* stats = nullptr,
                                      StreamHandle stream = nullptr) noexcept;

SPARSENORM_API Status NormalizeMatrix(SparseMatrix* matrix, const MatrixOptions& options = {},
                                      MatrixStats* stats = nullptr,
                                      StreamHandle stream = nullptr) noexcept;

// ---------------------------------------------------------------------------
// Optimizer step (contract: optim.h).
//
// Same options, dtypes and bits as the CPU's OptimizerStep, with the
// differences listed above and these: the row-wise Adagrad sum of squares
// and the constraint's norm are summed in another fixed order (lanes, then a
// butterfly: docs/CUDA.md), so a row-wise Adagrad row or a constrained row
// may differ from the CPU's in the last bits; every other element (the
// summed gradient, the other rules, the state, stochastic rounding given
// the value) is the CPU's bit for bit. What only the device can check (index
// values; under NonFinitePolicy::kError, every gradient element) is checked
// before anything is written; on a finding nothing is written and the
// Result function returns the CPU's Status. The table, the state tables,
// the gradient and the index list must all be device memory.
//
// NOT YET RUN ON A GPU: this code has been compiled, and its arithmetic and
// checks replayed on the host, but it has not executed on a device.

// Bytes of scratch memory a step with a sparse gradient of `indices.size`
// rows on `table` needs on the current device (the data pointers are not
// read): about 2 x (8 + index size) + 16 bytes per index, plus partial sums
// of up to indices.size / 32 rows of the arithmetic type, plus CUB's
// temporary storage. 0 when the shapes or types are invalid, or when the
// CUDA runtime cannot tell (no device): the call then reports why.
SPARSENORM_API std::size_t OptimizerScratchBytes(const Table& table, const Indices& indices) noexcept;

// The same for a dense gradient: 512 bytes (the report).
SPARSENORM_API std::size_t OptimizerScratchBytesDense(const Table& table) noexcept;

SPARSENORM_API Status OptimizerStepAsync(Table table, const OptimizerState& state, Indices indices,
                                         ConstTable values, const OptimizerOptions& options,
                                         void* scratch, std::size_t scratch_bytes,
                                         StreamHandle stream) noexcept;

SPARSENORM_API Status OptimizerStepDenseAsync(Table table, const OptimizerState& state,
                                              ConstTable gradient, const OptimizerOptions& options,
                                              void* scratch, std::size_t scratch_bytes,
                                              StreamHandle stream) noexcept;

// Waits for `stream` and returns the outcome of the step that used
// `scratch`; fills `stats` (may be null) when it succeeded.
SPARSENORM_API Status OptimizerResult(const void* scratch, StreamHandle stream,
                                      RowStats* stats = nullptr) noexcept;

SPARSENORM_API Status OptimizerStep(Table table, const OptimizerState& state, Indices indices,
                                    ConstTable values, const OptimizerOptions& options,
                                    RowStats* stats = nullptr,
                                    StreamHandle stream = nullptr) noexcept;

SPARSENORM_API Status OptimizerStepDense(Table table, const OptimizerState& state,
                                         ConstTable gradient, const OptimizerOptions& options,
                                         RowStats* stats = nullptr,
                                         StreamHandle stream = nullptr) noexcept;

}  // namespace sparsenorm::cuda

#endif  // SPARSENORM_CUDA_H_
