#include "queue-service/delivery/mailbox_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/strings/str_cat.h"

namespace postgate::queue {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  int error = errno;
  std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(error));
  if (error == ENOSPC || error == EDQUOT || error == EFBIG) return absl::ResourceExhaustedError(message);
  return absl::UnavailableError(message);
}

std::atomic<uint64_t> content_writes{0};  // MailboxContentWrites().

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    content_writes.fetch_add(1, std::memory_order_relaxed);
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : Errno("fsync", dir);
}

absl::Status SizeCheck(const MailboxWrite& write, uint64_t existing) {
  uint64_t total = existing + write.headers.size() + write.content_size;
  if (write.size_limit > 0 && total > write.size_limit) {
    return absl::FailedPreconditionError(
        absl::StrCat("message would exceed mailbox_size_limit (", write.size_limit, " bytes)"));
  }
  return absl::OkStatus();
}

}  // namespace

bool MaildirHasMessage(const std::string& maildir, const std::string& name, bool check_cur) {
  struct stat st;
  if (::stat((maildir + "/new/" + name).c_str(), &st) == 0) return true;
  if (!check_cur) return false;
  std::string prefix = name + ":";
  DIR* dir = ::opendir((maildir + "/cur").c_str());
  if (dir == nullptr) return false;
  bool found = false;
  while (dirent* entry = ::readdir(dir)) {
    absl::string_view file(entry->d_name);
    if (file == name || absl::StartsWith(file, prefix)) {
      found = true;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

namespace {

// An unnamed file (O_TMPFILE) is given its name in new/ through /proc/self/fd; without /proc,
// or on a file system without O_TMPFILE (NFS), files are staged as tmp/NAME instead.
bool UnnamedFilesUsable() {
  static const bool usable = ::access("/proc/self/fd", X_OK) == 0;
  return usable;
}

}  // namespace

MaildirBatch::~MaildirBatch() {
  for (const Staged& file : staged_) {
    ::close(file.fd);
    if (!file.unnamed) ::unlink(file.tmp_path.c_str());  // An unnamed one vanishes by itself.
  }
}

int MaildirBatch::Create(const std::string& maildir, Staged& file) {
  if (UnnamedFilesUsable() && !unnamed_unsupported_) {
    const int fd = ::open((maildir + "/tmp").c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) {
      file.unnamed = true;
      return fd;
    }
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return fd;
    unnamed_unsupported_ = true;
  }
  return ::open(file.tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

absl::Status MaildirBatch::Stage(const std::string& maildir, const std::string& name, const MailboxWrite& write) {
  if (absl::Status fits = SizeCheck(write, 0); !fits.ok()) return fits;
  if (!ready_maildirs_.contains(maildir)) {  // Once per batch, not per file.
    std::error_code error;
    for (const char* sub : {"tmp", "new", "cur"}) {
      std::filesystem::create_directories(maildir + "/" + sub, error);
      if (error) return absl::UnavailableError(absl::StrCat("create ", maildir, "/", sub, ": ", error.message()));
    }
    ready_maildirs_.insert(maildir);
  }
  Staged file{-1, false, absl::StrCat(maildir, "/tmp/", name), absl::StrCat(maildir, "/new/", name),
              maildir + "/new"};
  file.fd = Create(maildir, file);
  if (file.fd < 0) return Errno("create", file.tmp_path);
  // Headers and small content in one write(2); a large chunk goes out as it is.
  constexpr size_t kCoalesce = 64 * 1024;
  std::string pending = write.headers;
  absl::Status status = write.content([&](absl::string_view chunk) {
    if (pending.size() + chunk.size() <= kCoalesce) {
      pending.append(chunk.data(), chunk.size());
      return absl::OkStatus();
    }
    absl::Status flushed = WriteAll(file.fd, std::exchange(pending, std::string()), file.tmp_path);
    return flushed.ok() ? WriteAll(file.fd, chunk, file.tmp_path) : flushed;
  });
  if (status.ok()) status = WriteAll(file.fd, pending, file.tmp_path);
  if (!status.ok()) {
    ::close(file.fd);
    if (!file.unnamed) ::unlink(file.tmp_path.c_str());
    return status;
  }
  // Start the write-back now: the fsyncs in Finish then find most of the work done (and, on a
  // journaling file system, share its commits) instead of each waiting for its own.
  ::sync_file_range(file.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  staged_.push_back(std::move(file));
  return absl::OkStatus();
}

absl::Status MaildirBatch::Finish() {
  absl::Status first_error;
  std::map<std::string, std::vector<std::string>> moved;  // new/ directory → files moved into it.
  for (const Staged& file : staged_) {
    absl::Status status;
    if (::fsync(file.fd) != 0) status = Errno("fsync", file.tmp_path);
    if (file.unnamed) {
      // The name appears with the whole file behind it. One already in new/ (an attempt before
      // a crash wrote it) has the same content: keep it.
      const std::string self = absl::StrCat("/proc/self/fd/", file.fd);
      if (status.ok() && ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, file.new_path.c_str(), AT_SYMLINK_FOLLOW) != 0 &&
          errno != EEXIST) {
        status = Errno("link", file.new_path);
      }
      if (::close(file.fd) != 0 && status.ok()) status = Errno("close", file.new_path);
    } else {
      if (::close(file.fd) != 0 && status.ok()) status = Errno("close", file.tmp_path);
      // rename, not link + unlink: one step fewer. A file already in new/ has the same content,
      // so replacing it changes nothing.
      if (status.ok() && ::rename(file.tmp_path.c_str(), file.new_path.c_str()) != 0) {
        status = Errno("rename", file.new_path);
      }
      if (!status.ok()) ::unlink(file.tmp_path.c_str());
    }
    if (status.ok()) moved[file.new_directory].push_back(file.new_path);
    if (first_error.ok()) first_error = status;
  }
  staged_.clear();
  for (const auto& [directory, files] : moved) {
    absl::Status synced = SyncDirectory(directory);
    if (synced.ok()) continue;
    // Not durable, so not delivered: take the files back, and a later attempt writes them again.
    for (const std::string& path : files) ::unlink(path.c_str());
    if (first_error.ok()) first_error = synced;
  }
  return first_error;
}

absl::Status WriteMaildir(const std::string& maildir, const std::string& name,
                          const MailboxWrite& write) {
  MaildirBatch batch;
  if (absl::Status staged = batch.Stage(maildir, name, write); !staged.ok()) return staged;
  return batch.Finish();
}

namespace {

// Delivery workers are threads of one process, and an fcntl lock belongs to the process: two
// workers would both hold it. So appends to one mailbox are also serialised in the process, on
// one of a fixed set of mutexes picked by the mailbox's path (bounded, however many mailboxes).
absl::Mutex& MailboxMutex(const std::string& path) {
  static absl::Mutex mutexes[64];
  return mutexes[absl::Hash<std::string>()(path) % 64];
}

// When this process started: a dot-lock of ours older than that was left by one that died.
const absl::Time kProcessStart = absl::Now();

// Postfix's dot-lock (mailbox_delivery_lock = fcntl, dotlock on Debian): PATH.lock made with
// O_EXCL, so mail readers that lock that way (mutt, s-nail, procmail) never see half a message.
// A lock older than stale_lock_time (500 s, as Postfix) was left by a dead process: broken. So is
// one older than this process that says it is queue-service's, or says nothing (its label is not
// synced, so a power cut leaves it empty): only one queue-service uses a data directory
// (RocksDB's lock), and this one's writers are serialised in-process, so that lock was left by a
// predecessor that died while it wrote, and a crash must not stall the mailbox for
// stale_lock_time. (A mail reader's lock is held for moments, not across our restart.)
class DotLock {
 public:
  static constexpr absl::Duration kStaleAfter = absl::Seconds(500);
  static constexpr absl::Duration kGiveUpAfter = absl::Seconds(20);  // 20 × deliver_lock_delay
  static constexpr absl::string_view kOurs = "postgate queue-service\n";

  explicit DotLock(std::string mailbox) : path_(std::move(mailbox) + ".lock") {}
  DotLock(const DotLock&) = delete;
  DotLock& operator=(const DotLock&) = delete;
  ~DotLock() {
    if (held_) ::unlink(path_.c_str());
  }

  absl::Status Acquire() {
    const absl::Time give_up = absl::Now() + kGiveUpAfter;
    absl::Duration pause = absl::Milliseconds(5);
    for (;;) {
      const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd >= 0) {
        held_ = true;
        const bool written = ::write(fd, kOurs.data(), kOurs.size()) == static_cast<ssize_t>(kOurs.size());
        ::close(fd);
        (void)written;  // The lock works without its label; only crash recovery reads it.
        return absl::OkStatus();
      }
      if (errno != EEXIST) return Errno("create lock file", path_);
      if (Stale()) {
        ::unlink(path_.c_str());
        continue;
      }
      if (absl::Now() >= give_up) {
        return absl::UnavailableError(absl::StrCat("unable to lock for exclusive access: ", path_, " exists"));
      }
      absl::SleepFor(pause);  // Someone else's lock: its holder removes it; poll as Postfix does.
      pause = std::min(pause * 2, absl::Milliseconds(500));
    }
  }

 private:
  bool Stale() const {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) return false;  // Gone meanwhile: the next try takes it.
    const absl::Time modified = absl::TimeFromTimespec(st.st_mtim);
    if (absl::Now() - modified > kStaleAfter) return true;
    if (modified >= kProcessStart) return false;
    char label[64] = {};
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const ssize_t n = ::read(fd, label, sizeof(label));
    ::close(fd);
    return n == 0 || (n > 0 && absl::string_view(label, static_cast<size_t>(n)) == kOurs);
  }

  std::string path_;
  bool held_ = false;
};

// mboxo quoting: ">From " for "From " at a line start, across chunk borders.
class FromQuoter {
 public:
  void Quote(absl::string_view chunk, std::string& out) {
    out.reserve(out.size() + chunk.size() + 16);
    for (char c : chunk) {
      if (at_line_start_ || !pending_.empty()) {
        pending_.push_back(c);
        if (absl::string_view("From ").substr(0, pending_.size()) == pending_) {
          if (pending_.size() == 5) {
            out += ">From ";
            pending_.clear();
            at_line_start_ = false;
          }
          continue;
        }
        out += pending_;
        at_line_start_ = pending_.back() == '\n';
        pending_.clear();
        continue;
      }
      out.push_back(c);
      at_line_start_ = c == '\n';
    }
  }
  // Ends the message with an empty line, so the next "From " line starts a message.
  void Finish(std::string& out) {
    const bool ends_with_newline = pending_.empty() && at_line_start_;
    out += pending_;
    out += ends_with_newline ? "\n" : "\n\n";
    pending_.clear();
  }

 private:
  bool at_line_start_ = true;
  std::string pending_;  // A possible "From " prefix split over chunks.
};

}  // namespace

absl::Status AppendMbox(const std::string& path, const std::string& from_line,
                        const MailboxWrite& write) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  absl::MutexLock in_process(&MailboxMutex(path));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("open", path);
  absl::Cleanup close_fd = [fd] { ::close(fd); };  // Also releases the fcntl lock.
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  while (::fcntl(fd, F_SETLKW, &lock) != 0) {
    if (errno != EINTR) return Errno("lock", path);
  }
  DotLock dot_lock(path);
  if (absl::Status locked = dot_lock.Acquire(); !locked.ok()) return locked;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Errno("stat", path);
  const off_t original_size = st.st_size;
  if (absl::Status fits = SizeCheck(write, static_cast<uint64_t>(original_size)); !fits.ok()) return fits;

  // The whole message goes out in one write(2) when it fits kOneWrite, so even a reader that
  // ignores every lock never sees part of one; a bigger one is written as it streams, in
  // kOneWrite pieces, under the locks.
  constexpr size_t kOneWrite = 8 * 1024 * 1024;
  FromQuoter quoter;
  std::string out = from_line + "\n";
  quoter.Quote(write.headers, out);
  absl::Status status = write.content([&](absl::string_view chunk) -> absl::Status {
    quoter.Quote(chunk, out);
    if (out.size() < kOneWrite) return absl::OkStatus();
    return WriteAll(fd, std::exchange(out, std::string()), path);
  });
  quoter.Finish(out);
  if (status.ok()) status = WriteAll(fd, out, path);
  if (status.ok() && ::fsync(fd) != 0) status = Errno("fsync", path);
  if (!status.ok() && ::ftruncate(fd, original_size) != 0) {
    // The error reported is the first one; the mailbox may keep a fragment, as Postfix warns.
  }
  return status;
}

uint64_t MailboxContentWrites() { return content_writes.load(std::memory_order_relaxed); }

}  // namespace postgate::queue
