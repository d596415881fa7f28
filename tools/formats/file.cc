#include "formats/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

#include "formats/error.h"

namespace sparsenorm::formats {
namespace {

std::string Errno(int err) { return std::strerror(err); }

std::string Q(const std::string& path) { return Quote(path, 4096); }

// The temporary file to remove from a signal handler: a fixed buffer, since
// a handler may not allocate.
char g_temp_path[PATH_MAX + 1];
volatile sig_atomic_t g_temp_active = 0;

void SetTemp(const std::string& path) {
  g_temp_active = 0;
  const std::size_t n = std::min(path.size(), sizeof g_temp_path - 1);
  std::memcpy(g_temp_path, path.data(), n);
  g_temp_path[n] = '\0';
  g_temp_active = 1;
}

void ClearTemp() { g_temp_active = 0; }

extern "C" void RemoveTempAndReraise(int sig) {
  if (g_temp_active) unlink(g_temp_path);
  // SA_RESETHAND restored the default action; this ends the process with
  // the status a shell expects from the signal.
  raise(sig);
}

extern "C" void ReportBusError(int) {
  static const char kMessage[] =
      "sparsenorm: error: a memory-mapped file shrank while it was in use, or the disk "
      "filled under it (SIGBUS); the target file was not replaced.\n";
  if (g_temp_active) unlink(g_temp_path);
  ssize_t ignored = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  (void)ignored;
  _exit(1);
}

mode_t CurrentUmask() {
  const mode_t mask = umask(0);
  umask(mask);
  return mask;
}

std::string DirName(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string RealPath(const std::string& path) {
  char* resolved = realpath(path.c_str(), nullptr);
  if (resolved == nullptr) {
    throw FormatError("cannot resolve the path " + Q(path) + ": " + Errno(errno) + ".");
  }
  std::string out(resolved);
  std::free(resolved);
  return out;
}

bool SameInode(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Test hook (docs/CLI.md, "Safety"): with SPARSENORM_TEST_STOP_AT=POINT
// the process stops itself (SIGSTOP) when it reaches POINT, so that a test
// can kill it exactly there, or let it go on (SIGCONT). Read at each point
// rather than cached, to keep no state.
void StopHere(const char* point) {
  const char* want = std::getenv("SPARSENORM_TEST_STOP_AT");
  if (want != nullptr && std::strcmp(want, point) == 0) kill(getpid(), SIGSTOP);
}

// Diagnostic switch (docs/CLI.md, "Safety"): SPARSENORM_NO_O_TMPFILE=1
// takes the named-temporary path that file systems without O_TMPFILE get,
// so that the tests can exercise it on any file system.
bool TmpfileDisabled() {
  const char* v = std::getenv("SPARSENORM_NO_O_TMPFILE");
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

// PREFIX followed by exactly 16 lowercase hex digits: the names AtomicWriter
// gives its temporaries, and the only names the cleanup touches.
bool IsTempName(std::string_view name, std::string_view prefix) {
  if (name.size() != prefix.size() + 16 || name.substr(0, prefix.size()) != prefix) return false;
  return std::all_of(name.begin() + prefix.size(), name.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Step 2 of the protocol in file.h: removes the temporaries PREFIX<16 hex>
// in DIR whose lock can be taken, that is, whose writer is dead. Best
// effort and silent: a temporary it cannot open or lock is left alone.
void RemoveStaleTemporaries(const std::string& dir, const std::string& prefix) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  const int dfd = dirfd(d);
  while (const dirent* entry = readdir(d)) {
    const char* name = entry->d_name;
    if (!IsTempName(name, prefix)) continue;
    struct stat by_name {};
    // Never open anything but a regular file (not a FIFO, a device or what
    // a symbolic link names).
    if (fstatat(dfd, name, &by_name, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(by_name.st_mode)) {
      continue;
    }
    // Opened for writing where the mode allows (an exclusive flock over NFS
    // needs it), else for reading; nothing is written either way.
    constexpr int kFlags = O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    int fd = openat(dfd, name, O_WRONLY | kFlags);
    if (fd < 0 && errno == EACCES) fd = openat(dfd, name, O_RDONLY | kFlags);
    if (fd < 0) continue;
    StopHere("cleanup");
    struct stat locked {};
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &locked) == 0 && S_ISREG(locked.st_mode) &&
        fstatat(dfd, name, &by_name, AT_SYMLINK_NOFOLLOW) == 0 && SameInode(by_name, locked)) {
      unlinkat(dfd, name, 0);
    }
    close(fd);  // and with it the lock, after the unlink
  }
  closedir(d);
}

int LockExclusive(int fd) {
  int rc;
  do {
    rc = flock(fd, LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  return rc;
}

std::string ProcFdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

}  // namespace

// ---------------------------------------------------------------------------
// MappedFile

MappedFile MappedFile::OpenRead(const std::string& path) {
  MappedFile f;
  f.path_ = path;
  f.fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd_ < 0) throw FormatError("cannot open " + Q(path) + ": " + Errno(errno) + ".");
  struct stat st {};
  if (fstat(f.fd_, &st) != 0) throw FormatError("cannot stat " + Q(path) + ": " + Errno(errno) + ".");
  if (!S_ISREG(st.st_mode)) throw FormatError(Q(path) + " is not a regular file.");
  f.size_ = static_cast<std::size_t>(st.st_size);
  if (f.size_ > 0) {
    void* p = mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, f.fd_, 0);
    if (p == MAP_FAILED) throw FormatError("cannot map " + Q(path) + ": " + Errno(errno) + ".");
    f.data_ = static_cast<std::uint8_t*>(p);
  }
  // A read-only map stays valid after the descriptor is closed.
  close(f.fd_);
  f.fd_ = -1;
  return f;
}

MappedFile MappedFile::OpenReadWrite(const std::string& path) {
  MappedFile f;
  f.path_ = path;
  f.fd_ = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (f.fd_ < 0) throw FormatError("cannot open " + Q(path) + " for writing: " + Errno(errno) + ".");
  struct stat st {};
  if (fstat(f.fd_, &st) != 0) throw FormatError("cannot stat " + Q(path) + ": " + Errno(errno) + ".");
  if (!S_ISREG(st.st_mode)) throw FormatError(Q(path) + " is not a regular file.");
  if (flock(f.fd_, LOCK_EX | LOCK_NB) != 0) {
    throw FormatError(Q(path) + " is locked by another process (" + Errno(errno) + ").");
  }
  f.size_ = static_cast<std::size_t>(st.st_size);
  if (f.size_ > 0) {
    void* p = mmap(nullptr, f.size_, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd_, 0);
    if (p == MAP_FAILED) throw FormatError("cannot map " + Q(path) + ": " + Errno(errno) + ".");
    f.data_ = static_cast<std::uint8_t*>(p);
  }
  f.writable_ = true;
  return f;
}

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    writable_ = std::exchange(other.writable_, false);
  }
  return *this;
}

MappedFile::~MappedFile() { Release(); }

void MappedFile::Release() noexcept {
  if (data_ != nullptr) munmap(data_, size_);
  if (fd_ >= 0) close(fd_);  // also releases the flock
  data_ = nullptr;
  fd_ = -1;
  size_ = 0;
}

void MappedFile::Sync() {
  if (!writable_) return;
  if (data_ != nullptr && msync(data_, size_, MS_SYNC) != 0) {
    throw FormatError("cannot write back " + Q(path_) + ": " + Errno(errno) + ".");
  }
  if (fsync(fd_) != 0) throw FormatError("cannot flush " + Q(path_) + ": " + Errno(errno) + ".");
}

// ---------------------------------------------------------------------------
// AtomicWriter

AtomicWriter::AtomicWriter(const std::string& target) {
  if (target.empty()) throw FormatError("the output path is empty.");
  mode_ = 0666 & ~CurrentUmask();
  struct stat st {};
  if (lstat(target.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode) && stat(target.c_str(), &st) != 0) {
      throw FormatError(Q(target) + " is a symbolic link to a missing file (" + Errno(errno) + ").");
    }
    if (!S_ISREG(st.st_mode)) throw FormatError(Q(target) + " exists and is not a regular file.");
    target_ = RealPath(target);
    mode_ = st.st_mode & 07777;
    give_away_ = st.st_uid != geteuid() || st.st_gid != getegid();
    uid_ = st.st_uid;
    gid_ = st.st_gid;
  } else if (errno == ENOENT) {
    const std::string dir = DirName(target);
    struct stat dst {};
    if (stat(dir.c_str(), &dst) != 0 || !S_ISDIR(dst.st_mode)) {
      throw FormatError("the directory " + Q(dir) + " of the output does not exist.");
    }
    target_ = RealPath(dir) + "/" + BaseName(target);
  } else {
    throw FormatError("cannot stat " + Q(target) + ": " + Errno(errno) + ".");
  }
  dir_ = DirName(target_);
  // Hidden, recognizable, and short enough for NAME_MAX whatever the
  // target's name.
  prefix_.append(".").append(BaseName(target_), 0, 200).append(".sparsenorm-");
  RemoveStaleTemporaries(dir_, prefix_);
  if (!CreateUnnamed()) CreateNamed();
}

std::string AtomicWriter::NewTempName(int attempt) const {
  std::uint64_t random = 0;
  if (getrandom(&random, sizeof random, 0) != sizeof random) {
    random = static_cast<std::uint64_t>(getpid()) * 0x9e3779b97f4a7c15ull + attempt;
  }
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(random));
  return dir_ + "/" + prefix_ + suffix;
}

// The file without a name, locked before it can get one (step 1 in
// file.h). False where that is not possible here: the file system refuses
// O_TMPFILE (EOPNOTSUPP, or EISDIR/EINVAL/ENOENT from kernels without it),
// /proc, through which Commit links the file, is missing, or the switch is
// set. On any other error too the named path is tried, and reports it.
// (linkat(AT_EMPTY_PATH) would not need /proc, but it needs
// CAP_DAC_READ_SEARCH, which only a check after the whole write would
// discover.)
bool AtomicWriter::CreateUnnamed() {
  if (TmpfileDisabled()) return false;
  const int fd = open(dir_.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  struct stat by_fd {}, by_proc {};
  if (LockExclusive(fd) != 0 || fstat(fd, &by_fd) != 0 ||
      stat(ProcFdPath(fd).c_str(), &by_proc) != 0 || !SameInode(by_fd, by_proc)) {
    close(fd);
    return false;
  }
  fd_ = fd;
  unnamed_ = true;
  StopHere("created");
  return true;
}

// The fallback: the file under its temporary name from the start (step 3
// in file.h).
void AtomicWriter::CreateNamed() {
  for (int attempt = 0;; ++attempt) {
    // The name is recorded for the signal handler before the file exists:
    // a signal may land on any thread (OpenMP's too), so masking it here
    // would not close the gap between creating the file and recording it.
    // The handler's unlink of a name not yet created is harmless.
    temp_ = NewTempName(attempt);
    SetTemp(temp_);
    fd_ = open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      const int err = errno;
      ClearTemp();
      temp_.clear();
      if (err != EEXIST || attempt == 100) {
        throw FormatError("cannot create a temporary file in " + Q(dir_) + ": " + Errno(err) + ".");
      }
      continue;
    }
    StopHere("named");  // the one moment a live temporary has no lock
    if (LockExclusive(fd_) != 0) {
      const int err = errno;
      Abandon();
      throw FormatError("cannot lock the temporary file " + Q(temp_) + ": " + Errno(err) + ".");
    }
    struct stat by_fd {}, by_name {};
    if (fstat(fd_, &by_fd) == 0 && lstat(temp_.c_str(), &by_name) == 0 &&
        SameInode(by_fd, by_name)) {
      StopHere("created");
      return;
    }
    // A concurrent run's cleanup took the file before the lock: the name is
    // not ours any more. Forget it, keep nothing, try another.
    ClearTemp();
    temp_.clear();
    close(fd_);
    fd_ = -1;
    if (attempt == 100) {
      throw FormatError("cannot create a temporary file in " + Q(dir_) +
                        ": concurrent runs kept removing it.");
    }
  }
}

// Gives the complete, flushed unnamed file its temporary name.
void AtomicWriter::LinkUnnamed() {
  const std::string proc = ProcFdPath(fd_);
  for (int attempt = 0;; ++attempt) {
    temp_ = NewTempName(attempt);
    SetTemp(temp_);  // before the name exists, as in CreateNamed
    if (linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, temp_.c_str(), AT_SYMLINK_FOLLOW) == 0) return;
    const int err = errno;
    ClearTemp();
    temp_.clear();
    if (err != EEXIST || attempt == 100) {
      throw FormatError("cannot give the new file for " + Q(target_) + " a name in " + Q(dir_) +
                        ": " + Errno(err) + ".");
    }
  }
}

std::string AtomicWriter::Describe() const {
  return temp_.empty() ? "the new, still unnamed file for " + Q(target_) : Q(temp_);
}

AtomicWriter::~AtomicWriter() {
  if (!committed_) Abandon();
  if (fd_ >= 0) close(fd_);
}

void AtomicWriter::Abandon() noexcept {
  // The name goes first, while the lock still shows the file as live; an
  // unnamed file goes with its descriptor.
  if (!temp_.empty()) {
    unlink(temp_.c_str());  // then forget it: a signal in between finds it gone
    ClearTemp();
    temp_.clear();
  }
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void AtomicWriter::Write(const void* data, std::size_t size) {
  if (committed_ || fd_ < 0) throw FormatError("internal error: write after commit.");
  const auto* p = static_cast<const std::uint8_t*>(data);
  constexpr std::size_t kChunk = std::size_t{8} << 20;
  while (size > 0) {
    const std::size_t want = std::min(size, kChunk);
    const ssize_t n = write(fd_, p, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw FormatError("cannot write " + Describe() + ": " + Errno(errno) + ".");
    }
    const std::uint64_t before = written_;
    p += n;
    size -= static_cast<std::size_t>(n);
    written_ += static_cast<std::uint64_t>(n);
    if (progress_) progress_(written_);
    if (before < kChunk && written_ >= kChunk) StopHere("write");
  }
}

std::string AtomicWriter::Commit() {
  if (committed_ || fd_ < 0) throw FormatError("internal error: commit twice.");
  if (fchmod(fd_, mode_) != 0) {
    throw FormatError("cannot set the permissions of " + Describe() + ": " + Errno(errno) + ".");
  }
  if (give_away_) {
    // Best effort: only a privileged process may give a file away.
    int ignored = fchown(fd_, uid_, gid_);
    (void)ignored;
  }
  if (fsync(fd_) != 0) throw FormatError("cannot flush " + Describe() + ": " + Errno(errno) + ".");
  StopHere("written");
  if (unnamed_) {
    LinkUnnamed();
    StopHere("linked");
  }
  // The lock is still held: a cleanup that opened the name just before the
  // rename cannot take the file, and after the rename its re-check finds
  // the name gone. A failure here leaves the name to the destructor.
  if (rename(temp_.c_str(), target_.c_str()) != 0) {
    throw FormatError("cannot rename " + Q(temp_) + " to " + Q(target_) + ": " + Errno(errno) + ".");
  }
  ClearTemp();  // a signal before this line finds the name gone
  temp_.clear();
  committed_ = true;
  StopHere("renamed");
  std::string warning;
  const int dir = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || fsync(dir) != 0) {
    warning = "the new " + Q(target_) + " is in place but its directory could not be flushed (" +
              Errno(errno) + ").";
  }
  if (dir >= 0) close(dir);
  // The data were flushed above; close only releases the lock now.
  close(std::exchange(fd_, -1));
  return warning;
}

// ---------------------------------------------------------------------------

void InstallTempFileCleanup() {
  struct sigaction sa {};
  sa.sa_handler = RemoveTempAndReraise;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  struct sigaction bus {};
  bus.sa_handler = ReportBusError;
  sigemptyset(&bus.sa_mask);
  sigaction(SIGBUS, &bus, nullptr);
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (stat(a.c_str(), &sa) != 0 || stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace sparsenorm::formats
