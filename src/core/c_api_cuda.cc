#include "sparsenorm/c_api_cuda.h"

#include "core/c_api_internal.h"
#include "sparsenorm/cuda.h"

namespace {

using namespace sparsenorm;

MatrixOptions MatrixOptionsFromC(const sparsenorm_options* options, int32_t axis, double prune_below) {
  MatrixOptions o;
  if (options != nullptr) o.norm = c_api::OptionsFromC(*options);
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
      options != nullptr ? c_api::OptionsFromC(*options) : NormalizeOptions(), scratch, scratch_bytes, stream);
  return c_api::Report(s, error, error_size);
}

int sparsenorm_cuda_rows_result(const void* scratch, void* stream, sparsenorm_row_stats* stats,
                                char* error, size_t error_size) {
  RowStats r;
  const Status s = cuda::RowsResult(scratch, stream, &r);
  if (s.ok() && stats != nullptr) {
    *stats = c_api::RowStatsToC(r);
  }
  return c_api::Report(s, error, error_size);
}

size_t sparsenorm_cuda_sparse_scratch_bytes(int32_t format, int64_t rows, int64_t cols,
                                            int64_t nnz, void* values, int32_t dtype,
                                            int32_t index_type, void* indptr, void* indices,
                                            void* row, void* col, int32_t axis,
                                            double prune_below,
                                            const sparsenorm_options* options) {
  return cuda::MatrixScratchBytes(
      c_api::SparseFromC(format, rows, cols, nnz, values, dtype, index_type, indptr, indices, row, col),
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
      c_api::SparseFromC(format, rows, cols, nnz, values, dtype, index_type, indptr, indices, row, col),
      MatrixOptionsFromC(options, axis, prune_below), scratch, scratch_bytes, stream);
  return c_api::Report(s, error, error_size);
}

int sparsenorm_cuda_matrix_result(const void* scratch, void* stream,
                                  sparsenorm_cuda_matrix_stats* stats, char* error,
                                  size_t error_size) {
  MatrixStats m;
  const Status s = cuda::MatrixResult(scratch, stream, &m, nullptr);
  if (s.ok() && stats != nullptr) {
    *stats = c_api::MatrixStatsToC(m);
  }
  return c_api::Report(s, error, error_size);
}

}  // extern "C"
