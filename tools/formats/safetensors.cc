#include "formats/safetensors.h"

#include <algorithm>
#include <limits>
#include <set>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/element_types.h"
#include "formats/error.h"

namespace sparsenorm::formats {
namespace {

using nlohmann::json;

// The element types of the format and their sizes; those sparsenorm
// computes on are found by name in src/common/element_types.h.
struct FileType {
  const char* name;
  std::size_t size;
};

constexpr FileType kFileTypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};

[[noreturn]] void Fail(const std::string& what) {
  throw FormatError("the safetensors header is invalid: " + what + ".");
}

std::uint64_t Unsigned(const json& v, const std::string& where) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
    Fail(where + " is not a non-negative integer");
  }
  const std::uint64_t u = v.get<std::uint64_t>();
  if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    Fail(where + " does not fit in 63 bits");
  }
  return u;
}

SafetensorsTensor ParseEntry(const std::string& name, const json& entry) {
  const std::string where = "tensor " + Quote(name);
  if (!entry.is_object()) Fail("the entry of " + where + " is not an object");
  for (const auto& [key, value] : entry.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      Fail(where + " has the unexpected field " + Quote(key));
    }
  }
  if (!entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets")) {
    Fail(where + " lacks one of the fields dtype, shape, data_offsets");
  }
  SafetensorsTensor t;
  t.name = name;
  const json& dtype = entry["dtype"];
  if (!dtype.is_string()) Fail("the dtype of " + where + " is not a string");
  t.dtype = dtype.get<std::string>();
  for (const FileType& type : kFileTypes) {
    if (t.dtype == type.name) t.itemsize = type.size;
  }
  if (const DTypeInfo* info = FindDTypeBySafetensors(t.dtype)) {
    t.itemsize = info->size;
    t.float_type = info->dtype;
  }
  if (t.itemsize == 0) {
    // A dtype this parser does not know (the format grows new ones): allowed
    // for tensors the tool does not touch, if the name is plausible.
    const bool plausible =
        !t.dtype.empty() && t.dtype.size() <= 16 &&
        std::all_of(t.dtype.begin(), t.dtype.end(), [](char c) {
          return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        });
    if (!plausible) Fail(where + " has the invalid dtype " + Quote(t.dtype));
  }
  const json& shape = entry["shape"];
  if (!shape.is_array()) Fail("the shape of " + where + " is not an array");
  if (shape.size() > 32) Fail("the shape of " + where + " has more than 32 dimensions");
  std::uint64_t count = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::uint64_t d = Unsigned(shape[i], "dimension " + std::to_string(i) + " of " + where);
    t.shape.push_back(static_cast<std::int64_t>(d));
    if (__builtin_mul_overflow(count, d, &count)) {
      Fail("the element count of " + where + " does not fit in 64 bits");
    }
  }
  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    Fail("the data_offsets of " + where + " are not a [begin, end] pair");
  }
  t.begin = Unsigned(offsets[0], "the begin offset of " + where);
  t.end = Unsigned(offsets[1], "the end offset of " + where);
  if (t.end < t.begin) {
    Fail(where + " ends (" + std::to_string(t.end) + ") before it begins (" +
         std::to_string(t.begin) + ")");
  }
  if (t.itemsize != 0) {
    std::uint64_t bytes;
    if (__builtin_mul_overflow(count, std::uint64_t{t.itemsize}, &bytes) ||
        bytes != t.end - t.begin) {
      Fail(where + " (" + DescribeTensor(t) + ") needs " +
           (bytes / t.itemsize == count ? std::to_string(bytes) : std::string("more than 2^64")) +
           " bytes but its data_offsets span " + std::to_string(t.end - t.begin));
    }
  }
  return t;
}

}  // namespace

const SafetensorsTensor* SafetensorsFile::Find(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

SafetensorsFile ParseSafetensors(std::span<const std::uint8_t> file) {
  if (file.size() < 8) {
    throw FormatError("the file is too short to be a safetensors file (" +
                      std::to_string(file.size()) + " bytes).");
  }
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | file[static_cast<std::size_t>(i)];
  if (n > kMaxSafetensorsHeader) {
    throw FormatError("the safetensors header length " + std::to_string(n) +
                      " exceeds the limit of " + std::to_string(kMaxSafetensorsHeader) + " bytes.");
  }
  if (n > file.size() - 8) {
    throw FormatError("the safetensors file is truncated: its header needs " + std::to_string(n) +
                      " bytes but only " + std::to_string(file.size() - 8) + " follow.");
  }
  if (n < 2 || file[8] != '{') Fail("it does not start with '{'");
  const auto* begin = reinterpret_cast<const char*>(file.data() + 8);

  // Duplicate keys and depth are checked while parsing: nlohmann::json keeps
  // the last of two equal keys silently, and a deep nest only wastes memory.
  std::vector<std::set<std::string>> keys_at_depth;
  const json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > 3) Fail("it nests deeper than three levels");
    const auto d = static_cast<std::size_t>(depth);
    if (event == json::parse_event_t::object_start) {
      if (keys_at_depth.size() <= d) keys_at_depth.resize(d + 1);
      keys_at_depth[d].clear();
    } else if (event == json::parse_event_t::key) {
      // A key event's depth is that of the object holding the key.
      const std::size_t level = d == 0 ? 0 : d - 1;
      if (keys_at_depth.size() <= level) keys_at_depth.resize(level + 1);
      if (!keys_at_depth[level].insert(parsed.get<std::string>()).second) {
        Fail("the key " + Quote(parsed.get<std::string>()) + " appears twice in one object");
      }
    }
    return true;
  };
  json header;
  try {
    header = json::parse(begin, begin + n, check);
  } catch (const json::exception& e) {
    // e.what() names the position; it holds no bytes of the input beyond a
    // short excerpt, which Quote makes printable.
    Fail("it is not valid JSON (" + Quote(e.what(), 160) + ")");
  }
  if (!header.is_object()) Fail("it is not a JSON object");

  SafetensorsFile out;
  out.header_size = n;
  out.data_start = 8 + n;
  const std::uint64_t data_size = file.size() - out.data_start;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) Fail("__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) Fail("the __metadata__ value of " + Quote(k) + " is not a string");
        out.metadata.emplace(k, v.get<std::string>());
      }
      continue;
    }
    SafetensorsTensor t = ParseEntry(name, entry);
    if (t.end > data_size) {
      Fail("tensor " + Quote(name) + " ends at byte " + std::to_string(t.end) +
           " of a data section of " + std::to_string(data_size) + " bytes");
    }
    t.begin += out.data_start;
    t.end += out.data_start;
    out.tensors.push_back(std::move(t));
  }
  std::sort(out.tensors.begin(), out.tensors.end(), [](const auto& a, const auto& b) {
    return std::pair(a.begin, a.end) < std::pair(b.begin, b.end);
  });
  std::uint64_t cursor = out.data_start;
  const SafetensorsTensor* previous = nullptr;
  for (const auto& t : out.tensors) {
    if (t.begin < cursor) {
      Fail("tensors " + Quote(previous->name) + " and " + Quote(t.name) + " overlap");
    }
    if (t.begin > cursor) {
      Fail("the data section has a hole of " + std::to_string(t.begin - cursor) +
           " bytes before tensor " + Quote(t.name));
    }
    cursor = t.end;
    previous = &t;
  }
  if (cursor != file.size()) {
    Fail("the data section has " + std::to_string(file.size() - cursor) +
         " bytes that no tensor describes");
  }
  return out;
}

std::string DescribeTensor(const SafetensorsTensor& t) {
  std::string s = Quote(t.dtype, 16) + " [";
  for (std::size_t i = 0; i < t.shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(t.shape[i]);
  }
  return s + "]";
}

}  // namespace sparsenorm::formats
