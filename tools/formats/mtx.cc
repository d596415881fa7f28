#include "formats/mtx.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>

#include "formats/error.h"

namespace sparsenorm::formats {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> text)
      : s_(reinterpret_cast<const char*>(text.data()), text.size()) {}

  // The next line without its newline; false at the end of the file.
  bool Next(std::string_view* line) {
    if (pos_ >= s_.size()) return false;
    const std::size_t end = s_.find('\n', pos_);
    const std::size_t stop = end == std::string_view::npos ? s_.size() : end;
    *line = s_.substr(pos_, stop - pos_);
    pos_ = end == std::string_view::npos ? s_.size() : end + 1;
    ++line_no_;
    return true;
  }

  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return s_.size() - pos_; }
  std::int64_t line_no() const { return line_no_; }

  [[noreturn]] void Fail(const std::string& what) const {
    throw FormatError("the Matrix Market file is invalid at line " + std::to_string(line_no_) +
                      ": " + what + ".");
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
  std::int64_t line_no_ = 0;
};

// Splits `line` into at most N fields; returns how many there are, N + 1
// meaning "more than N".
template <std::size_t N>
std::size_t Split(std::string_view line, std::array<std::string_view, N>* out) {
  std::size_t n = 0;
  std::size_t i = 0;
  while (true) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    if (i == line.size()) return n;
    const std::size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    if (n == N) return N + 1;
    (*out)[n++] = line.substr(start, i - start);
  }
}

bool Blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), IsSpace);
}

std::int64_t Integer(const Reader& r, std::string_view field, const char* what) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (ec == std::errc::result_out_of_range) r.Fail(std::string(what) + " " + Quote(field) + " does not fit in 64 bits");
  if (ec != std::errc() || end != field.data() + field.size()) {
    r.Fail(std::string(what) + " " + Quote(field) + " is not an integer");
  }
  return v;
}

double Real(const Reader& r, std::string_view field) {
  std::string_view f = field;
  if (!f.empty() && f[0] == '+') f.remove_prefix(1);
  double v = 0;
  const auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
  if (ec == std::errc::result_out_of_range && end == f.data() + f.size() && f.size() < 256) {
    // Beyond the range of a double: strtod's answer (+-inf, or 0 and the
    // smallest subnormals for underflow) is what every reader gives.
    const std::string copy(f);
    return std::strtod(copy.c_str(), nullptr);
  }
  if (ec != std::errc() || end != f.data() + f.size()) {
    r.Fail("the value " + Quote(field) + " is not a real number");
  }
  return v;
}

}  // namespace

MatrixMarket ParseMatrixMarket(std::span<const std::uint8_t> text,
                               const std::function<void(std::uint64_t)>& progress) {
  Reader r(text);
  MatrixMarket m;
  std::string_view line;
  if (!r.Next(&line)) throw FormatError("the Matrix Market file is empty.");
  std::array<std::string_view, 5> banner;
  if (Split(line, &banner) != 5 || !EqualsNoCase(banner[0], "%%MatrixMarket")) {
    r.Fail("the first line is not '%%MatrixMarket matrix coordinate <field> <symmetry>'");
  }
  if (!EqualsNoCase(banner[1], "matrix")) r.Fail("the object " + Quote(banner[1]) + " is not 'matrix'");
  if (EqualsNoCase(banner[2], "array")) {
    r.Fail("dense 'array' files are not supported (only 'coordinate'); store a dense matrix as .npy");
  }
  if (!EqualsNoCase(banner[2], "coordinate")) r.Fail("the format " + Quote(banner[2]) + " is not 'coordinate'");
  if (EqualsNoCase(banner[3], "real") || EqualsNoCase(banner[3], "double")) {
    m.field = MtxField::kReal;
  } else if (EqualsNoCase(banner[3], "integer")) {
    m.field = MtxField::kInteger;
  } else if (EqualsNoCase(banner[3], "pattern")) {
    m.field = MtxField::kPattern;
  } else if (EqualsNoCase(banner[3], "complex")) {
    r.Fail("complex matrices are not supported");
  } else {
    r.Fail("the field " + Quote(banner[3]) + " is not real, integer or pattern");
  }
  if (EqualsNoCase(banner[4], "general")) {
    m.symmetry = MtxSymmetry::kGeneral;
  } else if (EqualsNoCase(banner[4], "symmetric")) {
    m.symmetry = MtxSymmetry::kSymmetric;
  } else if (EqualsNoCase(banner[4], "skew-symmetric")) {
    m.symmetry = MtxSymmetry::kSkewSymmetric;
  } else if (EqualsNoCase(banner[4], "hermitian")) {
    r.Fail("hermitian matrices are not supported");
  } else {
    r.Fail("the symmetry " + Quote(banner[4]) + " is not general, symmetric or skew-symmetric");
  }

  // Comments, then the size line.
  std::array<std::string_view, 3> size;
  while (true) {
    if (!r.Next(&line)) throw FormatError("the Matrix Market file ends before its size line.");
    if (!line.empty() && line[0] == '%') {
      std::string_view comment = line;
      if (!comment.empty() && comment.back() == '\r') comment.remove_suffix(1);
      m.comments.push_back(comment);
      continue;
    }
    if (Blank(line)) continue;
    if (Split(line, &size) != 3) r.Fail("the size line is not 'rows columns entries'");
    break;
  }
  m.rows = Integer(r, size[0], "the row count");
  m.cols = Integer(r, size[1], "the column count");
  m.entries_in_file = Integer(r, size[2], "the entry count");
  if (m.rows < 0 || m.cols < 0 || m.entries_in_file < 0) r.Fail("a size is negative");
  if (m.symmetry != MtxSymmetry::kGeneral && m.rows != m.cols) {
    r.Fail("a symmetric or skew-symmetric matrix must be square, not " + std::to_string(m.rows) +
           " x " + std::to_string(m.cols));
  }
  // Every entry takes at least 4 bytes ("1 1" and a newline; the last one 3):
  // a size line cannot make the parser reserve more than the file can hold.
  const std::uint64_t room = r.remaining() / 4 + 1;
  if (static_cast<std::uint64_t>(m.entries_in_file) > room) {
    r.Fail("the size line declares " + std::to_string(m.entries_in_file) +
           " entries but the rest of the file can hold at most " + std::to_string(room));
  }
  const auto declared = static_cast<std::size_t>(m.entries_in_file);
  m.row.reserve(declared);
  m.col.reserve(declared);
  m.values.reserve(declared);

  const std::size_t want = m.field == MtxField::kPattern ? 2 : 3;
  std::array<std::string_view, 3> f;
  std::int64_t seen = 0;
  std::uint64_t next_report = 16u << 20;
  while (seen < m.entries_in_file) {
    if (!r.Next(&line)) {
      throw FormatError("the Matrix Market file is truncated: it ends after " +
                        std::to_string(seen) + " of the " + std::to_string(m.entries_in_file) +
                        " entries its size line declares.");
    }
    if (Blank(line) || line[0] == '%') continue;
    const std::size_t n = Split(line, &f);
    if (n != want) {
      r.Fail("an entry has " + std::string(n > want ? "more" : "fewer") + " than the " +
             std::to_string(want) + " fields a " +
             (m.field == MtxField::kPattern ? "pattern" : "valued") + " entry has");
    }
    const std::int64_t i = Integer(r, f[0], "the row index");
    const std::int64_t j = Integer(r, f[1], "the column index");
    if (i < 1 || i > m.rows) {
      r.Fail("the row index " + std::to_string(i) + " is outside [1, " + std::to_string(m.rows) + "]");
    }
    if (j < 1 || j > m.cols) {
      r.Fail("the column index " + std::to_string(j) + " is outside [1, " + std::to_string(m.cols) + "]");
    }
    if (m.symmetry == MtxSymmetry::kSymmetric && i < j) {
      r.Fail("entry (" + std::to_string(i) + ", " + std::to_string(j) +
             ") is above the diagonal; a symmetric file stores the lower triangle");
    }
    if (m.symmetry == MtxSymmetry::kSkewSymmetric && i <= j) {
      r.Fail("entry (" + std::to_string(i) + ", " + std::to_string(j) +
             ") is not below the diagonal; a skew-symmetric file stores the strict lower triangle");
    }
    double v = 1.0;
    if (m.field == MtxField::kReal) {
      v = Real(r, f[2]);
    } else if (m.field == MtxField::kInteger) {
      v = static_cast<double>(Integer(r, f[2], "the integer value"));
    }
    m.row.push_back(i - 1);
    m.col.push_back(j - 1);
    m.values.push_back(v);
    if (m.symmetry != MtxSymmetry::kGeneral && i != j) {
      m.row.push_back(j - 1);
      m.col.push_back(i - 1);
      m.values.push_back(m.symmetry == MtxSymmetry::kSymmetric ? v : -v);
    }
    ++seen;
    if (progress && r.pos() >= next_report) {
      progress(r.pos());
      next_report = r.pos() + (16u << 20);
    }
  }
  while (r.Next(&line)) {
    if (!Blank(line) && line[0] != '%') {
      r.Fail("there are more entries than the " + std::to_string(m.entries_in_file) +
             " the size line declares");
    }
  }
  if (progress) progress(r.pos());
  return m;
}

void WriteMatrixMarket(std::int64_t rows, std::int64_t cols, std::int64_t nnz,
                       const std::int64_t* row, const std::int64_t* col, const double* values,
                       const std::vector<std::string_view>& comments,
                       const std::function<void(std::string_view)>& sink) {
  fmt::memory_buffer out;
  fmt::format_to(std::back_inserter(out), "%%MatrixMarket matrix coordinate real general\n");
  for (const std::string_view c : comments) fmt::format_to(std::back_inserter(out), "{}\n", c);
  fmt::format_to(std::back_inserter(out), "{} {} {}\n", rows, cols, nnz);
  for (std::int64_t k = 0; k < nnz; ++k) {
    // {} is the shortest text that reads back as the same double.
    fmt::format_to(std::back_inserter(out), "{} {} {}\n", row[k] + 1, col[k] + 1, values[k]);
    if (out.size() >= (std::size_t{1} << 20)) {
      sink({out.data(), out.size()});
      out.clear();
    }
  }
  sink({out.data(), out.size()});
}

}  // namespace sparsenorm::formats
