#include "queue-service/delivery/attempt.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/absl_fmt.h"
#include "core/base/logging.h"
#include "queue-service/model/timestamps.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
namespace {

const char* StatusWord(rec::RecipientState state) {
  switch (state) {
    case rec::RECIPIENT_STATE_DELIVERED: return "sent";
    case rec::RECIPIENT_STATE_BOUNCED: return "bounced";
    default: return "deferred";
  }
}

void Apply(rec::RecipientStatus& recipient, const DeliveryOutcome& outcome, absl::Time start, absl::Time end) {
  recipient.set_state(outcome.state);
  recipient.set_smtp_code(outcome.smtp_code);
  recipient.set_dsn_status(outcome.dsn_status);
  recipient.set_reason(outcome.reason);
  recipient.set_relay(outcome.relay);
  recipient.set_attempts(recipient.attempts() + 1);
  SetTimestamp(recipient.mutable_last_attempt_time(), end);
  rec::DeliveryAttempt* attempt = recipient.add_history();
  SetTimestamp(attempt->mutable_time(), start);
  attempt->set_smtp_code(outcome.smtp_code);
  attempt->set_dsn_status(outcome.dsn_status);
  attempt->set_reason(outcome.reason);
  attempt->set_relay(outcome.relay);
  attempt->set_duration_seconds(absl::ToDoubleSeconds(end - start));
  constexpr int kHistoryKept = 50;
  if (recipient.history_size() > kHistoryKept) {
    recipient.mutable_history()->DeleteSubrange(0, recipient.history_size() - kHistoryKept);
  }
}

}  // namespace

DeliveryAttempt::DeliveryAttempt(StoredMessage& record, const RetryPolicy& policy, bool notification,
                                 QueueMetrics& metrics)
    : record_(record), policy_(policy), notification_(notification), metrics_(metrics) {}

void DeliveryAttempt::Record(int index, DeliveryOutcome outcome, const char* transport, absl::Time start) {
  ++attempted_;
  rec::Message& message = *record_.mutable_message();
  rec::RecipientStatus& recipient = *message.mutable_recipients(index);
  const absl::Time now = absl::Now();
  const absl::Time arrival = FromTimestamp(message.arrival_time());
  if (outcome.state == rec::RECIPIENT_STATE_DEFERRED && policy_.Expired(arrival, notification_, now)) {
    // Postfix's "status=expired, returned to sender": the last reason, and a bounce.
    outcome.state = rec::RECIPIENT_STATE_BOUNCED;
    outcome.reason = absl::StrCat(outcome.reason, " (message expired after ",
                                  absl::FormatDuration(policy_.Lifetime(notification_)), " in the queue)");
  }
  Apply(recipient, outcome, start, now);
  metrics_.deliveries.Add({{"transport", transport}, {"result", StatusWord(outcome.state)}}).Increment();
  if (outcome.state == rec::RECIPIENT_STATE_DELIVERED) {
    metrics_.delivery_seconds.Observe(absl::ToDoubleSeconds(now - arrival));
  }
  report_.log_lines.push_back(FormatLine(message, recipient, outcome, start, now));
  report_.events.emplace_back(outcome.state == rec::RECIPIENT_STATE_DELIVERED ? v1::EVENT_KIND_DELIVERED
                              : outcome.state == rec::RECIPIENT_STATE_BOUNCED ? v1::EVENT_KIND_BOUNCED
                                                                             : v1::EVENT_KIND_DEFERRED,
                              index);
  if (outcome.state == rec::RECIPIENT_STATE_BOUNCED) failed_.push_back(index);
  // Passed on to a server that announced DSN: a success report is that server's to send.
  if (outcome.state == rec::RECIPIENT_STATE_DELIVERED && !outcome.notify_passed_on) delivered_.push_back(index);
  outcomes_[index] = std::move(outcome);
}

std::vector<int> DeliveryAttempt::Delayed(absl::Time now) const {
  std::vector<int> delayed;
  const rec::Message& message = record_.message();
  if (!policy_.DelayWarningDue(FromTimestamp(message.arrival_time()), notification_, now)) return delayed;
  for (int i = 0; i < message.recipients_size(); ++i) {
    const rec::RecipientStatus& recipient = message.recipients(i);
    if (recipient.state() == rec::RECIPIENT_STATE_DEFERRED && !recipient.delay_warning_sent()) delayed.push_back(i);
  }
  return delayed;
}

std::string DeliveryAttempt::FormatLine(const rec::Message& message, const rec::RecipientStatus& recipient,
                                        const DeliveryOutcome& outcome, absl::Time start, absl::Time end) {
  // Postfix's delays=a/b/c/d: before the queue, in the queue, connection set-up, transmission.
  const absl::Time arrival = FromTimestamp(message.arrival_time());
  const absl::Time queued = message.has_queued_time() ? FromTimestamp(message.queued_time()) : arrival;
  // ", conn_use=N" as Postfix logs it for the N-th transaction on a cached connection.
  const std::string connection_use =
      outcome.connection_use > 1 ? absl::StrCat(", conn_use=", outcome.connection_use) : "";
  // ", orig_to=<x>" when the recipient came from another (a virtual alias), as Postfix logs it.
  std::string original;
  if (const std::string& orcpt = recipient.options().original_recipient(); absl::StartsWithIgnoreCase(orcpt, "rfc822;")) {
    const absl::string_view address = absl::string_view(orcpt).substr(7);
    if (!absl::EqualsIgnoreCase(address, recipient.address())) original = absl::StrCat(", orig_to=<", address, ">");
  }
  return fmt::format("{}: to=<{}>{}, relay={}{}, delay={}, delays={}/{}/0/{}, dsn={}, status={} ({})",
                     message.queue_id(), recipient.address(), original, outcome.relay, connection_use,
                     base::FormatDelay(absl::ToDoubleSeconds(end - arrival)),
                     base::FormatDelay(absl::ToDoubleSeconds(queued - arrival)),
                     base::FormatDelay(absl::ToDoubleSeconds(start - queued)),
                     base::FormatDelay(absl::ToDoubleSeconds(end - start)), outcome.dsn_status,
                     StatusWord(outcome.state), outcome.reason);
}

}  // namespace postgate::queue
