// Accepts SMTP connections and spreads them over a pool of single-threaded io_contexts, one
// coroutine per session – many thousands of sessions on a few threads, never a thread each.
#pragma once

#include <memory>
#include <vector>

#include "asio/awaitable.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "smtp-gateway/session/smtp_session.h"

namespace postgate::gateway {

// Accepts on `acceptor` until it is closed; new sessions go round-robin to `contexts`.
asio::awaitable<void> AcceptSmtpConnections(asio::ip::tcp::acceptor& acceptor,
                                            std::vector<asio::io_context*> contexts,
                                            const SessionEnvironment& environment);

}  // namespace postgate::gateway
