// Matrix Market exchange files (https://math.nist.gov/MatrixMarket/formats.html),
// the sparse "coordinate" kind:
//   %%MatrixMarket matrix coordinate <field> <symmetry>
//   % comments
//   M N L
//   i j [value]            (L lines, 1-based indices)
//
// Supported: field real, integer or pattern (pattern entries read as 1);
// symmetry general, symmetric or skew-symmetric. A symmetric or skew-
// symmetric file stores one triangle; it is expanded to both on reading
// (normalizing columns breaks the symmetry, so results are always written as
// "real general"). Refused with a message: the dense "array" kind, complex
// and hermitian matrices, upper-triangle entries of a symmetric file (the
// format stores the lower triangle), diagonal entries of a skew-symmetric
// one, indices outside [1, M] x [1, N], a line count other than L, extra
// fields, integers that overflow 64 bits, non-integer values in an integer
// file. Blank lines are allowed anywhere after the banner; values may be
// nan or inf. Banner words are case-insensitive, as the format says.
#ifndef SPARSENORM_TOOLS_FORMATS_MTX_H_
#define SPARSENORM_TOOLS_FORMATS_MTX_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sparsenorm::formats {

enum class MtxField : std::uint8_t { kReal, kInteger, kPattern };
enum class MtxSymmetry : std::uint8_t { kGeneral, kSymmetric, kSkewSymmetric };

struct MatrixMarket {
  MtxField field = MtxField::kReal;
  MtxSymmetry symmetry = MtxSymmetry::kGeneral;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t entries_in_file = 0;          // L
  std::vector<std::string_view> comments;    // lines after the banner that start with %
  std::vector<std::int64_t> row, col;        // 0-based, both triangles
  std::vector<double> values;
};

// Parses the file `text`; the comments point into it. `progress`, when set,
// is called now and then with the number of bytes parsed.
MatrixMarket ParseMatrixMarket(std::span<const std::uint8_t> text,
                               const std::function<void(std::uint64_t)>& progress = {});

// Writes a "coordinate real general" file: the banner, `comments`, the size
// line and the first `nnz` entries, values in the shortest form that reads
// back as the same double, to `sink` in pieces.
void WriteMatrixMarket(std::int64_t rows, std::int64_t cols, std::int64_t nnz,
                       const std::int64_t* row, const std::int64_t* col, const double* values,
                       const std::vector<std::string_view>& comments,
                       const std::function<void(std::string_view)>& sink);

}  // namespace sparsenorm::formats

#endif  // SPARSENORM_TOOLS_FORMATS_MTX_H_
