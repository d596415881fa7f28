#include "sparsenorm/c_api.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "sparsenorm/matrix.h"
#include "sparsenorm/rows.h"
#include "sparsenorm/version.h"

namespace {

sparsenorm::NormalizeOptions FromC(const sparsenorm_options& c) {
  using namespace sparsenorm;
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

void ToC(const sparsenorm::NormalizeOptions& o, sparsenorm_options* c) {
  c->mode = static_cast<int32_t>(o.mode);
  c->target = o.target;
  c->p = o.p;
  c->eps = o.eps;
  c->nonfinite_error = o.non_finite == sparsenorm::NonFinitePolicy::kError ? 1 : 0;
  c->num_threads = o.num_threads;
  c->backend = static_cast<int32_t>(o.backend);
}

sparsenorm::MatrixOptions FromC(const sparsenorm_matrix_options* c) {
  sparsenorm::MatrixOptions o;
  if (c == nullptr) return o;
  o.norm = FromC(c->norm);
  o.axis = c->axis;
  if (c->has_subset != 0) {
    o.subset = sparsenorm::Indices(c->subset, static_cast<sparsenorm::IndexType>(c->subset_index_type),
                                   c->subset_size);
  }
  o.prune_below = c->prune_below;
  return o;
}

int Finish(const sparsenorm::Status& status, const sparsenorm::MatrixStats& s,
           sparsenorm_matrix_stats* stats, char* error, size_t error_size) {
  if (stats != nullptr && status.ok()) {
    *stats = sparsenorm_matrix_stats{s.vectors,  s.vectors_scaled, s.zero_vectors, s.nonfinite_vectors,
                                     s.pruned,   s.nnz_before,     s.nnz_after};
  }
  if (error != nullptr && error_size > 0) {
    const std::string& m = status.message();
    const std::size_t n = std::min(m.size(), error_size - 1);
    std::memcpy(error, m.data(), n);
    error[n] = '\0';
  }
  return static_cast<int>(status.code());
}

}  // namespace

extern "C" {


void sparsenorm_default_options(sparsenorm_options* options) {
  if (options == nullptr) return;
  const sparsenorm::NormalizeOptions d;
  options->mode = static_cast<int32_t>(d.mode);
  options->target = d.target;
  options->p = d.p;
  options->eps = d.eps;
  options->nonfinite_error = 0;
  options->num_threads = d.num_threads;
  options->backend = static_cast<int32_t>(d.backend);
}

int sparsenorm_normalize_rows(void* data, int32_t dtype, int64_t rows, int64_t cols,
                              int64_t row_stride, const void* indices, int32_t index_type,
                              int64_t num_indices, const sparsenorm_options* options,
                              sparsenorm_row_stats* stats, char* error, size_t error_size) {
  using namespace sparsenorm;
  NormalizeOptions o;
  if (options != nullptr) o = FromC(*options);
  Table table{data, static_cast<DType>(dtype), rows, cols, row_stride};
  RowStats s;
  const Status status =
      NormalizeRows(table, Indices(indices, static_cast<IndexType>(index_type), num_indices), o, &s);
  if (stats != nullptr && status.ok()) {
    *stats = sparsenorm_row_stats{s.indices_seen, s.distinct_rows, s.rows_scaled, s.nonfinite_rows};
  }
  if (error != nullptr && error_size > 0) {
    const std::string& m = status.message();
    const std::size_t n = std::min(m.size(), error_size - 1);
    std::memcpy(error, m.data(), n);
    error[n] = '\0';
  }
  return static_cast<int>(status.code());
}

void sparsenorm_default_matrix_options(sparsenorm_matrix_options* options) {
  if (options == nullptr) return;
  const sparsenorm::MatrixOptions d;
  ToC(d.norm, &options->norm);
  options->axis = d.axis;
  options->has_subset = 0;
  options->subset = nullptr;
  options->subset_index_type = static_cast<int32_t>(sparsenorm::IndexType::kInt64);
  options->subset_size = 0;
  options->prune_below = d.prune_below;
}

int sparsenorm_normalize_dense(void* data, int32_t dtype, int64_t rows, int64_t cols,
                               int64_t row_stride, const sparsenorm_matrix_options* options,
                               sparsenorm_matrix_stats* stats, char* error, size_t error_size) {
  using namespace sparsenorm;
  MatrixStats s;
  const Status status = NormalizeMatrix(Table{data, static_cast<DType>(dtype), rows, cols, row_stride},
                                        FromC(options), &s);
  return Finish(status, s, stats, error, error_size);
}

int sparsenorm_normalize_sparse(int32_t format, int64_t rows, int64_t cols, int64_t* nnz,
                                void* values, int32_t dtype, int32_t index_type, void* indptr,
                                void* indices, void* row, void* col,
                                const sparsenorm_matrix_options* options,
                                sparsenorm_matrix_stats* stats, char* error, size_t error_size) {
  using namespace sparsenorm;
  MatrixStats s;
  if (nnz == nullptr) {
    return Finish(Status(StatusCode::kInvalidArgument,
                         "nnz is null: pass the address of the number of stored entries."),
                  s, stats, error, error_size);
  }
  SparseMatrix m;
  m.format = static_cast<SparseFormat>(format);
  m.rows = rows;
  m.cols = cols;
  m.nnz = *nnz;
  m.values = values;
  m.dtype = static_cast<DType>(dtype);
  m.index_type = static_cast<IndexType>(index_type);
  m.indptr = indptr;
  m.indices = indices;
  m.row = row;
  m.col = col;
  const Status status = NormalizeMatrix(&m, FromC(options), &s);
  if (status.ok()) *nnz = m.nnz;
  return Finish(status, s, stats, error, error_size);
}

const char* sparsenorm_version(void) { return SPARSENORM_VERSION_STRING; }

}  // extern "C"
