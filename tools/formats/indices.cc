#include "formats/indices.h"

#include <charconv>
#include <cstring>
#include <string>
#include <string_view>

#include "formats/error.h"
#include "formats/npy.h"

namespace sparsenorm::formats {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string Range(std::int64_t rows) { return "[0, " + std::to_string(rows) + ")"; }

}  // namespace

std::vector<std::int64_t> ParseIndexText(std::span<const std::uint8_t> bytes, std::int64_t rows) {
  const std::string_view s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::vector<std::int64_t> out;
  std::size_t pos = 0;
  std::int64_t line_no = 0;
  while (pos < s.size()) {
    const std::size_t nl = s.find('\n', pos);
    const std::size_t stop = nl == std::string_view::npos ? s.size() : nl;
    std::string_view line = s.substr(pos, stop - pos);
    pos = nl == std::string_view::npos ? s.size() : nl + 1;
    ++line_no;
    while (!line.empty() && IsSpace(line.front())) line.remove_prefix(1);
    while (!line.empty() && IsSpace(line.back())) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
    if (ec == std::errc::result_out_of_range) {
      throw FormatError("line " + std::to_string(line_no) + " of the index file holds " +
                        Quote(line, 40) + ", which does not fit in 64 bits.");
    }
    if (ec != std::errc() || end != line.data() + line.size()) {
      throw FormatError("line " + std::to_string(line_no) + " of the index file holds " +
                        Quote(line, 40) + ", not one integer.");
    }
    if (v < 0 || v >= rows) {
      throw FormatError("line " + std::to_string(line_no) + " of the index file holds the index " +
                        std::to_string(v) + ", outside the table's rows " + Range(rows) + ".");
    }
    out.push_back(v);
  }
  return out;
}

std::vector<std::int64_t> ParseIndexNpy(std::span<const std::uint8_t> file, std::int64_t rows) {
  const NpyHeader h = ParseNpyHeader(file);
  if (h.shape.size() != 1) {
    throw FormatError("the index array is not 1-D (" + DescribeNpy(h) + ").");
  }
  if (h.kind != ElementKind::kSigned && h.kind != ElementKind::kUnsigned) {
    throw FormatError("the index array does not hold integers (" + DescribeNpy(h) + ").");
  }
  std::vector<std::int64_t> out(static_cast<std::size_t>(h.count));
  const std::uint8_t* p = file.data() + h.data_offset;
  const bool is_signed = h.kind == ElementKind::kSigned;
  for (std::size_t i = 0; i < out.size(); ++i, p += h.itemsize) {
    std::int64_t v;
    bool too_big = false;
    switch (h.itemsize) {
      case 1: {
        std::uint8_t x;
        std::memcpy(&x, p, 1);
        v = is_signed ? static_cast<std::int8_t>(x) : x;
        break;
      }
      case 2: {
        std::uint16_t x;
        std::memcpy(&x, p, 2);
        v = is_signed ? static_cast<std::int16_t>(x) : x;
        break;
      }
      case 4: {
        std::uint32_t x;
        std::memcpy(&x, p, 4);
        v = is_signed ? static_cast<std::int64_t>(static_cast<std::int32_t>(x))
                      : static_cast<std::int64_t>(x);
        break;
      }
      default: {
        std::uint64_t x;
        std::memcpy(&x, p, 8);
        too_big = !is_signed && x > static_cast<std::uint64_t>(INT64_MAX);
        v = static_cast<std::int64_t>(x);
        break;
      }
    }
    if (too_big || v < 0 || v >= rows) {
      throw FormatError("index " + std::to_string(i) + " of the index array is " +
                        (too_big ? std::string("beyond 2^63") : std::to_string(v)) +
                        ", outside the table's rows " + Range(rows) + ".");
    }
    out[i] = v;
  }
  return out;
}

}  // namespace sparsenorm::formats
