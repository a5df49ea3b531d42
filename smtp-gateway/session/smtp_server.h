// Accepts SMTP connections and spreads them over a pool of single-threaded io_contexts, one
// coroutine per session – many thousands of sessions on a few threads, never a thread each.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "asio/awaitable.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "smtp-gateway/session/smtp_session.h"

namespace postgate::gateway {

// The settings for a session starting now (they change when main.cf is reloaded).
using CurrentEnvironment = std::function<std::shared_ptr<const SessionEnvironment>()>;

// Accepts on `acceptor` until it is closed; new sessions go round-robin to `contexts`.
asio::awaitable<void> AcceptSmtpConnections(asio::ip::tcp::acceptor& acceptor,
                                            std::vector<asio::io_context*> contexts,
                                            CurrentEnvironment environment);

}  // namespace postgate::gateway
