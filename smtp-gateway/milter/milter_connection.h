// One connection to one milter (inet or unix socket): connect within milter_connect_timeout,
// negotiate options, then exchange packets, each reply awaited within a timeout (Progress
// replies restart it, as libmilter's smfi_progress intends). Any failure – refused, timed out,
// closed, a malformed reply – leaves the connection unusable (broken()); the caller applies the
// milter's default action and may open a new one for a later session.
// Runs on the session's executor; one coroutine uses it at a time.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "asio/generic/stream_protocol.hpp"
#include "asio/steady_timer.hpp"
#include "smtp-gateway/milter/milter_config.h"
#include "smtp-gateway/milter/milter_protocol.h"

namespace postgate::gateway::milter {

class MilterConnection {
 public:
  // Connects to `config`'s endpoint within its connect timeout; the error is the system's words
  // ("Connection refused", "Connection timed out").
  static asio::awaitable<absl::StatusOr<std::unique_ptr<MilterConnection>>> Connect(asio::any_io_executor executor,
                                                                                  const MilterConfig& config);
  // Option negotiation: the MTA offers every action and every protocol flag of `config.protocol`;
  // milter::Negotiate() checks the answer. An error leaves the connection broken.
  asio::awaitable<absl::Status> Negotiate(const MilterConfig& config);

  const Negotiated& negotiated() const { return negotiated_; }
  bool broken() const { return broken_; }

  // Sends `packets` (macros and one event) and, when `await_reply`, reads replies until one
  // that ends the event: every reply but Progress is returned, in order – at the end of a
  // message the modification requests, then the final decision. Without `await_reply` it
  // returns an empty list once the bytes are written.
  asio::awaitable<absl::StatusOr<std::vector<Reply>>> Exchange(const std::string& packets, bool await_reply,
                                                               std::chrono::milliseconds timeout);
  // Writes without awaiting any reply (ABORT, QUIT, QUIT_NC).
  asio::awaitable<absl::Status> Send(const std::string& packets, std::chrono::milliseconds timeout);
  void Close();

 private:
  MilterConnection(asio::any_io_executor executor, std::string name);
  asio::awaitable<absl::Status> Write(const std::string& bytes, std::chrono::steady_clock::time_point deadline);
  // The next reply, or an error (timeout, closed, malformed); Progress replies are skipped and
  // restart the timeout.
  asio::awaitable<absl::StatusOr<Reply>> Read(std::chrono::milliseconds timeout);
  absl::Status Broken(absl::Status status);

  std::string name_;
  asio::generic::stream_protocol::socket socket_;
  asio::steady_timer timer_;
  ReplyReader reader_;
  Negotiated negotiated_;
  bool broken_ = false;
};

}  // namespace postgate::gateway::milter
