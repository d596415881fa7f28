// Conversions shared by the C interfaces of the CPU library (c_api.cc) and
// of the CUDA backend (src/cuda/c_api_cuda.cc).
#ifndef SPARSENORM_CORE_C_API_INTERNAL_H_
#define SPARSENORM_CORE_C_API_INTERNAL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "sparsenorm/c_api.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/types.h"

namespace sparsenorm::c_api {

inline NormalizeOptions OptionsFromC(const sparsenorm_options& c) {
  NormalizeOptions o;
  o.mode = static_cast<NormMode>(c.mode);
  o.target = c.target;
  o.p = c.p;
  o.eps = c.eps;
  o.non_finite = c.nonfinite_error != 0 ? NonFinitePolicy::kError : NonFinitePolicy::kSkip;
  o.num_threads = c.num_threads;
  o.backend = static_cast<Backend>(c.backend);
  return o;
}

inline SparseMatrix SparseFromC(std::int32_t format, std::int64_t rows, std::int64_t cols,
                                std::int64_t nnz, void* values, std::int32_t dtype,
                                std::int32_t index_type, void* indptr, void* indices, void* row,
                                void* col) {
  SparseMatrix m;
  m.format = static_cast<SparseFormat>(format);
  m.rows = rows;
  m.cols = cols;
  m.nnz = nnz;
  m.values = values;
  m.dtype = static_cast<DType>(dtype);
  m.index_type = static_cast<IndexType>(index_type);
  m.indptr = indptr;
  m.indices = indices;
  m.row = row;
  m.col = col;
  return m;
}

inline sparsenorm_row_stats RowStatsToC(const RowStats& s) {
  return sparsenorm_row_stats{s.indices_seen, s.distinct_rows, s.rows_scaled, s.nonfinite_rows};
}

inline sparsenorm_matrix_stats MatrixStatsToC(const MatrixStats& s) {
  return sparsenorm_matrix_stats{s.vectors, s.vectors_scaled, s.zero_vectors, s.nonfinite_vectors,
                                 s.pruned,  s.nnz_before,     s.nnz_after};
}

// The status code as the C return value, and its message copied into
// `error` (NUL-terminated, truncated to error_size bytes) when given.
inline int Report(const Status& status, char* error, std::size_t error_size) {
  if (error != nullptr && error_size > 0) {
    const std::string& m = status.message();
    const std::size_t n = std::min(m.size(), error_size - 1);
    std::memcpy(error, m.data(), n);
    error[n] = '\0';
  }
  return static_cast<int>(status.code());
}

}  // namespace sparsenorm::c_api

#endif  // SPARSENORM_CORE_C_API_INTERNAL_H_
