// g++ 12 at -O1 with AddressSanitizer: see queue-service/delivery/smtp_deliverer.cc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "smtp-gateway/milter/milter_connection.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "asio/buffer.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/local/stream_protocol.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"

namespace postgate::gateway::milter {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto kAsTuple = asio::experimental::as_tuple(asio::use_awaitable);

std::string Millis(std::chrono::milliseconds timeout) {
  return timeout.count() % 1000 == 0 ? absl::StrCat(timeout.count() / 1000, "s") : absl::StrCat(timeout.count(), "ms");
}

}  // namespace

MilterConnection::MilterConnection(asio::any_io_executor executor, std::string name)
    : name_(std::move(name)), socket_(executor), timer_(executor) {}

absl::Status MilterConnection::Broken(absl::Status status) {
  broken_ = true;
  std::error_code ignored;
  socket_.close(ignored);
  return status;
}

void MilterConnection::Close() {
  broken_ = true;
  std::error_code ignored;
  socket_.close(ignored);
}

asio::awaitable<absl::StatusOr<std::unique_ptr<MilterConnection>>> MilterConnection::Connect(
    asio::any_io_executor executor, const MilterConfig& config) {
  std::unique_ptr<MilterConnection> connection(new MilterConnection(executor, config.name));
  const auto deadline = std::chrono::steady_clock::now() + config.connect_timeout;
  connection->timer_.expires_at(deadline);
  std::error_code error;
  if (config.endpoint.kind == MilterEndpoint::Kind::kUnix) {
    const asio::local::stream_protocol::endpoint local(config.endpoint.path);
    const asio::generic::stream_protocol::endpoint endpoint(local);
    auto result = co_await (connection->socket_.async_connect(endpoint, kAsTuple) ||
                            connection->timer_.async_wait(kAsTuple));
    error = result.index() == 0 ? std::get<0>(std::get<0>(result)) : asio::error::timed_out;
  } else {
    // A name (a Kubernetes Service) is resolved for each connection: its address may change.
    asio::ip::tcp::resolver resolver(executor);
    auto resolved = co_await (resolver.async_resolve(config.endpoint.host, std::to_string(config.endpoint.port),
                                                     kAsTuple) ||
                              connection->timer_.async_wait(kAsTuple));
    if (resolved.index() != 0) {
      error = asio::error::timed_out;
    } else if (auto& [resolve_error, results] = std::get<0>(resolved); resolve_error) {
      error = resolve_error;
    } else {
      error = asio::error::host_not_found;
      for (const auto& entry : results) {
        const asio::generic::stream_protocol::endpoint endpoint(entry.endpoint());
        std::error_code ignored;
        connection->socket_.close(ignored);
        auto result = co_await (connection->socket_.async_connect(endpoint, kAsTuple) ||
                                connection->timer_.async_wait(kAsTuple));
        error = result.index() == 0 ? std::get<0>(std::get<0>(result)) : asio::error::timed_out;
        if (!error || result.index() != 0) break;
      }
    }
  }
  if (error) {
    // Postfix's words: "connect to Milter service NAME: Connection refused".
    if (error == asio::error::timed_out) co_return absl::DeadlineExceededError("Connection timed out");
    co_return absl::UnavailableError(error.message());
  }
  co_return connection;
}

asio::awaitable<absl::Status> MilterConnection::Negotiate(const MilterConfig& config) {
  const uint32_t offered_protocol = OfferedProtocolFlags(config.protocol);
  absl::StatusOr<std::vector<Reply>> answer =
      co_await Exchange(OptionNegotiation(kAllActions, offered_protocol, config.protocol), true, config.command_timeout);
  if (!answer.ok()) co_return answer.status();
  if (answer->size() != 1) co_return Broken(absl::DataLossError("unexpected reply to option negotiation"));
  absl::StatusOr<Negotiated> negotiated = milter::Negotiate(answer->front(), kAllActions, offered_protocol);
  if (!negotiated.ok()) co_return Broken(negotiated.status());
  negotiated_ = *std::move(negotiated);
  co_return absl::OkStatus();
}

asio::awaitable<absl::Status> MilterConnection::Write(const std::string& bytes,
                                                      std::chrono::steady_clock::time_point deadline) {
  if (broken_) co_return absl::UnavailableError("connection closed earlier");
  timer_.expires_at(deadline);
  auto result = co_await (asio::async_write(socket_, asio::buffer(bytes), kAsTuple) || timer_.async_wait(kAsTuple));
  if (result.index() != 0) co_return Broken(absl::DeadlineExceededError("write timeout"));
  if (const std::error_code error = std::get<0>(std::get<0>(result))) {
    co_return Broken(absl::UnavailableError(absl::StrCat("write: ", error.message())));
  }
  co_return absl::OkStatus();
}

asio::awaitable<absl::StatusOr<Reply>> MilterConnection::Read(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (std::optional<absl::StatusOr<Reply>> next = reader_.Next()) {
      if (!next->ok()) co_return Broken(next->status());
      if ((*next)->kind == Reply::Kind::kProgress) {
        deadline = std::chrono::steady_clock::now() + timeout;  // Still working: wait on.
        continue;
      }
      co_return **std::move(next);
    }
    char buffer[8192];
    timer_.expires_at(deadline);
    auto result = co_await (socket_.async_read_some(asio::buffer(buffer), kAsTuple) || timer_.async_wait(kAsTuple));
    if (result.index() != 0) {
      co_return Broken(absl::DeadlineExceededError(absl::StrCat("read timeout after ", Millis(timeout))));
    }
    auto [error, read] = std::get<0>(result);
    if (error == asio::error::eof) co_return Broken(absl::UnavailableError("read: connection closed by the milter"));
    if (error) co_return Broken(absl::UnavailableError(absl::StrCat("read: ", error.message())));
    reader_.Feed(absl::string_view(buffer, read));
  }
}

asio::awaitable<absl::StatusOr<std::vector<Reply>>> MilterConnection::Exchange(const std::string& packets,
                                                                               bool await_reply,
                                                                               std::chrono::milliseconds timeout) {
  if (absl::Status written = co_await Write(packets, std::chrono::steady_clock::now() + timeout); !written.ok()) {
    co_return written;
  }
  std::vector<Reply> replies;
  if (!await_reply) co_return replies;
  for (;;) {
    absl::StatusOr<Reply> reply = co_await Read(timeout);
    if (!reply.ok()) co_return reply.status();
    const Reply::Kind kind = reply->kind;
    replies.push_back(*std::move(reply));
    switch (kind) {
      case Reply::Kind::kAddHeader:
      case Reply::Kind::kInsertHeader:
      case Reply::Kind::kChangeHeader:
      case Reply::Kind::kAddRecipient:
      case Reply::Kind::kDeleteRecipient:
      case Reply::Kind::kReplaceBody:
      case Reply::Kind::kChangeSender:
      case Reply::Kind::kQuarantine:
        continue;  // Modification requests come before the end of message's decision.
      default:
        co_return replies;
    }
  }
}

asio::awaitable<absl::Status> MilterConnection::Send(const std::string& packets, std::chrono::milliseconds timeout) {
  co_return co_await Write(packets, std::chrono::steady_clock::now() + timeout);
}

}  // namespace postgate::gateway::milter
