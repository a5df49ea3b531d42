#include "queue-service/delivery/smtp_deliverer.h"

#include <exception>
#include <optional>
#include <utility>

// g++ 12 at -O1 with AddressSanitizer inlines Asio's coroutine frame allocation (aligned_alloc in
// awaitable_frame_base::operator new) and then flags the matching operator delete (which frees it
// with std::free) as a mismatch: a false positive of the checker, not of the code.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "asio/co_spawn.hpp"
#include "asio/strand.hpp"
#include "core/io/awaitable_callback.h"

namespace postgate::queue {

SmtpDeliverer::SmtpDeliverer(MessageStore& store, QueueMetrics& metrics, SmtpDelivererOptions options,
                             asio::any_io_executor executor)
    : store_(store), metrics_(metrics), options_(std::move(options)), executor_(std::move(executor)),
      resolver_(options_.dns_servers), connection_cache_(options_.connection_cache, executor_) {}

void SmtpDeliverer::Deliver(const DeliveryRequest& request, DeliveryDone done) {
  const size_t count = request.recipients.size();
  // A strand per conversation: its socket's handlers never run at once.
  asio::co_spawn(asio::make_strand(executor_), Converse(request),
                 [done = std::move(done), count](std::exception_ptr error, DeliveryResult result) {
                   if (error) {
                     // DeliverOverSmtp reports by value; this keeps an unforeseen exception (an
                     // allocation, the resolver) a deferral too, never the end of the process.
                     std::string what = "unknown error";
                     try {
                       std::rethrow_exception(error);
                     } catch (const std::exception& e) {
                       what = e.what();
                     } catch (...) {
                     }
                     result = {};
                     result.outcomes.assign(
                         count, {rec::RECIPIENT_STATE_DEFERRED, 0, "4.3.0", "SMTP client error: " + what, "none"});
                   }
                   done(std::move(result));
                 });
}

asio::awaitable<DeliveryResult> SmtpDeliverer::Converse(DeliveryRequest request) {
  DeliveryResult result;
  absl::StatusOr<std::vector<SmtpCandidate>> candidates = co_await Candidates(request.next_hop);
  if (!candidates.ok()) {
    // A domain that does not exist bounces; DNS trouble defers. No server was asked.
    const bool missing = absl::IsNotFound(candidates.status());
    result.outcomes.assign(request.recipients.size(),
                           {missing ? rec::RECIPIENT_STATE_BOUNCED : rec::RECIPIENT_STATE_DEFERRED, 0,
                            missing ? "5.4.4" : "4.4.3", std::string(candidates.status().message()), "none"});
    co_return result;
  }
  const StoredMessage& record = *request.record;
  // The content: the header prefix (the DKIM-Signature) when there is one, then the chunks.
  const uint32_t first_chunk = record.header_prefix().empty() ? 0 : 1;
  const ContentPieces pieces = [this, &record, first_chunk](uint32_t index) -> absl::StatusOr<std::optional<std::string>> {
    if (index < first_chunk) return std::optional<std::string>(record.header_prefix());
    if (index - first_chunk >= record.chunk_count()) return std::nullopt;
    absl::StatusOr<std::string> chunk = store_.ReadChunk(record, index - first_chunk);
    if (!chunk.ok()) return chunk.status();
    return std::optional<std::string>(*std::move(chunk));
  };
  result.outcomes = co_await DeliverOverSmtp(request.next_hop, *candidates, options_.client, record.message(),
                                             request.recipients, pieces, &connection_cache_);
  // Any reply, even a refusal, shows the next hop is there; a conversation in which nobody got
  // one (no connection, no greeting) shows it is not.
  bool answered = false;
  for (const DeliveryOutcome& outcome : result.outcomes) {
    answered |= outcome.server_answered || outcome.state != rec::RECIPIENT_STATE_DEFERRED || outcome.smtp_code != 0;
  }
  result.next_hop_answered = result.outcomes.empty() || answered;
  if (const int use = result.outcomes.empty() ? 0 : result.outcomes.front().connection_use; use > 0) {
    metrics_.smtp_connection_cache.Add({{"result", use > 1 ? "hit" : "miss"}}).Increment();
  }
  if (!result.outcomes.empty() && !result.outcomes.front().sasl_mechanism.empty()) {
    const DeliveryOutcome& first = result.outcomes.front();
    metrics_.smtp_sasl_logins.Add({{"mechanism", first.sasl_mechanism}, {"result", first.sasl_result}}).Increment();
  }
  co_return result;
}

asio::awaitable<absl::StatusOr<std::vector<SmtpCandidate>>> SmtpDeliverer::Candidates(const NextHop& hop) {
  using Exchangers = absl::StatusOr<std::vector<io::MailExchanger>>;
  using Addresses = absl::StatusOr<std::vector<std::string>>;
  std::vector<io::MailExchanger> exchangers{{0, hop.host}};
  if (hop.mx_lookup) {
    Exchangers found = co_await io::AwaitCallback<Exchangers>(
        [&](auto done) { resolver_.MailExchangers(hop.host, [done](Exchangers answer) { done(std::move(answer)); }); });
    if (!found.ok()) co_return found.status();
    exchangers = *std::move(found);
  }
  std::vector<SmtpCandidate> candidates;
  absl::Status last = absl::OkStatus();
  for (const io::MailExchanger& exchanger : exchangers) {
    Addresses addresses = co_await io::AwaitCallback<Addresses>(
        [&](auto done) { resolver_.Addresses(exchanger.host, [done](Addresses answer) { done(std::move(answer)); }); });
    if (!addresses.ok()) {
      last = addresses.status();
      continue;  // The next mail exchanger may resolve.
    }
    for (const std::string& address : *addresses) candidates.push_back({exchanger.host, address});
  }
  if (candidates.empty()) co_return last.ok() ? absl::UnavailableError("no address for " + hop.host) : last;
  co_return candidates;
}

}  // namespace postgate::queue
