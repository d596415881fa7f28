// libFuzzer target: .npz archives (libzip, then the .npy parser on each
// member, then the sparse-matrix checks). Any input must either give a
// matrix whose index arrays are valid for its shape, or throw FormatError.
// A valid matrix must survive a round trip through the writer.
//
// Two kinds of input: a raw archive, or, when the input starts with "M",
// the members themselves ("M", a byte choosing CSR or COO member names,
// then the members separated by "@@"), which the target zips (stored)
// before parsing. Random bytes almost never survive a zip CRC check, so
// without the second kind the matrix checks behind it would see little.
#include <zip.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
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

// Zips the members of an "M" input; empty when libzip refuses.
std::vector<std::uint8_t> ZipMembers(const std::uint8_t* data, std::size_t size) {
  static const char* kNames[2][5] = {{"format.npy", "shape.npy", "data.npy", "indices.npy", "indptr.npy"},
                                     {"format.npy", "shape.npy", "data.npy", "row.npy", "col.npy"}};
  const char* const* names = kNames[data[1] & 1];
  std::vector<std::string_view> members;
  std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
  while (members.size() < 5) {
    const std::size_t at = rest.find("@@");
    members.push_back(rest.substr(0, at));
    if (at == std::string_view::npos) break;
    rest.remove_prefix(at + 2);
  }
  std::vector<std::uint8_t> out;
  zip_source_t* src = zip_source_buffer_create(nullptr, 0, 0, nullptr);
  if (src == nullptr) return out;
  zip_source_keep(src);
  zip_t* za = zip_open_from_source(src, ZIP_TRUNCATE, nullptr);
  if (za == nullptr) {
    zip_source_free(src);
    zip_source_free(src);
    return out;
  }
  for (std::size_t i = 0; i < members.size(); ++i) {
    zip_source_t* s = zip_source_buffer(za, members[i].data(), members[i].size(), 0);
    const zip_int64_t index = s == nullptr ? -1 : zip_file_add(za, names[i], s, 0);
    if (index < 0) {
      if (s != nullptr) zip_source_free(s);
      zip_discard(za);
      zip_source_free(src);
      return out;
    }
    zip_set_file_compression(za, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
  }
  if (zip_close(za) != 0) {
    zip_discard(za);
    zip_source_free(src);
    return out;
  }
  if (zip_source_open(src) == 0) {
    std::uint8_t chunk[4096];
    zip_int64_t n;
    while ((n = zip_source_read(src, chunk, sizeof chunk)) > 0) out.insert(out.end(), chunk, chunk + n);
    zip_source_close(src);
  }
  zip_source_free(src);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> zipped;
  if (size >= 2 && data[0] == 'M') {
    zipped = ZipMembers(data, size);
    data = zipped.data();
    size = zipped.size();
  }
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
