// NumPy .npy files (format versions 1.0, 2.0 and 3.0): the header parser
// and writer.
//
// A .npy file is a 6-byte magic string, a version, a little-endian header
// length (2 bytes in version 1, 4 in versions 2 and 3), a header that is a
// Python dict literal such as
//     {'descr': '<f4', 'fortran_order': False, 'shape': (1000, 64), }
// padded with spaces and ended by a newline, then the raw elements.
//
// The parser accepts exactly that grammar (the three keys once each, string,
// boolean and integer-tuple values, optional trailing commas, Python 2's
// 'L' suffix on integers) and checks, before any element is touched:
//   - the header length against kMaxNpyHeader and the file size;
//   - every dimension and their product against 64-bit overflow;
//   - that the data fill the rest of the file exactly (a truncated file and
//     one with trailing bytes are both rejected).
//
// Element types: little-endian (or byte-order-free) floats f2 f4 f8, signed
// and unsigned integers of 1 to 8 bytes, b1, byte strings S<n>, unicode
// strings U<n>, opaque V<n>. NumPy has no bfloat16; see ParseNpyHeader for
// how bfloat16 tables are recognized.
#ifndef SPARSENORM_TOOLS_FORMATS_NPY_H_
#define SPARSENORM_TOOLS_FORMATS_NPY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sparsenorm/types.h"

namespace sparsenorm::formats {

// NumPy's own reader refuses headers over 10,000 bytes by default; version 1
// cannot describe more than 65,535. A 2-D array needs under 200.
inline constexpr std::size_t kMaxNpyHeader = 65536;
inline constexpr int kMaxNpyDims = 32;  // NumPy's NPY_MAXDIMS

enum class ElementKind : std::uint8_t {
  kFloat,     // f2 f4 f8, and bfloat16
  kSigned,    // i1 i2 i4 i8
  kUnsigned,  // u1 u2 u4 u8
  kBool,      // b1
  kBytes,     // S<n>
  kUnicode,   // U<n> (UTF-32, 4 bytes per character)
  kVoid,      // V<n>
};

struct NpyOptions {
  // np.save writes an ml_dtypes.bfloat16 array with descr '<V2' (or '|V2'):
  // two opaque bytes, since NumPy's type codes cannot name bfloat16. Such a
  // file is read as bfloat16 only when the caller says so; the descr
  // 'bfloat16' (what ml_dtypes calls the type) is always read as bfloat16.
  bool void2_is_bfloat16 = false;
};

struct NpyHeader {
  int major_version = 1;
  std::string descr;  // as written, e.g. "<f4"
  ElementKind kind = ElementKind::kFloat;
  std::size_t itemsize = 0;
  std::optional<DType> float_type;  // set for the four types sparsenorm computes on
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
  std::uint64_t count = 0;  // product of shape (1 for a 0-d array)
  std::size_t data_offset = 0;
  std::uint64_t data_bytes = 0;
};

// Parses and checks the header of the .npy file `file` (the whole file).
// Throws FormatError naming what is wrong and where.
NpyHeader ParseNpyHeader(std::span<const std::uint8_t> file, const NpyOptions& options = {});

// The bytes of a version 1.0 header (version 2.0 when it does not fit),
// padded as NumPy pads it so the data start on a 64-byte boundary.
std::string MakeNpyHeader(std::string_view descr, bool fortran_order,
                          std::span<const std::int64_t> shape);

// "float32 (1000, 64)"-style description for messages.
std::string DescribeNpy(const NpyHeader& header);

}  // namespace sparsenorm::formats

#endif  // SPARSENORM_TOOLS_FORMATS_NPY_H_
