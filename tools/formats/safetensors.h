// .safetensors files (https://github.com/huggingface/safetensors, format
// description in its README): an 8-byte little-endian header length N, N
// bytes of UTF-8 JSON, then the data section. The JSON maps each tensor name
// to {"dtype": "F32", "shape": [r, c], "data_offsets": [begin, end]} with
// offsets relative to the data section, plus an optional "__metadata__"
// object of string values.
//
// The parser checks, before any tensor byte is touched:
//   - N <= kMaxSafetensorsHeader (the reference implementation's limit) and
//     8 + N <= the file size; the JSON starts with '{';
//   - no key appears twice at any level, nesting is at most 3 deep, every
//     entry has exactly the three fields with the right JSON types;
//   - each dimension and their product fit in 64 bits, and end - begin is
//     the product times the element size for every known dtype;
//   - the tensors, sorted by offset, cover the data section exactly: no
//     overlap, no hole, nothing after the last one (the format forbids
//     holes so that a file cannot hide a second one inside it).
// Tensors of dtypes unknown to this parser are kept (their size cannot be
// checked); sparsenorm only computes on F32, F64, F16 and BF16.
#ifndef SPARSENORM_TOOLS_FORMATS_SAFETENSORS_H_
#define SPARSENORM_TOOLS_FORMATS_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sparsenorm/types.h"

namespace sparsenorm::formats {

inline constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

struct SafetensorsTensor {
  std::string name;
  std::string dtype;                // as written, e.g. "BF16"
  std::size_t itemsize = 0;         // 0 for a dtype this parser does not know
  std::optional<DType> float_type;  // F32, F64, F16, BF16
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // absolute offsets in the file
  std::uint64_t end = 0;
};

struct SafetensorsFile {
  std::uint64_t header_size = 0;
  std::uint64_t data_start = 0;             // 8 + header_size
  std::vector<SafetensorsTensor> tensors;   // sorted by offset
  std::map<std::string, std::string> metadata;

  // The tensor called `name`, or nullptr.
  const SafetensorsTensor* Find(const std::string& name) const;
};

SafetensorsFile ParseSafetensors(std::span<const std::uint8_t> file);

// "BF16 [1000, 64]"-style description for messages.
std::string DescribeTensor(const SafetensorsTensor& tensor);

}  // namespace sparsenorm::formats

#endif  // SPARSENORM_TOOLS_FORMATS_SAFETENSORS_H_
