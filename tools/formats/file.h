// Files as the tool touches them: mapped for reading, mapped for an explicit
// in-place update, or written as a new file that replaces its target
// atomically.
//
// The safety model (docs/CLI.md, "Safety"): a result is written to a new
// file in the target's directory, flushed with fsync, renamed over the
// target, and the directory is flushed. rename(2) within one file system is
// atomic, so a reader or a crash sees the old file or the complete new one,
// never a torn one.
//
// No debris. On Linux the new file is created without a name
// (open(dir, O_TMPFILE)); a kill while it is written leaves nothing, since
// the kernel frees a nameless file with its last descriptor. Only once it is
// complete and flushed does it get a temporary name .NAME.sparsenorm-<16 hex>
// (linkat through /proc/self/fd/N), which rename(2) at once moves over the
// target. Where the file system refuses O_TMPFILE (or /proc is missing, or
// SPARSENORM_NO_O_TMPFILE is set), the file is created under that temporary
// name from the start, as before. A SIGKILL, crash or power failure can thus
// leave a named temporary only in the linkat-to-rename instant, or for the
// whole write on the fallback path; an ordinary failure or SIGINT/SIGTERM/
// SIGHUP removes it, and the next run over the same target removes the
// stale ones.
//
// The lock protocol that makes that cleanup safe against concurrent runs:
//  1. A run holds an exclusive flock on its new file for as long as the file
//     has a name of the temporary kind. With O_TMPFILE the lock is taken
//     while the file has no name yet, so the name never exists unlocked; the
//     lock is released (close) only after the rename, or, when the run
//     fails, after it removed the name. Locks end with their process, so a
//     temporary whose lock can be taken belongs to a dead run (or to one
//     that has just created it, see 3).
//  2. The cleanup (at the start of every write, before its own file exists)
//     opens each .NAME.sparsenorm-<16 hex> beside the target that is a
//     regular file, tries flock(LOCK_EX | LOCK_NB), and when it gets the
//     lock checks that the name still refers to the locked inode (fstat of
//     the descriptor against fstatat of the name) before unlinking it; it
//     releases the lock after the unlink. Between the open and the flock the
//     name may have left the file it opened: a live run renamed its file
//     over the target and closed it, so the cleanup now locks what is the
//     target; or a stale file was removed by another cleanup and the name
//     made again for another file. The re-check makes the unlink reach only
//     the file that was locked. No one but the lock holder removes or
//     replaces a temporary name, so it cannot change between the re-check
//     and the unlink.
//  3. The fallback path creates its name (O_CREAT | O_EXCL) before it can
//     lock the file, so a concurrent cleanup may find it unlocked and remove
//     it. The creator therefore locks (blocking: a cleanup holds the lock
//     only for its re-check and unlink) and then checks that its name still
//     refers to its file; if not, it closes that file and creates another
//     name. No byte has been written by then.
//
// For tests only (docs/CLI.md): SPARSENORM_NO_O_TMPFILE=1 takes the
// fallback path anywhere, and SPARSENORM_TEST_STOP_AT=POINT makes the
// process stop itself (SIGSTOP) at a named step of the above, so that a test
// can kill it exactly there.
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

// A new file that replaces `target` when committed. The new file is created
// in the target's directory (symbolic links are followed, so the link stays
// and the file it names is replaced), unnamed where the file system allows
// it, and locked as described at the top of this file; stale temporaries of
// this target left by killed runs are removed first. Before the commit it
// gets the permission bits and, when the process may, the owner of the file
// it replaces (until then it is the process's own, mode 0600).
class AtomicWriter {
 public:
  explicit AtomicWriter(const std::string& target);
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  ~AtomicWriter();  // removes the new file unless committed

  // Writes everything (retrying short writes and EINTR) in chunks of at most
  // 8 MiB, calling the progress callback after each with the total so far.
  void Write(const void* data, std::size_t size);
  void Write(std::span<const std::uint8_t> bytes) { Write(bytes.data(), bytes.size()); }
  void set_progress(std::function<void(std::uint64_t)> progress) {
    progress_ = std::move(progress);
  }
  std::uint64_t bytes_written() const { return written_; }

  // Sets the owner and mode, fsync, gives an unnamed file its temporary
  // name, renames it over the target, fsyncs the directory, releases the
  // lock. Returns an empty string, or a warning when only the final
  // directory flush failed (the new file is then in place, its directory
  // entry maybe not yet on disk).
  std::string Commit();

  const std::string& target() const { return target_; }
  // The temporary name; empty while the file has none (O_TMPFILE).
  const std::string& temp_path() const { return temp_; }
  // True when the file was created with O_TMPFILE.
  bool unnamed() const { return unnamed_; }

 private:
  bool CreateUnnamed();
  void CreateNamed();
  void LinkUnnamed();
  std::string NewTempName(int attempt) const;
  std::string Describe() const;
  void Abandon() noexcept;

  std::string target_;  // resolved: the real file a symbolic link names
  std::string dir_;
  std::string prefix_;  // ".NAME.sparsenorm-"
  std::string temp_;
  int fd_ = -1;
  bool unnamed_ = false;
  bool committed_ = false;
  mode_t mode_ = 0;
  bool give_away_ = false;  // try to give the file the replaced file's owner
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::uint64_t written_ = 0;
  std::function<void(std::uint64_t)> progress_;
};

// Installs handlers for SIGINT, SIGTERM and SIGHUP that remove the temporary
// name of the AtomicWriter alive at that moment (an unnamed file needs
// nothing), then end the process as the signal would have. SIGKILL cannot be
// caught: it leaves a named temporary, if one existed, for the next run to
// remove (and never a torn target). SIGBUS, which a memory map raises when
// its file shrinks under it (another process truncated the input) or when
// the disk fills under a writable map, prints one line, removes the
// temporary name and exits with status 1.
void InstallTempFileCleanup();

// True when both paths name the same existing file (same device and inode).
bool SameFile(const std::string& a, const std::string& b);

}  // namespace sparsenorm::formats

#endif  // SPARSENORM_TOOLS_FORMATS_FILE_H_
