#include "formats/file.h"

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
  mode_t mode = 0666 & ~CurrentUmask();
  bool replaces = false;
  struct stat st {};
  if (lstat(target.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode) && stat(target.c_str(), &st) != 0) {
      throw FormatError(Q(target) + " is a symbolic link to a missing file (" + Errno(errno) + ").");
    }
    if (!S_ISREG(st.st_mode)) throw FormatError(Q(target) + " exists and is not a regular file.");
    target_ = RealPath(target);
    replaces = true;
    mode = st.st_mode & 07777;
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
  std::string name = BaseName(target_).substr(0, 200);
  // The name is recorded for the signal handler before the file exists:
  // a signal may land on any thread (OpenMP's too), so masking it here
  // would not close the gap between creating the file and recording it.
  // The handler's unlink of a name not yet created is harmless.
  for (int attempt = 0;; ++attempt) {
    std::uint64_t random = 0;
    if (getrandom(&random, sizeof random, 0) != sizeof random) {
      random = static_cast<std::uint64_t>(getpid()) * 0x9e3779b97f4a7c15ull + attempt;
    }
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(random));
    temp_ = dir_ + "/." + name + ".sparsenorm-" + suffix;
    SetTemp(temp_);
    fd_ = open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ >= 0) break;
    const int err = errno;
    ClearTemp();
    temp_.clear();
    if (err != EEXIST || attempt == 100) {
      throw FormatError("cannot create a temporary file in " + Q(dir_) + ": " + Errno(err) + ".");
    }
  }
  if (fchmod(fd_, mode) != 0) {
    const int err = errno;
    Abandon();
    throw FormatError("cannot set the permissions of " + Q(temp_) + ": " + Errno(err) + ".");
  }
  if (replaces && (st.st_uid != geteuid() || st.st_gid != getegid())) {
    // Best effort: only a privileged process may give a file away.
    int ignored = fchown(fd_, st.st_uid, st.st_gid);
    (void)ignored;
  }
}

AtomicWriter::~AtomicWriter() {
  if (!committed_) Abandon();
}

void AtomicWriter::Abandon() noexcept {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (!temp_.empty()) {
    unlink(temp_.c_str());  // then forget it: a signal in between finds it gone
    ClearTemp();
    temp_.clear();
  }
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
      throw FormatError("cannot write " + Q(temp_) + ": " + Errno(errno) + ".");
    }
    p += n;
    size -= static_cast<std::size_t>(n);
    written_ += static_cast<std::uint64_t>(n);
    if (progress_) progress_(written_);
  }
}

std::string AtomicWriter::Commit() {
  if (committed_ || fd_ < 0) throw FormatError("internal error: commit twice.");
  if (fsync(fd_) != 0) throw FormatError("cannot flush " + Q(temp_) + ": " + Errno(errno) + ".");
  const int fd = std::exchange(fd_, -1);
  if (close(fd) != 0) throw FormatError("cannot close " + Q(temp_) + ": " + Errno(errno) + ".");
  if (rename(temp_.c_str(), target_.c_str()) != 0) {
    throw FormatError("cannot rename " + Q(temp_) + " to " + Q(target_) + ": " + Errno(errno) + ".");
  }
  ClearTemp();  // a signal before this line finds the name gone
  committed_ = true;
  const int dir = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || fsync(dir) != 0) {
    const int err = errno;
    if (dir >= 0) close(dir);
    return "the new " + Q(target_) + " is in place but its directory could not be flushed (" +
           Errno(err) + ").";
  }
  close(dir);
  return {};
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
