#include "cli/common.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <limits>
#include <new>

#include <fmt/format.h>

#include "common/element_types.h"
#include "formats/error.h"

namespace sparsenorm::cli {

using formats::Quote;

void Note(const Global& g, const std::string& text) {
  if (!g.quiet) fmt::print(stderr, "sparsenorm: {}\n", text);
}

// ---------------------------------------------------------------------------
// Progress

namespace {

std::chrono::milliseconds ProgressDelay() {
  if (const char* env = std::getenv("SPARSENORM_PROGRESS_DELAY_MS")) {
    int ms = 0;
    const auto [end, ec] = std::from_chars(env, env + std::strlen(env), ms);
    if (ec == std::errc() && ms >= 0) return std::chrono::milliseconds(ms);
  }
  return std::chrono::milliseconds(1000);
}

}  // namespace

Progress::Progress(const Global& g, std::string label, std::uint64_t total)
    : enabled_(!g.quiet && isatty(STDERR_FILENO) == 1),
      label_(std::move(label)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_(start_),
      delay_(ProgressDelay()) {}

Progress::~Progress() {
  if (drawn_) {
    Draw(total_, true);
    std::fputs("\n", stderr);
  }
}

void Progress::Update(std::uint64_t done) { Draw(done, false); }

void Progress::Draw(std::uint64_t done, bool force) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && (now - start_ < delay_ || (drawn_ && now - last_ < std::chrono::milliseconds(100)))) {
    return;
  }
  last_ = now;
  drawn_ = true;
  constexpr int kWidth = 30;
  const double fraction = total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / total_);
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds = std::chrono::duration<double>(now - start_).count();
  fmt::print(stderr, "\r{:<12} [{}{}] {:3.0f}% {} of {}, {:.1f} s\x1b[K", label_,
             std::string(static_cast<std::size_t>(filled), '#'),
             std::string(static_cast<std::size_t>(kWidth - filled), '.'), fraction * 100,
             Bytes(static_cast<double>(done)), Bytes(static_cast<double>(total_)), seconds);
  std::fflush(stderr);
}

void Progress::Run(const Global& g, const std::string& label, const std::function<void()>& fn) {
  if (g.quiet || isatty(STDERR_FILENO) != 1) {
    fn();
    return;
  }
  const auto delay = ProgressDelay();
  const auto start = std::chrono::steady_clock::now();
  std::future<void> done = std::async(std::launch::async, fn);
  bool drawn = false;
  while (done.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (elapsed < delay) continue;
    drawn = true;
    fmt::print(stderr, "\r{:<12} working, {:.1f} s\x1b[K", label,
               std::chrono::duration<double>(elapsed).count());
    std::fflush(stderr);
  }
  if (drawn) {
    fmt::print(stderr, "\r{:<12} done, {:.1f} s\x1b[K\n", label, SecondsSince(start));
  }
  done.get();  // rethrows what fn threw
}

// ---------------------------------------------------------------------------
// Formats

const char* KindName(FileKind kind) {
  switch (kind) {
    case FileKind::kNpy: return ".npy";
    case FileKind::kSafetensors: return ".safetensors";
    case FileKind::kNpz: return ".npz";
    case FileKind::kMtx: return ".mtx";
  }
  return "?";
}

bool KindFromExtension(const std::string& path, FileKind* kind) {
  const auto dot = path.find_last_of('.');
  const auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return false;
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".npy") *kind = FileKind::kNpy;
  else if (ext == ".safetensors") *kind = FileKind::kSafetensors;
  else if (ext == ".npz") *kind = FileKind::kNpz;
  else if (ext == ".mtx") *kind = FileKind::kMtx;
  else return false;
  return true;
}

FileKind DetectKind(const std::string& path, std::span<const std::uint8_t> b) {
  auto starts = [&](std::string_view magic) {
    return b.size() >= magic.size() &&
           std::equal(magic.begin(), magic.end(), b.begin(),
                      [](char m, std::uint8_t c) { return static_cast<std::uint8_t>(m) == c; });
  };
  if (starts("\x93NUMPY")) return FileKind::kNpy;
  if (starts("PK\x03\x04") || starts("PK\x05\x06")) return FileKind::kNpz;
  if (starts("%%MatrixMarket") || starts("%%matrixmarket")) return FileKind::kMtx;
  FileKind kind;
  if (KindFromExtension(path, &kind)) return kind;
  throw Error("cannot tell the format of " + Quote(path, 4096) +
              " from its contents or its name (expected .npy, .safetensors, .npz or .mtx).");
}

TableRef LocateTable(FileKind kind, std::span<const std::uint8_t> bytes, const std::string& tensor,
                     bool void2_is_bfloat16) {
  TableRef t;
  if (kind == FileKind::kNpy) {
    if (!tensor.empty()) throw Error("--tensor applies to .safetensors files, not .npy files.", kExitUsage);
    const formats::NpyHeader h = formats::ParseNpyHeader(bytes, {.void2_is_bfloat16 = void2_is_bfloat16});
    if (!h.float_type) {
      std::string hint;
      if (h.kind == formats::ElementKind::kVoid && h.itemsize == 2) {
        hint = " (if it holds bfloat16 values saved from ml_dtypes, pass --npy-bfloat16)";
      }
      throw Error("the array holds " + Quote(h.descr) +
                  " elements; sparsenorm computes on " + DTypeNameList(" and ") +
                  hint + ".");
    }
    if (h.shape.size() != 2) {
      throw Error("the array is not 2-D (" + formats::DescribeNpy(h) + ").");
    }
    t.dtype = *h.float_type;
    t.rows = h.shape[0];
    t.cols = h.shape[1];
    t.offset = h.data_offset;
    t.bytes = h.data_bytes;
    t.fortran_order = h.fortran_order;
  } else if (kind == FileKind::kSafetensors) {
    const formats::SafetensorsFile f = formats::ParseSafetensors(bytes);
    const formats::SafetensorsTensor* s = nullptr;
    if (tensor.empty()) {
      if (f.tensors.size() != 1) {
        std::string names;
        for (std::size_t i = 0; i < f.tensors.size() && i < 8; ++i) {
          names += (i ? ", " : "") + Quote(f.tensors[i].name, 40);
        }
        if (f.tensors.size() > 8) names += ", ...";
        throw Error("the file holds " + std::to_string(f.tensors.size()) + " tensors" +
                        (names.empty() ? "" : " (" + names + ")") + "; name one with --tensor NAME.",
                    kExitUsage);
      }
      s = &f.tensors[0];
    } else {
      s = f.Find(tensor);
      if (s == nullptr) throw Error("the file has no tensor named " + Quote(tensor) + ".");
    }
    if (!s->float_type) {
      throw Error("tensor " + Quote(s->name) + " has dtype " + Quote(s->dtype) +
                  "; sparsenorm computes on F32, F64, F16 and BF16.");
    }
    if (s->shape.size() != 2) {
      throw Error("tensor " + Quote(s->name) + " is not 2-D (" + formats::DescribeTensor(*s) + ").");
    }
    t.dtype = *s->float_type;
    t.rows = s->shape[0];
    t.cols = s->shape[1];
    t.offset = s->begin;
    t.bytes = s->end - s->begin;
    t.name = s->name;
  } else {
    throw Error(std::string("this command reads .npy and .safetensors files, not ") + KindName(kind) +
                " files.", kExitUsage);
  }
  t.description = fmt::format("{} [{}, {}]", DTypeName(t.dtype), t.rows, t.cols);
  return t;
}

double ValueAt(const void* data, DType dtype, std::size_t i) {
  double value = std::numeric_limits<double>::quiet_NaN();
  VisitDType(dtype, [&](auto tag) {
    using T = TypeOf<decltype(tag)>;
    T v;  // file data need not be aligned
    std::memcpy(&v, static_cast<const std::uint8_t*>(data) + sizeof(T) * i, sizeof(T));
    value = static_cast<double>(Element<T>::Widen(v));
  });
  return value;
}

double ParseP(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "inf" || lower == "infinity") return kInfinity;
  double p = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), p);
  if (ec != std::errc() || end != text.data() + text.size() || !(p > 0) || !std::isfinite(p)) {
    throw Error("-p must be a positive number or inf, not " + Quote(text) + ".", kExitUsage);
  }
  return p;
}

std::string Bytes(double n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (n >= 1024 && u < 4) {
    n /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} {}", n, kUnits[u]) : fmt::format("{:.1f} {}", n, kUnits[u]);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void CopyWithProgress(const Global& g, const char* label, void* dst, const void* src, std::size_t n) {
  Progress progress(g, label, n);
  constexpr std::size_t kChunk = std::size_t{64} << 20;
  for (std::size_t done = 0; done < n; done += kChunk) {
    const std::size_t len = std::min(kChunk, n - done);
    std::memcpy(static_cast<std::uint8_t*>(dst) + done, static_cast<const std::uint8_t*>(src) + done, len);
    progress.Update(done + len);
  }
}

AlignedBuffer::AlignedBuffer(std::size_t n) : size(n) {
  try {
    data = static_cast<std::uint8_t*>(::operator new(std::max<std::size_t>(n, 1), std::align_val_t{64}));
  } catch (const std::bad_alloc&) {
    throw Error("not enough memory for a copy of " + Bytes(static_cast<double>(n)) +
                " (--in-place needs none).");
  }
}

AlignedBuffer::~AlignedBuffer() { ::operator delete(data, std::align_val_t{64}); }

}  // namespace sparsenorm::cli
