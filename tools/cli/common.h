// What every command of the sparsenorm tool shares: global options, the
// progress bar, recognizing a file's format, locating a 2-D table inside a
// .npy or .safetensors file, and element conversions for reading values.
#ifndef SPARSENORM_TOOLS_CLI_COMMON_H_
#define SPARSENORM_TOOLS_CLI_COMMON_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>

#include "formats/npy.h"
#include "formats/safetensors.h"
#include "sparsenorm/types.h"

namespace sparsenorm::cli {

// A failure to report: one sentence, printed as "sparsenorm: error: ...".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, int exit_code = 1)
      : std::runtime_error(what), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Exit statuses (docs/CLI.md).
inline constexpr int kExitFailure = 1;      // bad input, failed computation, I/O error
inline constexpr int kExitUsage = 2;        // the command line itself is wrong

struct Global {
  bool quiet = false;  // no progress bar, no notes on stderr
  bool json = false;   // results as one JSON object on stdout
  int threads = 0;     // 0: every core
};

// Prints a note on stderr unless --quiet.
void Note(const Global& g, const std::string& text);

// A progress bar on stderr, drawn only when stderr is a terminal, --quiet is
// off, and the work has already taken about a second (so quick runs print
// nothing). SPARSENORM_PROGRESS_DELAY_MS changes the delay (tests use 0).
class Progress {
 public:
  Progress(const Global& g, std::string label, std::uint64_t total);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress();
  void Update(std::uint64_t done);
  // Draws an elapsed-time indicator while fn runs on another thread (for
  // one long library call that reports no progress of its own).
  static void Run(const Global& g, const std::string& label, const std::function<void()>& fn);

 private:
  void Draw(std::uint64_t done, bool force);
  bool enabled_;
  bool drawn_ = false;
  std::string label_;
  std::uint64_t total_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  std::chrono::milliseconds delay_;
};

enum class FileKind { kNpy, kSafetensors, kNpz, kMtx };

const char* KindName(FileKind kind);  // ".npy", ...

// The format of `path`, from its first bytes when they are conclusive, else
// from its extension. Throws when neither tells.
FileKind DetectKind(const std::string& path, std::span<const std::uint8_t> bytes);

// The kind a path's extension names, if any.
bool KindFromExtension(const std::string& path, FileKind* kind);

// A 2-D floating-point table inside a file: the bytes [offset, offset +
// rows * cols * element size) hold it in row-major order, or column-major
// when fortran_order (only .npy files can be).
struct TableRef {
  DType dtype = DType::kFloat32;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::size_t offset = 0;
  std::size_t bytes = 0;
  bool fortran_order = false;
  std::string name;         // the tensor name in a safetensors file, else ""
  std::string description;  // "float32 [1000, 64]"
};

// The table of a .npy or .safetensors file; `tensor` picks the tensor of a
// safetensors file (optional when the file has only one).
TableRef LocateTable(FileKind kind, std::span<const std::uint8_t> bytes, const std::string& tensor,
                     bool void2_is_bfloat16);

// Element i of a float array of the given dtype, widened to double.
double ValueAt(const void* data, DType dtype, std::size_t i);

// Parses a norm order: a positive number or inf.
double ParseP(const std::string& text);

// Formats a count of bytes: "512 B", "1.5 MiB".
std::string Bytes(double n);

// Seconds since `start`.
double SecondsSince(std::chrono::steady_clock::time_point start);

// Copies `n` bytes in chunks with a progress bar.
void CopyWithProgress(const Global& g, const char* label, void* dst, const void* src, std::size_t n);

// A buffer for a copy of a table, aligned for every element type and for
// SIMD loads; uninitialized.
struct AlignedBuffer {
  explicit AlignedBuffer(std::size_t n);
  ~AlignedBuffer();
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  std::uint8_t* data = nullptr;
  std::size_t size = 0;
};

}  // namespace sparsenorm::cli

#endif  // SPARSENORM_TOOLS_CLI_COMMON_H_
