// libFuzzer target: .npz archives (libzip, then the .npy parser on each
// member, then the sparse-matrix checks). Any input must either give a
// matrix whose index arrays are valid for its shape, or throw FormatError.
// A valid matrix must survive a round trip through the writer.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "formats/error.h"
#include "formats/npz.h"

using namespace sparsenorm::formats;
using sparsenorm::SparseFormat;

namespace {

void CheckValid(const SparseNpz& m) {
  if (m.rows < 0 || m.cols < 0 || m.nnz != m.data.length()) std::abort();
  if (m.format == SparseFormat::kCOO) {
    for (std::int64_t k = 0; k < m.nnz; ++k) {
      const std::int64_t r = IntegerAt(m.row, k), c = IntegerAt(m.col, k);
      if (r < 0 || r >= m.rows || c < 0 || c >= m.cols) std::abort();
    }
    return;
  }
  const bool csr = m.format == SparseFormat::kCSR;
  const std::int64_t major = csr ? m.rows : m.cols, minor = csr ? m.cols : m.rows;
  if (m.indptr.length() != major + 1 || IntegerAt(m.indptr, 0) != 0 || IntegerAt(m.indptr, major) != m.nnz) {
    std::abort();
  }
  for (std::int64_t i = 0; i < major; ++i) {
    for (std::int64_t k = IntegerAt(m.indptr, i); k < IntegerAt(m.indptr, i + 1); ++k) {
      const std::int64_t j = IntegerAt(m.indices, k);
      if (j < 0 || j >= minor) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  SparseNpz m;
  const NpzLimits limits{.max_member_bytes = std::uint64_t{16} << 20};
  try {
    m = ReadSparseNpz({data, size}, {}, limits);
  } catch (const FormatError&) {
    return 0;
  }
  CheckValid(m);
  std::vector<std::uint8_t> archive;
  WriteSparseNpz(m, m.nnz, [&](std::span<const std::uint8_t> piece) {
    archive.insert(archive.end(), piece.begin(), piece.end());
  });
  const SparseNpz again = ReadSparseNpz(archive, {}, limits);  // must not throw
  CheckValid(again);
  if (again.rows != m.rows || again.cols != m.cols || again.nnz != m.nnz || again.format != m.format ||
      again.compressed != m.compressed) {
    std::abort();
  }
  return 0;
}
