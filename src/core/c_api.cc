#include "sparsenorm/c_api.h"

#include <algorithm>
#include <cstring>

#include "sparsenorm/rows.h"
#include "sparsenorm/version.h"

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
  if (options != nullptr) {
    o.mode = static_cast<NormMode>(options->mode);
    o.target = options->target;
    o.p = options->p;
    o.eps = options->eps;
    o.non_finite = options->nonfinite_error != 0 ? NonFinitePolicy::kError : NonFinitePolicy::kSkip;
    o.num_threads = options->num_threads;
    o.backend = static_cast<Backend>(options->backend);
  }
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

const char* sparsenorm_version(void) { return SPARSENORM_VERSION_STRING; }

}  // extern "C"
