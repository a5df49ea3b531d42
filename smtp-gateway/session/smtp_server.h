// Accepts SMTP connections and spreads them over a pool of single-threaded io_contexts, one
// coroutine per session – many thousands of sessions on a few threads, never a thread each.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "asio/awaitable.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/steady_timer.hpp"
#include "smtp-gateway/session/smtp_session.h"

namespace postgate::gateway {

// postgate_smtpd_session_limit: at most this many sessions at once, over all listeners. At the
// limit the acceptors stop accepting – new clients wait in the kernel's listen queue, as they
// wait for a free smtpd process under Postfix – and go on as sessions end, so the gateway never
// runs out of memory or descriptors however many clients come.
class SessionSlots {
 public:
  // Waiters run on `acceptor_context`.
  SessionSlots(asio::io_context& acceptor_context, size_t limit);
  // Takes a slot, waiting for one to come free (on the acceptor's context only).
  asio::awaitable<void> Acquire();
  // Gives a slot back; from any thread.
  void Release();
  size_t in_use() const { return in_use_.load(); }
  size_t limit() const { return limit_; }

 private:
  asio::io_context& context_;
  const size_t limit_;
  std::atomic<size_t> in_use_{0};
  asio::steady_timer wake_;  // Waited on and cancelled only on context_.
  bool warned_ = false;      // "limit reached" logged once per stretch at the limit.
};

// The settings for a session starting now (they change when main.cf is reloaded).
using CurrentEnvironment = std::function<std::shared_ptr<const SessionEnvironment>()>;

// Accepts on `acceptor` until it is closed, each session taking one of `slots`; new sessions go
// round-robin to `contexts`.
asio::awaitable<void> AcceptSmtpConnections(asio::ip::tcp::acceptor& acceptor,
                                            std::vector<asio::io_context*> contexts,
                                            CurrentEnvironment environment, SessionSlots& slots);

}  // namespace postgate::gateway
