#include "sparsenorm/c_api.h"

#include <new>
#include <vector>

#include "core/c_api_internal.h"
#include "core/status.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/rows.h"
#include "sparsenorm/version.h"

namespace {

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
  o.norm = sparsenorm::c_api::OptionsFromC(c->norm);
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
  if (stats != nullptr && status.ok()) *stats = sparsenorm::c_api::MatrixStatsToC(s);
  return sparsenorm::c_api::Report(status, error, error_size);
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
  if (options != nullptr) o = c_api::OptionsFromC(*options);
  Table table{data, static_cast<DType>(dtype), rows, cols, row_stride};
  RowStats s;
  const Status status =
      NormalizeRows(table, Indices(indices, static_cast<IndexType>(index_type), num_indices), o, &s);
  if (stats != nullptr && status.ok()) *stats = c_api::RowStatsToC(s);
  return c_api::Report(status, error, error_size);
}

int sparsenorm_normalize_rows_many(const sparsenorm_rows_entry* entries, int64_t count,
                                   sparsenorm_row_stats* stats, char* error, size_t error_size) {
  using namespace sparsenorm;
  if (count < 0 || (count > 0 && entries == nullptr)) {
    return c_api::Report(detail::InvalidArgument("entries is null with count = ", count,
                                                 ", or count is negative."),
                         error, error_size);
  }
  std::vector<RowsBatchEntry> batch;
  std::vector<RowStats> s;
  try {
    batch.reserve(static_cast<std::size_t>(count));
    s.resize(static_cast<std::size_t>(count));
  } catch (const std::bad_alloc&) {
    return c_api::Report(detail::OutOfMemory("the list of entries"), error, error_size);
  }
  for (int64_t k = 0; k < count; ++k) {
    const sparsenorm_rows_entry& e = entries[k];
    NormalizeOptions o;
    if (e.options != nullptr) o = c_api::OptionsFromC(*e.options);
    batch.push_back({Table{e.data, static_cast<DType>(e.dtype), e.rows, e.cols, e.row_stride},
                     Indices(e.indices, static_cast<IndexType>(e.index_type), e.num_indices), o});
  }
  const Status status = NormalizeRowsMany(batch, s);
  if (stats != nullptr && status.ok()) {
    for (int64_t k = 0; k < count; ++k) stats[k] = c_api::RowStatsToC(s[static_cast<std::size_t>(k)]);
  }
  return c_api::Report(status, error, error_size);
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
  SparseMatrix m = c_api::SparseFromC(format, rows, cols, *nnz, values, dtype, index_type, indptr,
                                      indices, row, col);
  const Status status = NormalizeMatrix(&m, FromC(options), &s);
  if (status.ok()) *nnz = m.nnz;
  return Finish(status, s, stats, error, error_size);
}

const char* sparsenorm_version(void) { return SPARSENORM_VERSION_STRING; }

}  // extern "C"
