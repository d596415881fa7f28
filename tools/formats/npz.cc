#include "formats/npz.h"

#include <zip.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>

#include "formats/error.h"

namespace sparsenorm::formats {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  throw FormatError("the .npz archive is invalid: " + what + ".");
}

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct FileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};
struct SourceFreer {
  void operator()(zip_source_t* s) const { zip_source_free(s); }
};

// Deflate cannot expand data by more than 1032:1 (RFC 1951: a 258-byte match
// in a code of at least 2 bits); a member that claims more is a lie.
std::uint64_t DeflateBound(std::uint64_t compressed) {
  std::uint64_t bound;
  if (__builtin_mul_overflow(compressed, 1032u, &bound)) return ~std::uint64_t{0};
  return bound + 1024;
}

NpyBuffer ReadMember(zip_t* za, zip_uint64_t index, const std::string& name,
                     const NpyOptions& options, const NpzLimits& limits, bool* deflated) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(za, index, 0, &st) != 0) Fail("cannot read the entry of " + Quote(name));
  const zip_uint64_t needed = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
  if ((st.valid & needed) != needed) Fail("the entry of " + Quote(name) + " lacks its sizes");
  if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) {
    Fail(Quote(name) + " is encrypted");
  }
  if (st.comp_method == ZIP_CM_STORE) {
    if (st.size != st.comp_size) Fail(Quote(name) + " is stored with inconsistent sizes");
    *deflated = false;
  } else if (st.comp_method == ZIP_CM_DEFLATE) {
    if (st.size > DeflateBound(st.comp_size)) {
      Fail(Quote(name) + " claims " + std::to_string(st.size) + " bytes from " +
           std::to_string(st.comp_size) + " deflated bytes, more than deflate can produce");
    }
    *deflated = true;
  } else {
    Fail(Quote(name) + " uses compression method " + std::to_string(st.comp_method) +
         "; only stored and deflated members (what NumPy writes) are supported");
  }
  if (st.size > limits.max_member_bytes) {
    Fail(Quote(name) + " is " + std::to_string(st.size) + " bytes, over the limit of " +
         std::to_string(limits.max_member_bytes));
  }
  if (st.size > std::numeric_limits<std::size_t>::max() / 2) Fail(Quote(name) + " is too large");
  NpyBuffer out;
  out.size = static_cast<std::size_t>(st.size);
  out.bytes.reset(new std::uint8_t[std::max<std::size_t>(out.size, 1)]);
  std::unique_ptr<zip_file_t, FileCloser> f(zip_fopen_index(za, index, 0));
  if (!f) Fail("cannot open " + Quote(name) + " (" + zip_strerror(za) + ")");
  std::size_t got = 0;
  while (true) {
    // One byte beyond the announced size, to see that the member ends there.
    std::uint8_t extra;
    const bool tail = got == out.size;
    const zip_int64_t n = zip_fread(f.get(), tail ? &extra : out.bytes.get() + got,
                                    tail ? 1 : std::min<std::size_t>(out.size - got, 1 << 20));
    if (n < 0) Fail("cannot read " + Quote(name) + " (" + zip_file_strerror(f.get()) + ")");
    if (n == 0) break;
    if (tail) Fail(Quote(name) + " holds more bytes than its entry announces");
    got += static_cast<std::size_t>(n);
  }
  if (got != out.size) Fail(Quote(name) + " holds fewer bytes than its entry announces");
  if (zip_fclose(f.release()) != 0) Fail("cannot read " + Quote(name) + " to its end");
  try {
    out.header = ParseNpyHeader({out.bytes.get(), out.size}, options);
  } catch (const FormatError& e) {
    Fail("member " + Quote(name) + ": " + e.what());
  }
  return out;
}

void RequireVector(const NpyBuffer& a, const char* name) {
  if (a.header.shape.size() != 1) {
    Fail(std::string(name) + " is not 1-D (" + DescribeNpy(a.header) + ")");
  }
}

void RequireIndexArray(const NpyBuffer& a, const char* name) {
  RequireVector(a, name);
  if (a.header.kind != ElementKind::kSigned || (a.header.itemsize != 4 && a.header.itemsize != 8)) {
    Fail(std::string(name) + " does not hold int32 or int64 (" + DescribeNpy(a.header) + ")");
  }
}

void CheckRange(const NpyBuffer& a, const char* name, std::int64_t limit, const char* what) {
  const std::int64_t n = a.length();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t v = IntegerAt(a, i);
    if (v < 0 || v >= limit) {
      Fail(std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(v) +
           " is outside [0, " + std::to_string(limit) + "), the " + what);
    }
  }
}

void CheckIndptr(const NpyBuffer& indptr, std::int64_t nnz) {
  const std::int64_t n = indptr.length();
  if (IntegerAt(indptr, 0) != 0) {
    Fail("indptr[0] = " + std::to_string(IntegerAt(indptr, 0)) + ", not 0");
  }
  for (std::int64_t i = 1; i < n; ++i) {
    if (IntegerAt(indptr, i) < IntegerAt(indptr, i - 1)) {
      Fail("indptr decreases at position " + std::to_string(i) + " (" +
           std::to_string(IntegerAt(indptr, i - 1)) + " then " +
           std::to_string(IntegerAt(indptr, i)) + ")");
    }
  }
  if (IntegerAt(indptr, n - 1) != nnz) {
    Fail("indptr ends at " + std::to_string(IntegerAt(indptr, n - 1)) + " but data holds " +
         std::to_string(nnz) + " values");
  }
}

std::string DecodeFormat(const NpyBuffer& f) {
  if (!f.header.shape.empty()) Fail("format is not a 0-d string (" + DescribeNpy(f.header) + ")");
  std::string s;
  if (f.header.kind == ElementKind::kBytes) {
    s.assign(reinterpret_cast<const char*>(f.data()), f.header.itemsize);
  } else if (f.header.kind == ElementKind::kUnicode) {
    for (std::size_t i = 0; i < f.header.itemsize; i += 4) {
      std::uint32_t c;
      std::memcpy(&c, f.data() + i, 4);
      if (c >= 0x80) Fail("format holds a character outside ASCII");
      s += static_cast<char>(c);
    }
  } else {
    Fail("format is not a string (" + DescribeNpy(f.header) + ")");
  }
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

}  // namespace

std::int64_t IntegerAt(const NpyBuffer& a, std::int64_t i) {
  const std::uint8_t* p = a.data() + static_cast<std::size_t>(i) * a.header.itemsize;
  const bool is_signed = a.header.kind == ElementKind::kSigned;
  switch (a.header.itemsize) {
    case 1: {
      std::uint8_t v;
      std::memcpy(&v, p, 1);
      return is_signed ? static_cast<std::int8_t>(v) : v;
    }
    case 2: {
      std::uint16_t v;
      std::memcpy(&v, p, 2);
      return is_signed ? static_cast<std::int16_t>(v) : v;
    }
    case 4: {
      std::uint32_t v;
      std::memcpy(&v, p, 4);
      return is_signed ? static_cast<std::int32_t>(v) : static_cast<std::int64_t>(v);
    }
    default: {
      std::uint64_t v;
      std::memcpy(&v, p, 8);
      // An unsigned value past int64 becomes negative, which every range
      // check refuses.
      return static_cast<std::int64_t>(v);
    }
  }
}

SparseNpz ReadSparseNpz(std::span<const std::uint8_t> archive, const NpyOptions& options,
                        const NpzLimits& limits) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(archive.data(), archive.size(), 0, &error);
  if (source == nullptr) Fail(std::string("libzip: ") + zip_error_strerror(&error));
  std::unique_ptr<zip_t, ZipCloser> za(zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error));
  if (!za) {
    zip_source_free(source);
    const std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    Fail("it is not a readable zip archive (" + why + ")");
  }
  zip_error_fini(&error);

  const zip_int64_t entries = zip_get_num_entries(za.get(), 0);
  if (entries < 0 || entries > 16) {
    Fail("it has " + std::to_string(entries) + " members; a sparse matrix has 5");
  }
  SparseNpz m;
  std::map<std::string, NpyBuffer*> slots = {
      {"format.npy", &m.format_member}, {"shape.npy", &m.shape_member}, {"data.npy", &m.data},
      {"indices.npy", &m.indices},      {"indptr.npy", &m.indptr},      {"row.npy", &m.row},
      {"col.npy", &m.col}};
  for (zip_int64_t i = 0; i < entries; ++i) {
    const char* raw = zip_get_name(za.get(), static_cast<zip_uint64_t>(i), 0);
    if (raw == nullptr) Fail("member " + std::to_string(i) + " has no readable name");
    const std::string name(raw);
    const auto slot = slots.find(name);
    if (slot == slots.end()) {
      if (name == "offsets.npy" || name == "blocksize.npy") {
        Fail("it holds a DIA or BSR matrix; convert it with .tocsr() before saving");
      }
      Fail("it holds the member " + Quote(name) + ", which scipy.sparse.save_npz does not write");
    }
    if (!slot->second->empty()) Fail("the member " + Quote(name) + " appears twice");
    bool deflated = false;
    *slot->second = ReadMember(za.get(), static_cast<zip_uint64_t>(i), name, options, limits, &deflated);
    m.compressed = m.compressed || deflated;
    m.member_order.push_back(name);
  }
  if (m.format_member.empty()) Fail("it has no format.npy; it was not written by scipy.sparse.save_npz");
  if (m.shape_member.empty()) Fail("it has no shape.npy");
  if (m.data.empty()) Fail("it has no data.npy");

  m.format_name = DecodeFormat(m.format_member);
  if (m.format_name == "csr") {
    m.format = SparseFormat::kCSR;
  } else if (m.format_name == "csc") {
    m.format = SparseFormat::kCSC;
  } else if (m.format_name == "coo") {
    m.format = SparseFormat::kCOO;
  } else if (m.format_name == "bsr" || m.format_name == "dia") {
    Fail("it holds a " + m.format_name + " matrix; convert it with .tocsr() before saving");
  } else {
    Fail("its format " + Quote(m.format_name) + " is not csr, csc or coo");
  }

  const NpyBuffer& shape = m.shape_member;
  if (shape.header.shape != std::vector<std::int64_t>{2} ||
      (shape.header.kind != ElementKind::kSigned && shape.header.kind != ElementKind::kUnsigned)) {
    Fail("shape.npy is not two integers (" + DescribeNpy(shape.header) + ")");
  }
  m.rows = IntegerAt(shape, 0);
  m.cols = IntegerAt(shape, 1);
  if (m.rows < 0 || m.cols < 0) Fail("the shape (" + std::to_string(m.rows) + ", " +
                                     std::to_string(m.cols) + ") is negative");

  RequireVector(m.data, "data");
  if (!m.data.header.float_type) {
    Fail("data holds " + Quote(m.data.header.descr) +
         " values; sparsenorm writes its results in the values' own dtype, so convert them to "
         "float32 or float64 first");
  }
  m.nnz = m.data.length();

  if (m.format == SparseFormat::kCOO) {
    if (m.row.empty() || m.col.empty()) Fail("a coo matrix needs row.npy and col.npy");
    if (!m.indices.empty() || !m.indptr.empty()) Fail("a coo matrix has indices.npy or indptr.npy");
    RequireIndexArray(m.row, "row");
    RequireIndexArray(m.col, "col");
    if (m.row.length() != m.nnz || m.col.length() != m.nnz) {
      Fail("row, col and data have different lengths (" + std::to_string(m.row.length()) + ", " +
           std::to_string(m.col.length()) + ", " + std::to_string(m.nnz) + ")");
    }
    CheckRange(m.row, "row", m.rows, "row count");
    CheckRange(m.col, "col", m.cols, "column count");
  } else {
    if (m.indices.empty() || m.indptr.empty()) {
      Fail("a " + m.format_name + " matrix needs indices.npy and indptr.npy");
    }
    if (!m.row.empty() || !m.col.empty()) Fail("a " + m.format_name + " matrix has row.npy or col.npy");
    RequireIndexArray(m.indices, "indices");
    RequireIndexArray(m.indptr, "indptr");
    const bool csr = m.format == SparseFormat::kCSR;
    const std::int64_t major = csr ? m.rows : m.cols;
    const std::int64_t minor = csr ? m.cols : m.rows;
    if (major == std::numeric_limits<std::int64_t>::max() || m.indptr.length() != major + 1) {
      Fail("indptr has " + std::to_string(m.indptr.length()) + " entries; a " + m.format_name +
           " matrix of shape (" + std::to_string(m.rows) + ", " + std::to_string(m.cols) +
           ") needs " + std::to_string(major) + " + 1");
    }
    if (m.indices.length() != m.nnz) {
      Fail("indices has " + std::to_string(m.indices.length()) + " entries but data has " +
           std::to_string(m.nnz));
    }
    CheckIndptr(m.indptr, m.nnz);
    CheckRange(m.indices, "indices", minor, csr ? "column count" : "row count");
  }
  return m;
}

void WriteSparseNpz(const SparseNpz& m, std::int64_t nnz,
                    const std::function<void(std::span<const std::uint8_t>)>& sink) {
  if (nnz < 0 || nnz > m.nnz) throw FormatError("internal error: bad nnz for the .npz writer.");
  // Headers first, so that the fragments below point at strings that no
  // longer move.
  std::vector<std::string> headers;
  headers.reserve(m.member_order.size());
  std::vector<std::vector<zip_buffer_fragment_t>> fragments;
  for (const std::string& name : m.member_order) {
    const NpyBuffer* a = name == "format.npy"  ? &m.format_member
                         : name == "shape.npy" ? &m.shape_member
                         : name == "data.npy"  ? &m.data
                         : name == "indices.npy" ? &m.indices
                         : name == "indptr.npy"  ? &m.indptr
                         : name == "row.npy"     ? &m.row
                                                 : &m.col;
    std::vector<zip_buffer_fragment_t> f;
    if (a == &m.format_member || a == &m.shape_member || a == &m.indptr) {
      f.push_back({a->bytes.get(), a->size});
    } else {
      const std::int64_t shape[1] = {nnz};
      headers.push_back(MakeNpyHeader(a->header.descr, false, shape));
      f.push_back({reinterpret_cast<zip_uint8_t*>(headers.back().data()), headers.back().size()});
      f.push_back({const_cast<std::uint8_t*>(a->data()),
                   static_cast<zip_uint64_t>(nnz) * a->header.itemsize});
    }
    fragments.push_back(std::move(f));
  }

  zip_error_t error;
  zip_error_init(&error);
  std::unique_ptr<zip_source_t, SourceFreer> out(zip_source_buffer_create(nullptr, 0, 0, &error));
  if (!out) throw FormatError(std::string("libzip: ") + zip_error_strerror(&error) + ".");
  zip_source_keep(out.get());  // zip_close must not free it: we read it afterwards
  zip_t* za = zip_open_from_source(out.get(), ZIP_TRUNCATE, &error);
  if (za == nullptr) {
    zip_source_free(out.get());  // drop the reference zip_open_from_source did not take
    throw FormatError(std::string("libzip: ") + zip_error_strerror(&error) + ".");
  }
  auto fail = [&](const std::string& what) {
    const std::string why = zip_strerror(za);
    zip_discard(za);
    throw FormatError("cannot build the .npz archive: " + what + " (" + why + ").");
  };
  for (std::size_t i = 0; i < m.member_order.size(); ++i) {
    zip_source_t* s = zip_source_buffer_fragment(za, fragments[i].data(), fragments[i].size(), 0);
    if (s == nullptr) fail("a buffer");
    const zip_int64_t index = zip_file_add(za, m.member_order[i].c_str(), s, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(s);
      fail("adding " + m.member_order[i]);
    }
    if (zip_set_file_compression(za, static_cast<zip_uint64_t>(index),
                                 m.compressed ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0) {
      fail("choosing the compression");
    }
  }
  if (zip_close(za) != 0) fail("writing");

  if (zip_source_open(out.get()) != 0) {
    throw FormatError("cannot read back the .npz archive built in memory.");
  }
  std::vector<std::uint8_t> chunk(std::size_t{4} << 20);
  while (true) {
    const zip_int64_t n = zip_source_read(out.get(), chunk.data(), chunk.size());
    if (n < 0) {
      zip_source_close(out.get());
      throw FormatError("cannot read back the .npz archive built in memory.");
    }
    if (n == 0) break;
    sink({chunk.data(), static_cast<std::size_t>(n)});
  }
  zip_source_close(out.get());
}

}  // namespace sparsenorm::formats
