#include "smtp-gateway/session/smtp_server.h"

#include "asio/co_spawn.hpp"
#include "asio/post.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "spdlog/spdlog.h"

namespace postgate::gateway {

namespace {
constexpr auto kAsTuple = asio::experimental::as_tuple(asio::use_awaitable);
}  // namespace

SessionSlots::SessionSlots(asio::io_context& acceptor_context, size_t limit)
    : context_(acceptor_context), limit_(std::max<size_t>(1, limit)), wake_(acceptor_context) {}

asio::awaitable<void> SessionSlots::Acquire() {
  // Check and wait happen on context_ without a suspension in between, and Release wakes us by
  // posting to context_: a slot freed in that gap is never missed.
  while (in_use_.load() >= limit_) {
    if (!warned_) {
      spdlog::warn("postgate_smtpd_session_limit ({}) reached: new clients wait until sessions end", limit_);
      warned_ = true;
    }
    wake_.expires_at(asio::steady_timer::time_point::max());
    co_await wake_.async_wait(kAsTuple);
  }
  warned_ = false;
  in_use_.fetch_add(1);
}

void SessionSlots::Release() {
  if (in_use_.fetch_sub(1) >= limit_) asio::post(context_, [this] { wake_.cancel(); });
}

asio::awaitable<void> AcceptSmtpConnections(asio::ip::tcp::acceptor& acceptor,
                                            std::vector<asio::io_context*> contexts,
                                            CurrentEnvironment environment, SessionSlots& slots) {
  size_t next = 0;
  for (;;) {
    co_await slots.Acquire();
    asio::io_context& context = *contexts[next++ % contexts.size()];
    auto [error, socket] = co_await acceptor.async_accept(context, kAsTuple);
    if (error) slots.Release();
    if (error == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (error) {
      // Out of descriptors or memory: back off instead of spinning; clients wait in the backlog.
      spdlog::warn("accept: {}", error.message());
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
      co_await pause.async_wait(kAsTuple);
      continue;
    }
    asio::co_spawn(context, RunSmtpSession(std::move(socket), environment()),
                   [&slots](std::exception_ptr failure) {
                     slots.Release();
                     if (!failure) return;
                     try {
                       std::rethrow_exception(failure);
                     } catch (const std::exception& e) {
                       spdlog::error("session ended by an exception: {}", e.what());
                     } catch (...) {  // Never let it escape into the io_context's thread.
                       spdlog::error("session ended by an unknown exception");
                     }
                   });
  }
}

}  // namespace postgate::gateway
