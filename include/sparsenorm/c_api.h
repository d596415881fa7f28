/* A C interface to the row operator and the matrix normalization, for
 * foreign-function callers (ctypes, cffi, Julia, Rust) that cannot use the
 * C++ API. Same semantics and errors as sparsenorm::NormalizeRows in rows.h
 * and sparsenorm::NormalizeMatrix in matrix.h. */
#ifndef SPARSENORM_C_API_H_
#define SPARSENORM_C_API_H_

#include <stddef.h>
#include <stdint.h>

#include "sparsenorm/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dtype and index type codes are the values of sparsenorm::DType and
 * sparsenorm::IndexType (sparsenorm/dtype.h): dtype 0 float32, 1 float64,
 * 2 float16, 3 bfloat16; index type 0 int32, 1 int64.
 * mode: 0 max-norm, 1 constant-norm. backend: 0 auto, 1 reference. */
typedef struct sparsenorm_options {
  int32_t mode;
  double target;
  double p;
  double eps;
  int32_t nonfinite_error; /* non-zero: a NaN/inf row fails the call */
  int32_t num_threads;     /* 0: every core */
  int32_t backend;
} sparsenorm_options;

typedef struct sparsenorm_row_stats {
  int64_t indices_seen;
  int64_t distinct_rows;
  int64_t rows_scaled;
  int64_t nonfinite_rows;
} sparsenorm_row_stats;

/* Fills `options` with the library defaults (max-norm, target 1, p 2,
 * eps 1e-12). */
SPARSENORM_API void sparsenorm_default_options(sparsenorm_options* options);

/* Returns 0 on success, otherwise a sparsenorm::StatusCode value; the
 * message is copied, NUL-terminated and truncated to error_size bytes, into
 * `error` when it is not null. `stats` may be null. */
SPARSENORM_API int sparsenorm_normalize_rows(void* data, int32_t dtype, int64_t rows,
                                             int64_t cols, int64_t row_stride,
                                             const void* indices, int32_t index_type,
                                             int64_t num_indices,
                                             const sparsenorm_options* options,
                                             sparsenorm_row_stats* stats, char* error,
                                             size_t error_size);

/* One table of sparsenorm_normalize_rows_many: the arguments of
 * sparsenorm_normalize_rows for that table. options may be null (defaults). */
typedef struct sparsenorm_rows_entry {
  void* data;
  int32_t dtype;
  int64_t rows;
  int64_t cols;
  int64_t row_stride;
  const void* indices;
  int32_t index_type;
  int64_t num_indices;
  const sparsenorm_options* options;
} sparsenorm_rows_entry;

/* sparsenorm::NormalizeRowsMany (rows.h): the indexed rows of every table of
 * entries[0 .. count) in one call; every entry is checked before any table
 * is written, and a bad entry's message starts with "entries[k]: ". stats,
 * when not null, has count elements and receives each table's statistics.
 * Return value and error as sparsenorm_normalize_rows. */
SPARSENORM_API int sparsenorm_normalize_rows_many(const sparsenorm_rows_entry* entries,
                                                  int64_t count, sparsenorm_row_stats* stats,
                                                  char* error, size_t error_size);

/* Matrix normalization (sparsenorm::NormalizeMatrix in matrix.h): every
 * column (axis 0) or row (axis 1) of a dense or sparse matrix, in place. */
typedef struct sparsenorm_matrix_options {
  sparsenorm_options norm; /* defaults here: constant-norm, target 1, p 2, eps 0 */
  int32_t axis;            /* 0: columns, 1: rows */
  int32_t has_subset;      /* non-zero: only the vectors listed in subset */
  const void* subset;
  int32_t subset_index_type;
  int64_t subset_size;
  double prune_below; /* > 0: values with |w| below it are zeroed or removed */
} sparsenorm_matrix_options;

typedef struct sparsenorm_matrix_stats {
  int64_t vectors;
  int64_t vectors_scaled;
  int64_t zero_vectors;
  int64_t nonfinite_vectors;
  int64_t pruned;
  int64_t nnz_before;
  int64_t nnz_after;
} sparsenorm_matrix_stats;

/* Fills `options` with sparsenorm::MatrixOptions' defaults. */
SPARSENORM_API void sparsenorm_default_matrix_options(sparsenorm_matrix_options* options);

/* A dense row-major matrix; row_stride in elements (0: cols). Return value,
 * stats and error as sparsenorm_normalize_rows. */
SPARSENORM_API int sparsenorm_normalize_dense(void* data, int32_t dtype, int64_t rows, int64_t cols,
                                              int64_t row_stride,
                                              const sparsenorm_matrix_options* options,
                                              sparsenorm_matrix_stats* stats, char* error,
                                              size_t error_size);

/* A sparse matrix in SciPy's layout. format: 0 CSR, 1 CSC, 2 COO. Every
 * index array has the type index_type. CSR/CSC use indptr and indices (row
 * and col may be null); COO uses row and col. *nnz is the number of stored
 * entries on entry and, after pruning, the number kept: values and the index
 * arrays are compacted in place and, for CSR/CSC, indptr is rewritten. */
SPARSENORM_API int sparsenorm_normalize_sparse(int32_t format, int64_t rows, int64_t cols,
                                               int64_t* nnz, void* values, int32_t dtype,
                                               int32_t index_type, void* indptr, void* indices,
                                               void* row, void* col,
                                               const sparsenorm_matrix_options* options,
                                               sparsenorm_matrix_stats* stats, char* error,
                                               size_t error_size);

/* The library version, "major.minor.patch". */
SPARSENORM_API const char* sparsenorm_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SPARSENORM_C_API_H_ */
