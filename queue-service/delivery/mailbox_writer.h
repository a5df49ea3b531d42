// Writes one message into a mailbox, durably, the way Postfix's local(8) does:
//  - Maildir: write the file in tmp/ (unnamed, O_TMPFILE, where the file system has it; else
//    tmp/NAME), fsync, give it its name in new/ (atomic appearance), fsync new/.
//    NAME is chosen by the caller and deterministic, so a retry after a crash finds the file and
//    does not deliver twice.
//  - mbox: append with a "From " line and ">From " quoting, fsync; on any error the file is
//    truncated back to its old size, so a failed delivery leaves no fragment. Locked three ways:
//    in the process (workers are threads, which an fcntl lock does not tell apart), with fcntl
//    and with a PATH.lock dot-lock (other readers and writers, as Postfix on Debian); a message
//    up to 8 MiB is written in one write(2).
// Content arrives through a callback that streams chunks, so memory stays bounded.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace postgate::queue {

// write(2) calls that put message content into a mailbox file (Maildir or mbox) so far, in this
// process: what the mbox one-write promise above is tested by (/proc/self/io would count the
// sanitizer runtime's own writes as well).
uint64_t MailboxContentWrites();

// Calls the given sink with each content chunk in order.
using ContentSource =
    std::function<absl::Status(const std::function<absl::Status(absl::string_view)>& sink)>;

// A mailbox write fails with kFailedPrecondition when mailbox_size_limit forbids it (permanent),
// other codes for I/O trouble (temporary).
struct MailboxWrite {
  std::string headers;        // Prepended lines (Return-Path, Delivered-To…), LF ends.
  ContentSource content;
  uint64_t content_size = 0;  // For the size limit check before writing.
  uint64_t size_limit = 0;    // mailbox_size_limit; 0 = none.
};

// True if NAME already sits in new/ or (with check_cur) in cur/ as "NAME:2,…".
bool MaildirHasMessage(const std::string& maildir, const std::string& name, bool check_cur);

absl::Status WriteMaildir(const std::string& maildir, const std::string& name, const MailboxWrite& write);

// Many Maildir deliveries with WriteMaildir's guarantee at a fraction of its cost: Stage writes
// the file in tmp/ and starts its write-back; Finish fsyncs each file, puts it in new/ and fsyncs
// each new/ directory once. Every file Finish leaves in new/ is durable; one whose fsync, rename
// or directory sync failed is not there (Finish returns the first error). Files still staged
// when the batch is destroyed are removed.
class MaildirBatch {
 public:
  MaildirBatch() = default;
  MaildirBatch(const MaildirBatch&) = delete;
  MaildirBatch& operator=(const MaildirBatch&) = delete;
  ~MaildirBatch();

  absl::Status Stage(const std::string& maildir, const std::string& name, const MailboxWrite& write);
  absl::Status Finish();
  size_t staged() const { return staged_.size(); }

 private:
  struct Staged {
    int fd;
    bool unnamed;  // O_TMPFILE: no tmp/NAME; linked into new/ by Finish.
    std::string tmp_path;
    std::string new_path;
    std::string new_directory;
  };
  // Opens the file to write: unnamed in tmp/ where the file system allows (O_TMPFILE), so its
  // fsync need not also write tmp/ (ext4 syncs a new file's directory with it), and nothing is
  // left behind by a crash; else tmp/NAME.
  int Create(const std::string& maildir, Staged& file);

  std::vector<Staged> staged_;
  absl::flat_hash_set<std::string> ready_maildirs_;  // tmp/, new/ and cur/ exist.
  bool unnamed_unsupported_ = false;
};

// `from_line` is the mbox separator without newline, e.g. "From foo@x  Thu Nov 26 16:23:51 2026".
absl::Status AppendMbox(const std::string& path, const std::string& from_line, const MailboxWrite& write);

}  // namespace postgate::queue
