// How a session hands a message to the queue: open (the queue assigns the ID), write the content
// in chunks, commit. Commit returns OK only once the queue has the message on disk. Dropping an
// upload without a successful Commit abandons it, and the queue keeps nothing of it.
// Operations are awaitables on the caller's executor; one upload is used by one coroutine.
// Arguments are taken by reference: g++ 12 mishandles aggregates passed by value to coroutines.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "asio/awaitable.hpp"
#include "smtp-gateway/protocol/session_machine.h"

namespace postgate::gateway {

struct OutgoingEnvelope {
  protocol::Transaction transaction;
  std::string client_address;
  std::string client_hostname;
  std::string helo;
  std::string protocol;  // "SMTP" / "ESMTP".
};

// What the queue stores with a message besides its content, known only at its end.
struct CommitExtras {
  // Header fields to store in front of the content – those computed over all of it, as the
  // DKIM-Signature ("" for none).
  std::string header_prefix;
  bool hold = false;        // header_checks HOLD: stored on hold (postsuper -h), with the reason.
  std::string hold_reason;
  std::string redirect_to;  // header_checks REDIRECT: the one recipient instead of the envelope's.
  // Milters' envelope edits: the new sender, and the whole new recipient list with its options.
  bool sender_changed = false;
  std::string sender{};
  bool recipients_changed = false;
  std::vector<std::string> recipients{};
  std::vector<protocol::RecipientDsn> recipient_dsn{};
};

class MessageUpload {
 public:
  virtual ~MessageUpload() = default;
  virtual const std::string& queue_id() const = 0;
  virtual asio::awaitable<absl::Status> Write(std::string chunk) = 0;
  // Sends `last_chunk` (may be empty) with the commit, which saves the queue a write for a small
  // message. `size` is the total of all chunks, the last one included; the queue checks it.
  virtual asio::awaitable<absl::Status> Commit(std::string last_chunk, uint64_t size, const CommitExtras& extras) = 0;
};

class QueueClient {
 public:
  virtual ~QueueClient() = default;
  virtual asio::awaitable<absl::StatusOr<std::unique_ptr<MessageUpload>>> Open(
      const OutgoingEnvelope& envelope) = 0;
  // ETRN: deliver deferred mail for `domain` now. Returns how many messages were scheduled.
  virtual asio::awaitable<absl::StatusOr<uint32_t>> Flush(const std::string& domain,
                                                          bool include_subdomains) = 0;
};

}  // namespace postgate::gateway
