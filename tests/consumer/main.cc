// Normalizes two rows through the public API and checks the result.
#include <cmath>
#include <cstdio>
#include <vector>

#include <sparsenorm/sparsenorm.h>

int main() {
  std::vector<float> table = {3, 4, 1, 0, 6, 8};  // 3 rows x 2
  const std::vector<std::int64_t> rows = {0, 2, 2};
  sparsenorm::RowStats stats;
  const sparsenorm::Status s = sparsenorm::NormalizeRows(
      sparsenorm::MakeTable(table.data(), 3, 2), sparsenorm::Indices(std::span<const std::int64_t>(rows)),
      {}, &stats);
  const bool ok = s.ok() && stats.distinct_rows == 2 && stats.rows_scaled == 2 &&
                  std::fabs(table[0] - 0.6f) < 1e-6f && std::fabs(table[5] - 0.8f) < 1e-6f &&
                  table[2] == 1.0f;
  std::printf("sparsenorm %s consumer: %s\n", SPARSENORM_VERSION_STRING, ok ? "ok" : s.message().c_str());
  return ok ? 0 : 1;
}
