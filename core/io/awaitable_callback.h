// Awaits, from an Asio coroutine, an operation that reports by calling a function – the DNS
// resolver, the store writer, a slot or lock handed over by the scheduler – from any thread.
// The coroutine resumes on its own executor (its strand), never on the reporting thread.
#pragma once

#include <memory>
#include <utility>

#include "asio/associated_executor.hpp"
#include "asio/async_result.hpp"
#include "asio/awaitable.hpp"
#include "asio/post.hpp"
#include "asio/use_awaitable.hpp"

namespace postgate::io {

// `start(report)` begins the operation; `report(Result)` must be called exactly once, and may be
// copied (it is a std::function's target). The executor to resume on is taken from the
// coroutine's handler when the report comes: a copy of `this_coro::executor` kept beside the
// report and posted to from another thread corrupted the strand's reference count under Asio
// 1.22 (AddressSanitizer: heap-use-after-free in a stand-alone reproduction).
template <typename Result, typename Start>
asio::awaitable<Result> AwaitCallback(Start start) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result)>(
      [&start](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        start([shared](Result result) {
          const auto executor = asio::get_associated_executor(*shared);
          asio::post(executor, [shared, result = std::move(result)]() mutable { std::move (*shared)(std::move(result)); });
        });
      },
      asio::use_awaitable);
}

}  // namespace postgate::io
