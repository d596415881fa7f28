// libFuzzer target: the Matrix Market parser. Any input must either give
// entries inside the matrix, as many as the file declares (twice the
// off-diagonal ones for a symmetric file), or throw FormatError. A parsed
// matrix must survive a round trip through the writer.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "formats/error.h"
#include "formats/mtx.h"

using namespace sparsenorm::formats;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  MatrixMarket m;
  try {
    m = ParseMatrixMarket({data, size});
  } catch (const FormatError&) {
    return 0;
  }
  const std::size_t n = m.values.size();
  if (m.row.size() != n || m.col.size() != n) std::abort();
  if (n < static_cast<std::size_t>(m.entries_in_file) || n > 2 * static_cast<std::size_t>(m.entries_in_file)) {
    std::abort();
  }
  for (std::size_t k = 0; k < n; ++k) {
    if (m.row[k] < 0 || m.row[k] >= m.rows || m.col[k] < 0 || m.col[k] >= m.cols) std::abort();
  }
  std::string text;
  WriteMatrixMarket(m.rows, m.cols, static_cast<std::int64_t>(n), m.row.data(), m.col.data(),
                    m.values.data(), m.comments, [&](std::string_view piece) { text += piece; });
  const MatrixMarket again = ParseMatrixMarket({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  if (again.values.size() != n || again.rows != m.rows || again.cols != m.cols) std::abort();
  for (std::size_t k = 0; k < n; ++k) {
    const double a = m.values[k], b = again.values[k];
    if (again.row[k] != m.row[k] || again.col[k] != m.col[k]) std::abort();
    if (!(a == b || (std::isnan(a) && std::isnan(b)))) std::abort();
  }
  return 0;
}
