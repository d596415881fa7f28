// SciPy sparse matrices in .npz archives, as scipy.sparse.save_npz writes
// them: a zip archive (stored or deflated, as np.savez or
// np.savez_compressed writes it) of .npy members
//   format.npy   a 0-d byte string (|S3): "csr", "csc" or "coo"
//   shape.npy    two integers (rows, cols)
//   data.npy     the stored values, 1-D
//   indices.npy, indptr.npy   for CSR and CSC
//   row.npy, col.npy          for COO
//
// The reader checks the archive with libzip (ZIP_CHECKCONS, CRC of every
// member), accepts only stored or deflated members, bounds each member's
// uncompressed size by what deflate can produce from its compressed size (a
// zip bomb is refused before anything is allocated), parses every member
// with the .npy parser, and checks the matrix: dtypes (floating values,
// int32/int64 indices), lengths, index pointers that start at 0, never
// decrease and end at nnz, every row and column index inside the shape.
// Members other than those above are refused; BSR and DIA matrices are
// refused with a hint to convert them.
#ifndef SPARSENORM_TOOLS_FORMATS_NPZ_H_
#define SPARSENORM_TOOLS_FORMATS_NPZ_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/npy.h"
#include "sparsenorm/matrix.h"

namespace sparsenorm::formats {

// A whole .npy file held in memory, e.g. one member of an archive.
struct NpyBuffer {
  std::unique_ptr<std::uint8_t[]> bytes;
  std::size_t size = 0;
  NpyHeader header;

  bool empty() const { return bytes == nullptr; }
  std::uint8_t* data() { return bytes.get() + header.data_offset; }
  const std::uint8_t* data() const { return bytes.get() + header.data_offset; }
  std::int64_t length() const { return header.shape.empty() ? 1 : header.shape[0]; }
};

// Element i of a signed or unsigned integer array of 1 to 8 bytes.
std::int64_t IntegerAt(const NpyBuffer& array, std::int64_t i);

struct NpzLimits {
  // Refuse members larger than this when uncompressed (the fuzzers set it
  // low; the tool relies on the deflate bound and on the memory it gets).
  std::uint64_t max_member_bytes = ~std::uint64_t{0};
};

struct SparseNpz {
  SparseFormat format = SparseFormat::kCSR;
  std::string format_name;  // "csr", "csc" or "coo"
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t nnz = 0;
  bool compressed = false;  // any member deflated
  NpyBuffer data, indices, indptr, row, col;
  NpyBuffer format_member, shape_member;  // written back as they were
  std::vector<std::string> member_order;  // names as they appear in the archive
};

SparseNpz ReadSparseNpz(std::span<const std::uint8_t> archive, const NpyOptions& options = {},
                        const NpzLimits& limits = {});

// Writes `m` as an archive, deflated when m.compressed, to `sink` in pieces.
// The first `nnz` entries of data and of the index arrays are written (nnz
// may be below m.nnz after pruning); indptr, format and shape as they are.
void WriteSparseNpz(const SparseNpz& m, std::int64_t nnz,
                    const std::function<void(std::span<const std::uint8_t>)>& sink);

}  // namespace sparsenorm::formats

#endif  // SPARSENORM_TOOLS_FORMATS_NPZ_H_
