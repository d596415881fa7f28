// Files as the tool touches them: mapped for reading, mapped for an explicit
// in-place update, or written as a new file that replaces its target
// atomically.
//
// The safety model (docs/CLI.md): a result is written to a temporary file in
// the target's directory, flushed with fsync, renamed over the target, and
// the directory is flushed. rename(2) within one file system is atomic, so a
// reader or a crash sees the old file or the complete new one, never a torn
// one. A kill leaves at most a stale temporary named .NAME.sparsenorm-<16 hex>
// beside the target; an ordinary failure or SIGINT/SIGTERM/SIGHUP removes it.
#ifndef SPARSENORM_TOOLS_FORMATS_FILE_H_
#define SPARSENORM_TOOLS_FORMATS_FILE_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace sparsenorm::formats {

// A whole regular file mapped into memory, read-only (MAP_PRIVATE) or, for
// --in-place, writable and shared with the file (MAP_SHARED, under an
// exclusive flock so that two in-place runs do not interleave).
class MappedFile {
 public:
  static MappedFile OpenRead(const std::string& path);
  static MappedFile OpenReadWrite(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
  // Only for a file opened with OpenReadWrite.
  std::span<std::uint8_t> mutable_bytes() { return {data_, writable_ ? size_ : 0}; }
  const std::string& path() const { return path_; }

  // Writes the modified pages back and flushes them to disk (msync, fsync).
  void Sync();

 private:
  void Release() noexcept;

  std::string path_;
  int fd_ = -1;
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool writable_ = false;
};

// A new file that replaces `target` when committed. The temporary file is
// created beside the target (symbolic links are followed, so the link stays
// and the file it names is replaced); it gets the permission bits and, when
// the process may, the owner of the file it replaces.
class AtomicWriter {
 public:
  explicit AtomicWriter(const std::string& target);
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  ~AtomicWriter();  // removes the temporary file unless committed

  // Writes everything (retrying short writes and EINTR) in chunks of at most
  // 8 MiB, calling the progress callback after each with the total so far.
  void Write(const void* data, std::size_t size);
  void Write(std::span<const std::uint8_t> bytes) { Write(bytes.data(), bytes.size()); }
  void set_progress(std::function<void(std::uint64_t)> progress) {
    progress_ = std::move(progress);
  }
  std::uint64_t bytes_written() const { return written_; }

  // fsync, close, rename over the target, fsync the directory. Returns an
  // empty string, or a warning when only the final directory flush failed
  // (the new file is then in place, its directory entry maybe not yet on
  // disk).
  std::string Commit();

  const std::string& target() const { return target_; }
  const std::string& temp_path() const { return temp_; }

 private:
  void Abandon() noexcept;

  std::string target_;  // resolved: the real file a symbolic link names
  std::string dir_;
  std::string temp_;
  int fd_ = -1;
  std::uint64_t written_ = 0;
  bool committed_ = false;
  std::function<void(std::uint64_t)> progress_;
};

// Installs handlers for SIGINT, SIGTERM and SIGHUP that remove the temporary
// file of the AtomicWriter alive at that moment, then end the process as the
// signal would have. SIGKILL cannot be caught: it leaves the temporary file
// (and never a torn target). SIGBUS, which a memory map raises when its file
// shrinks under it (another process truncated the input) or when the disk
// fills under a writable map, prints one line, removes the temporary file
// and exits with status 1.
void InstallTempFileCleanup();

// True when both paths name the same existing file (same device and inode).
bool SameFile(const std::string& a, const std::string& b);

}  // namespace sparsenorm::formats

#endif  // SPARSENORM_TOOLS_FORMATS_FILE_H_
