/* A C interface to the row operator, for foreign-function callers (ctypes,
 * cffi, Julia, Rust) that cannot use the C++ API. Same semantics and
 * errors as sparsenorm::NormalizeRows in rows.h. */
#ifndef SPARSENORM_C_API_H_
#define SPARSENORM_C_API_H_

#include <stddef.h>
#include <stdint.h>

#include "sparsenorm/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dtype codes: 0 float32, 1 float64, 2 float16, 3 bfloat16.
 * index type codes: 0 int32, 1 int64.
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

/* The library version, "major.minor.patch". */
SPARSENORM_API const char* sparsenorm_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SPARSENORM_C_API_H_ */
