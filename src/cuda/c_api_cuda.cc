#include "sparsenorm/c_api_cuda.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "sparsenorm/cuda.h"

namespace {

using namespace sparsenorm;

NormalizeOptions FromC(const sparsenorm_options* options, NormalizeOptions o) {
  if (options != nullptr) {
    o.mode = static_cast<NormMode>(options->mode);
    o.target = options->target;
    o.p = options->p;
    o.eps = options->eps;
    o.non_finite = options->nonfinite_error != 0 ? NonFinitePolicy::kError : NonFinitePolicy::kSkip;
    o.num_threads = options->num_threads;
    o.backend = static_cast<Backend>(options->backend);
  }
  return o;
}

int Report(const Status& status, char* error, size_t error_size) {
  if (error != nullptr && error_size > 0) {
    const std::string& m = status.message();
    const std::size_t n = std::min(m.size(), error_size - 1);
    std::memcpy(error, m.data(), n);
    error[n] = '\0';
  }
  return static_cast<int>(status.code());
}

SparseMatrix Sparse(int32_t format, int64_t rows, int64_t cols, int64_t nnz, void* values,
                    int32_t dtype, int32_t index_type, void* indptr, void* indices, void* row,
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

MatrixOptions MatrixOptionsFromC(const sparsenorm_options* options, int32_t axis, double prune_below) {
  MatrixOptions o;
  o.norm = FromC(options, o.norm);
  o.axis = axis;
  o.prune_below = prune_below;
  return o;
}

}  // namespace

extern "C" {

int sparsenorm_cuda_device_count(void) { return cuda::DeviceCount(); }

size_t sparsenorm_cuda_rows_scratch_bytes(int64_t rows, int64_t num_indices) {
  return cuda::RowsScratchBytes(rows, num_indices);
}

int sparsenorm_cuda_normalize_rows_async(void* data, int32_t dtype, int64_t rows, int64_t cols,
                                         int64_t row_stride, const void* indices,
                                         int32_t index_type, int64_t num_indices,
                                         const sparsenorm_options* options, void* scratch,
                                         size_t scratch_bytes, void* stream, char* error,
                                         size_t error_size) {
  Table table{data, static_cast<DType>(dtype), rows, cols, row_stride};
  const Status s = cuda::NormalizeRowsAsync(
      table, Indices(indices, static_cast<IndexType>(index_type), num_indices),
      FromC(options, NormalizeOptions()), scratch, scratch_bytes, stream);
  return Report(s, error, error_size);
}

int sparsenorm_cuda_rows_result(const void* scratch, void* stream, sparsenorm_row_stats* stats,
                                char* error, size_t error_size) {
  RowStats r;
  const Status s = cuda::RowsResult(scratch, stream, &r);
  if (s.ok() && stats != nullptr) {
    *stats = sparsenorm_row_stats{r.indices_seen, r.distinct_rows, r.rows_scaled, r.nonfinite_rows};
  }
  return Report(s, error, error_size);
}

size_t sparsenorm_cuda_sparse_scratch_bytes(int32_t format, int64_t rows, int64_t cols,
                                            int64_t nnz, void* values, int32_t dtype,
                                            int32_t index_type, void* indptr, void* indices,
                                            void* row, void* col, int32_t axis,
                                            double prune_below,
                                            const sparsenorm_options* options) {
  return cuda::MatrixScratchBytes(
      Sparse(format, rows, cols, nnz, values, dtype, index_type, indptr, indices, row, col),
      MatrixOptionsFromC(options, axis, prune_below));
}

int sparsenorm_cuda_normalize_sparse_async(int32_t format, int64_t rows, int64_t cols,
                                           int64_t nnz, void* values, int32_t dtype,
                                           int32_t index_type, void* indptr, void* indices,
                                           void* row, void* col, int32_t axis,
                                           double prune_below, const sparsenorm_options* options,
                                           void* scratch, size_t scratch_bytes, void* stream,
                                           char* error, size_t error_size) {
  const Status s = cuda::NormalizeMatrixAsync(
      Sparse(format, rows, cols, nnz, values, dtype, index_type, indptr, indices, row, col),
      MatrixOptionsFromC(options, axis, prune_below), scratch, scratch_bytes, stream);
  return Report(s, error, error_size);
}

int sparsenorm_cuda_matrix_result(const void* scratch, void* stream,
                                  sparsenorm_cuda_matrix_stats* stats, char* error,
                                  size_t error_size) {
  MatrixStats m;
  const Status s = cuda::MatrixResult(scratch, stream, &m, nullptr);
  if (s.ok() && stats != nullptr) {
    *stats = sparsenorm_cuda_matrix_stats{m.vectors,          m.vectors_scaled, m.zero_vectors,
                                          m.nonfinite_vectors, m.pruned,         m.nnz_before,
                                          m.nnz_after};
  }
  return Report(s, error, error_size);
}

}  // extern "C"
