#include "smtp-gateway/session/smtp_session.h"

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"
#include "core/smtp/data_decoder.h"
#include "core/smtp/line_reader.h"
#include "smtp-gateway/protocol/received_header.h"
#include "core/base/absl_fmt.h"
#include "spdlog/spdlog.h"

namespace postgate::gateway {
namespace {

using namespace asio::experimental::awaitable_operators;
using asio::ip::tcp;

constexpr auto kAsTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kReadSize = 4096;
// Content goes to the queue in pieces of this size: a session never holds more of a message.
constexpr size_t kChunkSize = 64 * 1024;

// Per-verb counts for Postfix's "disconnect from … ehlo=1 mail=1 rcpt=0/1 … commands=3/4".
class CommandTally {
 public:
  void Count(smtp::Verb verb, bool ok) {
    for (Entry& entry : entries_) {
      if (entry.verb == verb) {
        entry.ok += ok;
        entry.total++;
        return;
      }
    }
    entries_.push_back({verb, ok ? 1 : 0, 1});
  }
  std::string Summary() const {
    std::string out;
    int ok = 0, total = 0;
    for (const Entry& entry : entries_) {
      absl::StrAppend(&out, " ", absl::AsciiStrToLower(smtp::VerbName(entry.verb)), "=",
                      Fraction(entry.ok, entry.total));
      ok += entry.ok;
      total += entry.total;
    }
    absl::StrAppend(&out, " commands=", Fraction(ok, total));
    return out;
  }

 private:
  struct Entry {
    smtp::Verb verb;
    int ok, total;
  };
  static std::string Fraction(int ok, int total) {
    return ok == total ? absl::StrCat(ok) : absl::StrCat(ok, "/", total);
  }
  std::vector<Entry> entries_;
};

class SmtpSession {
 public:
  SmtpSession(tcp::socket socket, const SessionEnvironment& environment)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        env_(environment),
        reader_(environment.line_length_limit) {}

  asio::awaitable<void> Run() {
    std::error_code ignored;
    tcp::endpoint peer = socket_.remote_endpoint(ignored);
    address_ = peer.address().is_v6() && peer.address().to_v6().is_v4_mapped()
                   ? asio::ip::make_address_v4(asio::ip::v4_mapped, peer.address().to_v6()).to_string()
                   : peer.address().to_string();
    socket_.set_option(tcp::no_delay(true), ignored);
    // No co_await inside ?: – g++ 12 miscompiles that (the temporary string dangles).
    hostname_ = "unknown";
    if (env_.peername_lookup) hostname_ = co_await LookUpName(peer);
    client_ = absl::StrCat(hostname_, "[", address_, "]");
    spdlog::info("connect from {}", client_);
    env_.metrics->connections.Increment();
    env_.metrics->active_sessions.Increment();

    decider_ = env_.policy->ForClient(address_);
    machine_.emplace(env_.limits, *decider_);
    machine_->Greeting().AppendTo(&output_);
    co_await Serve();

    env_.metrics->active_sessions.Decrement();
    spdlog::info("disconnect from {}{}", client_, tally_.Summary());
    socket_.close(ignored);
  }

 private:
  // The command loop; returns when the session is over for any reason.
  asio::awaitable<void> Serve() {
    for (;;) {
      size_t consumed = 0;
      std::optional<smtp::CommandLine> line = reader_.Next(input_, &consumed);
      if (!line) {
        input_.erase(0, consumed);
        // Nothing complete left: answer the whole pipelined group, then wait for more.
        if (!co_await Flush()) co_return;
        if (!co_await ReadMore()) co_return;
        continue;
      }
      protocol::Step step = machine_->OnLine(*line);
      input_.erase(0, consumed);  // `line` points into input_: only now may it move.
      if (step.action == protocol::Action::kOpenQueue) {
        step = co_await ReceiveMessage();
        if (!step.reply) {  // The client went away in the middle of DATA.
          tally_.Count(smtp::Verb::kData, false);
          co_return;
        }
      }
      Answer(step);
      if (step.action == protocol::Action::kClose) {
        co_await Flush();
        co_return;
      }
    }
  }

  void Answer(const protocol::Step& step) {
    if (!step.reply) return;
    const smtp::Reply& reply = *step.reply;
    const smtp::Verb verb = machine_->last_verb();
    reply.AppendTo(&output_);
    if (reply.code == 354) return;  // DATA is counted once, by its final reply.
    env_.metrics->CountCommand(smtp::VerbName(verb), reply.code);
    tally_.Count(verb, reply.code < 400);
    if (reply.code >= 400 && (verb == smtp::Verb::kRcpt || verb == smtp::Verb::kData ||
                              verb == smtp::Verb::kMail)) {
      absl::string_view text = reply.lines.empty() ? "" : absl::string_view(reply.lines.front());
      env_.metrics->CountReject(GatewayMetrics::RejectReason(reply.code, text.substr(0, 5)));
      spdlog::info("NOQUEUE: reject: {} from {}: {} {}; from=<{}> proto={} helo=<{}>",
                   smtp::VerbName(verb), client_, reply.code, text, machine_->transaction().sender,
                   machine_->esmtp() ? "ESMTP" : "SMTP", machine_->helo());
    }
  }

  // DATA: open the queue, say 354, stream the content, commit. Returns the final reply; a step
  // without a reply means the connection is gone.
  asio::awaitable<protocol::Step> ReceiveMessage() {
    const protocol::Transaction& transaction = machine_->transaction();
    const OutgoingEnvelope envelope{transaction, address_, hostname_, machine_->helo(),
                                    machine_->esmtp() ? "ESMTP" : "SMTP"};
    absl::StatusOr<std::unique_ptr<MessageUpload>> opened = co_await env_.queue->Open(envelope);
    if (!opened.ok()) {
      spdlog::warn("warning: queue file write error opening a message for {}: {}", client_,
                   opened.status().ToString());
    }
    protocol::Step step = machine_->QueueOpened(opened.ok());
    if (step.action != protocol::Action::kReadData) co_return step;
    std::unique_ptr<MessageUpload> upload = *std::move(opened);
    const std::string queue_id = upload->queue_id();
    spdlog::info("{}: client={}", queue_id, client_);
    Answer(step);
    if (!co_await Flush()) co_return protocol::Step{};

    std::string chunk = protocol::FormatReceivedHeader(
        {machine_->helo(), hostname_, address_, env_.limits.hostname, env_.mail_name,
         machine_->esmtp() ? "ESMTP" : "SMTP", queue_id, transaction.recipients,
         absl::FormatTime("%a, %d %b %Y %H:%M:%S %z (%Z)", absl::Now(), absl::LocalTimeZone())});
    uint64_t client_bytes = 0, stored_bytes = 0;
    bool too_big = false;
    absl::Status queue_status;
    smtp::DataDecoder decoder;
    for (;;) {
      const size_t before = chunk.size();
      input_.erase(0, decoder.Decode(input_, &chunk));
      client_bytes += chunk.size() - before;
      if (env_.limits.message_size_limit > 0 && client_bytes > env_.limits.message_size_limit) {
        too_big = true;
      }
      if (too_big || !queue_status.ok()) {
        upload.reset();  // Cancels the upload: the queue keeps nothing. Read on to the end.
        chunk.clear();
      } else if (chunk.size() >= kChunkSize) {
        stored_bytes += chunk.size();
        queue_status = co_await upload->Write(std::exchange(chunk, std::string()));
      }
      if (decoder.done()) break;
      if (!co_await ReadMore()) co_return protocol::Step{};
    }

    protocol::DataOutcome outcome = protocol::DataOutcome::kQueueError;
    if (too_big) {
      outcome = protocol::DataOutcome::kTooBig;
    } else if (queue_status.ok()) {
      const absl::Time end_of_data = absl::Now();
      stored_bytes += chunk.size();
      if (!chunk.empty()) queue_status = co_await upload->Write(std::move(chunk));
      if (queue_status.ok()) queue_status = co_await upload->Commit(stored_bytes);
      if (queue_status.ok()) {
        outcome = protocol::DataOutcome::kQueued;
        env_.metrics->enqueue_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - end_of_data));
        env_.metrics->messages_accepted.Increment();
        env_.metrics->accepted_bytes.Increment(static_cast<double>(stored_bytes));
        env_.metrics->message_bytes.Observe(static_cast<double>(stored_bytes));
      }
    }
    if (!queue_status.ok()) {
      spdlog::warn("{}: warning: queue file write error: {}", queue_id, queue_status.ToString());
    }
    co_return machine_->DataFinished(outcome, queue_id);
  }

  // Reads what the client sent next into input_. False when the client is gone or timed out
  // (then the 421 has been sent).
  asio::awaitable<bool> ReadMore() {
    const size_t old_size = input_.size();
    input_.resize(old_size + kReadSize);
    timer_.expires_after(env_.timeout);
    auto result = co_await (
        socket_.async_read_some(asio::buffer(input_.data() + old_size, kReadSize), kAsTuple) ||
        timer_.async_wait(kAsTuple));
    if (result.index() == 1) {
      input_.resize(old_size);
      spdlog::info("timeout after {} from {}", smtp::VerbName(machine_->last_verb()), client_);
      output_.clear();
      absl::StrAppend(&output_, "421 4.4.2 ", env_.limits.hostname, " Error: timeout exceeded\r\n");
      co_await Flush();
      co_return false;
    }
    auto [error, bytes] = std::get<0>(result);
    input_.resize(old_size + bytes);
    if (error) co_return false;
    // An idle session keeps a small buffer, whatever a burst once needed.
    if (input_.empty() && input_.capacity() > 4 * kChunkSize) input_.shrink_to_fit();
    co_return true;
  }

  asio::awaitable<bool> Flush() {
    if (output_.empty()) co_return true;
    timer_.expires_after(env_.timeout);
    auto result = co_await (asio::async_write(socket_, asio::buffer(output_), kAsTuple) ||
                            timer_.async_wait(kAsTuple));
    output_.clear();
    co_return result.index() == 0 && !std::get<0>(std::get<0>(result));
  }

  // Postfix's client name: the reverse name, only if it resolves back to the address.
  asio::awaitable<std::string> LookUpName(const tcp::endpoint& peer) {
    tcp::resolver resolver(socket_.get_executor());
    auto [error, names] = co_await resolver.async_resolve(peer, kAsTuple);
    if (error || names.empty()) co_return "unknown";
    std::string name = names.begin()->host_name();
    if (name == address_ || name.empty()) co_return "unknown";
    auto [forward_error, addresses] =
        co_await resolver.async_resolve(name, "", tcp::resolver::numeric_service, kAsTuple);
    if (forward_error) co_return "unknown";
    for (const auto& entry : addresses) {
      asio::ip::address address = entry.endpoint().address();
      if (address.to_string() == address_ ||
          (address.is_v4() && peer.address().is_v6() && peer.address().to_v6().is_v4_mapped() &&
           address.to_string() == address_)) {
        co_return name;
      }
    }
    co_return "unknown";
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  const SessionEnvironment& env_;
  smtp::LineReader reader_;
  std::unique_ptr<protocol::Decider> decider_;
  std::optional<protocol::SessionMachine> machine_;
  std::string input_;
  std::string output_;
  std::string address_;
  std::string hostname_;
  std::string client_;
  CommandTally tally_;
};

}  // namespace

asio::awaitable<void> RunSmtpSession(tcp::socket socket, const SessionEnvironment& environment) {
  SmtpSession session(std::move(socket), environment);
  co_await session.Run();
}

}  // namespace postgate::gateway
