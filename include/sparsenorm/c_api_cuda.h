/* A C interface to the CUDA backend (sparsenorm/cuda.h), for foreign-function
 * callers such as ctypes: the asynchronous row operator and the sparse
 * matrix normalization, with caller-provided scratch memory and a stream
 * passed as an opaque pointer (a cudaStream_t; NULL is the legacy default
 * stream). Exported by libsparsenorm_c when the library was built with
 * SPARSENORM_CUDA=ON. Every pointer is device memory.
 *
 * Return values: 0 on success, otherwise a sparsenorm::StatusCode value, the
 * message copied (NUL-terminated, truncated to error_size bytes) into
 * `error` when it is not NULL. */
#ifndef SPARSENORM_C_API_CUDA_H_
#define SPARSENORM_C_API_CUDA_H_

#include <stddef.h>
#include <stdint.h>

#include "sparsenorm/c_api.h"
#include "sparsenorm/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CPU interface's matrix statistics (c_api.h), under the name this
 * header first gave them. */
typedef sparsenorm_matrix_stats sparsenorm_cuda_matrix_stats;

/* The number of CUDA devices; 0 without a device or a driver. */
SPARSENORM_API int sparsenorm_cuda_device_count(void);

/* Row operator, in place (rows.h, cuda.h). */
SPARSENORM_API size_t sparsenorm_cuda_rows_scratch_bytes(int64_t rows, int64_t num_indices);

SPARSENORM_API int sparsenorm_cuda_normalize_rows_async(
    void* data, int32_t dtype, int64_t rows, int64_t cols, int64_t row_stride,
    const void* indices, int32_t index_type, int64_t num_indices,
    const sparsenorm_options* options, void* scratch, size_t scratch_bytes, void* stream,
    char* error, size_t error_size);

/* Waits for the stream; the outcome of the call that used `scratch`. */
SPARSENORM_API int sparsenorm_cuda_rows_result(const void* scratch, void* stream,
                                               sparsenorm_row_stats* stats, char* error,
                                               size_t error_size);

/* Sparse matrix normalization (matrix.h) without a subset list. format: 0 CSR,
 * 1 CSC, 2 COO; indptr/indices for CSR and CSC, row/col for COO (the others
 * may be NULL). `options` is taken as given (the matrix defaults are
 * constant-norm, target 1, p 2, eps 0). Returns 0 from the size query on
 * invalid arguments. */
SPARSENORM_API size_t sparsenorm_cuda_sparse_scratch_bytes(
    int32_t format, int64_t rows, int64_t cols, int64_t nnz, void* values, int32_t dtype,
    int32_t index_type, void* indptr, void* indices, void* row, void* col, int32_t axis,
    double prune_below, const sparsenorm_options* options);

SPARSENORM_API int sparsenorm_cuda_normalize_sparse_async(
    int32_t format, int64_t rows, int64_t cols, int64_t nnz, void* values, int32_t dtype,
    int32_t index_type, void* indptr, void* indices, void* row, void* col, int32_t axis,
    double prune_below, const sparsenorm_options* options, void* scratch, size_t scratch_bytes,
    void* stream, char* error, size_t error_size);

/* Waits for the stream; the outcome of the matrix call that used `scratch`.
 * nnz_after in `stats` is the entry count after pruning. */
SPARSENORM_API int sparsenorm_cuda_matrix_result(const void* scratch, void* stream,
                                                 sparsenorm_cuda_matrix_stats* stats,
                                                 char* error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif /* SPARSENORM_C_API_CUDA_H_ */
