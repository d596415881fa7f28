#include "formats/npy.h"

#include <bit>
#include <limits>

#include "common/element_types.h"
#include "formats/error.h"

namespace sparsenorm::formats {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the file formats are read on little-endian hosts only");

// A recursive-descent reader of the one Python literal a .npy header holds.
class HeaderReader {
 public:
  explicit HeaderReader(std::string_view text) : s_(text) {}

  [[noreturn]] void Fail(const std::string& what) const {
    throw FormatError("the .npy header is malformed at byte " + std::to_string(pos_) + ": " +
                      what + ".");
  }

  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' ||
                                s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Peek(char c) {
    SkipSpace();
    return pos_ < s_.size() && s_[pos_] == c;
  }

  bool Consume(char c) {
    if (!Peek(c)) return false;
    ++pos_;
    return true;
  }

  void Expect(char c, const char* what) {
    if (!Consume(c)) Fail(std::string("expected ") + what);
  }

  std::string String() {
    SkipSpace();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) Fail("expected a quoted string");
    const char quote = s_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) Fail("a string is not closed");
      const char c = s_[pos_++];
      if (c == quote) break;
      if (c == '\\') Fail("escapes in strings are not supported");
      if (static_cast<unsigned char>(c) < 0x20) Fail("a control character is in a string");
      if (out.size() >= 64) Fail("a string is longer than 64 characters");
      out += c;
    }
    return out;
  }

  bool Bool() {
    SkipSpace();
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      const std::string_view w(word);
      if (s_.substr(pos_, w.size()) == w) {
        pos_ += w.size();
        return value;
      }
    }
    Fail("expected True or False");
  }

  std::int64_t Integer() {
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == '-') Fail("a dimension is negative");
    if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') Fail("expected an integer");
    std::int64_t v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      const int digit = s_[pos_++] - '0';
      if (v > (std::numeric_limits<std::int64_t>::max() - digit) / 10) {
        Fail("a dimension does not fit in 64 bits");
      }
      v = v * 10 + digit;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'L' || s_[pos_] == 'l')) ++pos_;  // Python 2
    return v;
  }

  std::vector<std::int64_t> Tuple() {
    Expect('(', "a tuple for the shape");
    std::vector<std::int64_t> dims;
    bool comma = false;
    while (!Consume(')')) {
      if (!dims.empty() && !comma) Fail("expected ',' or ')' in the shape");
      if (static_cast<int>(dims.size()) == kMaxNpyDims) {
        Fail("the shape has more than " + std::to_string(kMaxNpyDims) + " dimensions");
      }
      dims.push_back(Integer());
      comma = Consume(',');
    }
    if (dims.size() == 1 && !comma) Fail("the shape (n) is not a tuple; (n,) is");
    return dims;
  }

  bool AtEnd() {
    SkipSpace();
    return pos_ == s_.size();
  }

  std::size_t pos() const { return pos_; }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

void ParseDescr(const std::string& descr, const NpyOptions& options, NpyHeader* h) {
  const std::string quoted = Quote(descr);
  // A descr without a byte order that names a storage type: ml_dtypes'
  // "bfloat16" (src/common/element_types.h).
  if (const DTypeInfo* info = FindDTypeByNpyDescr(descr)) {
    h->kind = ElementKind::kFloat;
    h->itemsize = info->size;
    h->float_type = info->dtype;
    return;
  }
  std::string_view d(descr);
  char order = '=';
  if (!d.empty() && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=')) {
    order = d[0];
    d.remove_prefix(1);
  }
  if (d.size() < 2 || d.size() > 8) {
    throw FormatError("the .npy dtype " + quoted + " is not supported.");
  }
  const char code = d[0];
  std::size_t n = 0;
  for (const char c : d.substr(1)) {
    if (c < '0' || c > '9') throw FormatError("the .npy dtype " + quoted + " is not supported.");
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  if (n == 0) throw FormatError("the .npy dtype " + quoted + " has elements of size 0.");
  auto need = [&](std::initializer_list<std::size_t> sizes) {
    for (const std::size_t s : sizes) {
      if (n == s) return;
    }
    throw FormatError("the .npy dtype " + quoted + " is not supported.");
  };
  switch (code) {
    case 'f':
      need({2, 4, 8});
      h->kind = ElementKind::kFloat;
      h->itemsize = n;
      if (const DTypeInfo* info = FindDTypeByNpyDescr(d)) h->float_type = info->dtype;
      break;
    case 'i':
    case 'u':
      need({1, 2, 4, 8});
      h->kind = code == 'i' ? ElementKind::kSigned : ElementKind::kUnsigned;
      h->itemsize = n;
      break;
    case 'b':
      need({1});
      h->kind = ElementKind::kBool;
      h->itemsize = 1;
      break;
    case 'S':
      h->kind = ElementKind::kBytes;
      h->itemsize = n;
      break;
    case 'U':
      h->kind = ElementKind::kUnicode;
      h->itemsize = 4 * n;
      break;
    case 'V':
      h->kind = ElementKind::kVoid;
      h->itemsize = n;
      if (n == 2 && options.void2_is_bfloat16) {
        h->kind = ElementKind::kFloat;
        h->float_type = DType::kBFloat16;
      }
      break;
    default:
      throw FormatError("the .npy dtype " + quoted + " is not supported.");
  }
  const std::size_t unit = h->kind == ElementKind::kUnicode ? 4 : h->itemsize;
  if (order == '>' && unit > 1) {
    throw FormatError("the .npy dtype " + quoted +
                      " is big-endian; convert it with arr.astype(arr.dtype.newbyteorder('<')).");
  }
}

}  // namespace

NpyHeader ParseNpyHeader(std::span<const std::uint8_t> file, const NpyOptions& options) {
  static constexpr std::uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (file.size() < 10) {
    throw FormatError("the file is too short to be a .npy file (" + std::to_string(file.size()) +
                      " bytes).");
  }
  if (!std::equal(std::begin(kMagic), std::end(kMagic), file.begin())) {
    throw FormatError("the file does not start with the .npy magic string \\x93NUMPY.");
  }
  NpyHeader h;
  h.major_version = file[6];
  if ((h.major_version < 1 || h.major_version > 3) || file[7] != 0) {
    throw FormatError("the .npy format version " + std::to_string(file[6]) + "." +
                      std::to_string(file[7]) + " is not supported (1.0, 2.0 and 3.0 are).");
  }
  std::size_t header_len;
  std::size_t start;
  if (h.major_version == 1) {
    header_len = file[8] | (std::size_t{file[9]} << 8);
    start = 10;
  } else {
    if (file.size() < 12) throw FormatError("the .npy file is truncated inside its preamble.");
    header_len = file[8] | (std::size_t{file[9]} << 8) | (std::size_t{file[10]} << 16) |
                 (std::size_t{file[11]} << 24);
    start = 12;
  }
  if (header_len > kMaxNpyHeader) {
    throw FormatError("the .npy header length " + std::to_string(header_len) +
                      " exceeds the limit of " + std::to_string(kMaxNpyHeader) + " bytes.");
  }
  if (header_len > file.size() - start) {
    throw FormatError("the .npy file is truncated: its header needs " + std::to_string(header_len) +
                      " bytes but only " + std::to_string(file.size() - start) + " follow.");
  }
  const std::string_view text(reinterpret_cast<const char*>(file.data() + start), header_len);
  HeaderReader r(text);
  r.Expect('{', "'{' at the start of the header");
  bool have_descr = false, have_order = false, have_shape = false;
  bool comma = true;
  while (!r.Consume('}')) {
    if (!comma) r.Fail("expected ',' or '}'");
    const std::string key = r.String();
    r.Expect(':', "':' after a key");
    bool* seen = nullptr;
    if (key == "descr") {
      seen = &have_descr;
      if (r.Peek('[')) {
        throw FormatError("the .npy file holds a structured dtype, which is not supported.");
      }
      h.descr = r.String();
    } else if (key == "fortran_order") {
      seen = &have_order;
      h.fortran_order = r.Bool();
    } else if (key == "shape") {
      seen = &have_shape;
      h.shape = r.Tuple();
    } else {
      r.Fail("unexpected key " + Quote(key));
    }
    if (*seen) r.Fail("the key " + Quote(key) + " appears twice");
    *seen = true;
    comma = r.Consume(',');
  }
  if (!r.AtEnd()) r.Fail("unexpected text after the closing '}'");
  if (!have_descr || !have_order || !have_shape) {
    throw FormatError("the .npy header lacks the key '" +
                      std::string(!have_descr ? "descr" : !have_order ? "fortran_order" : "shape") +
                      "'.");
  }
  ParseDescr(h.descr, options, &h);

  std::uint64_t count = 1;
  for (const std::int64_t d : h.shape) {
    if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(d), &count)) {
      throw FormatError("the .npy shape has more elements than fit in 64 bits.");
    }
  }
  std::uint64_t bytes;
  if (__builtin_mul_overflow(count, std::uint64_t{h.itemsize}, &bytes)) {
    throw FormatError("the .npy array's size in bytes does not fit in 64 bits.");
  }
  h.count = count;
  h.data_bytes = bytes;
  h.data_offset = start + header_len;
  const std::uint64_t available = file.size() - h.data_offset;
  if (bytes > available) {
    throw FormatError("the .npy file is truncated: its header announces " + DescribeNpy(h) + ", " +
                      std::to_string(bytes) + " bytes, but only " + std::to_string(available) +
                      " bytes of data follow.");
  }
  if (bytes < available) {
    throw FormatError("the .npy file has " + std::to_string(available - bytes) +
                      " bytes after the data its header announces (" + DescribeNpy(h) + ").");
  }
  return h;
}

std::string MakeNpyHeader(std::string_view descr, bool fortran_order,
                          std::span<const std::int64_t> shape) {
  std::string dict = "{'descr': '" + std::string(descr) + "', 'fortran_order': " +
                     (fortran_order ? "True" : "False") + ", 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) dict += ", ";
    dict += std::to_string(shape[i]);
  }
  if (shape.size() == 1) dict += ",";
  dict += "), }";
  const bool v1 = dict.size() + 1 + 10 <= 65535;
  const std::size_t preamble = v1 ? 10 : 12;
  const std::size_t unpadded = preamble + dict.size() + 1;  // + '\n'
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  const std::size_t len = dict.size();
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>((len >> 8) & 0xff);
  if (!v1) {
    out += static_cast<char>((len >> 16) & 0xff);
    out += static_cast<char>((len >> 24) & 0xff);
  }
  return out + dict;
}

std::string DescribeNpy(const NpyHeader& h) {
  std::string shape = "(";
  for (std::size_t i = 0; i < h.shape.size(); ++i) {
    if (i > 0) shape += ", ";
    shape += std::to_string(h.shape[i]);
  }
  if (h.shape.size() == 1) shape += ",";
  return "dtype " + Quote(h.descr) + ", shape " + shape + ")";
}

}  // namespace sparsenorm::formats
