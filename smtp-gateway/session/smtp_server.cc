#include "smtp-gateway/session/smtp_server.h"

#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "spdlog/spdlog.h"

namespace postgate::gateway {

asio::awaitable<void> AcceptSmtpConnections(asio::ip::tcp::acceptor& acceptor,
                                            std::vector<asio::io_context*> contexts,
                                            CurrentEnvironment environment) {
  constexpr auto kAsTuple = asio::experimental::as_tuple(asio::use_awaitable);
  size_t next = 0;
  for (;;) {
    asio::io_context& context = *contexts[next++ % contexts.size()];
    auto [error, socket] = co_await acceptor.async_accept(context, kAsTuple);
    if (error == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (error) {
      // Out of descriptors or memory: back off instead of spinning; clients wait in the backlog.
      spdlog::warn("accept: {}", error.message());
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(kAsTuple);
      continue;
    }
    asio::co_spawn(context, RunSmtpSession(std::move(socket), environment()), asio::detached);
  }
}

}  // namespace postgate::gateway
