#include "queue-service/api/record_conversion.h"

namespace postgate::queue {
namespace {

// The public overloads (states, envelope, message) beside the ones below.
using ::postgate::queue::FromApi;
using ::postgate::queue::ToApi;

// Both ways for the parts whose fields have the same names on each side.
template <typename To, typename From>
To CopyClient(const From& client) {
  To out;
  out.set_address(client.address());
  out.set_hostname(client.hostname());
  out.set_helo(client.helo());
  out.set_protocol(client.protocol());
  return out;
}

template <typename To, typename From>
To CopyRecipientOptions(const From& options) {
  To out;
  out.set_notify_given(options.notify_given());
  out.set_notify_success(options.notify_success());
  out.set_notify_failure(options.notify_failure());
  out.set_notify_delay(options.notify_delay());
  out.set_original_recipient(options.original_recipient());
  return out;
}

rec::BodyType FromApi(v1::BodyType type) {
  switch (type) {
    case v1::BODY_TYPE_7BIT: return rec::BODY_TYPE_7BIT;
    case v1::BODY_TYPE_8BITMIME: return rec::BODY_TYPE_8BITMIME;
    default: return rec::BODY_TYPE_UNSPECIFIED;
  }
}

rec::DsnReturn FromApi(v1::DsnReturn dsn_return) {
  switch (dsn_return) {
    case v1::DSN_RETURN_FULL: return rec::DSN_RETURN_FULL;
    case v1::DSN_RETURN_HEADERS: return rec::DSN_RETURN_HEADERS;
    default: return rec::DSN_RETURN_UNSPECIFIED;
  }
}

v1::BodyType ToApi(rec::BodyType type) {
  switch (type) {
    case rec::BODY_TYPE_7BIT: return v1::BODY_TYPE_7BIT;
    case rec::BODY_TYPE_8BITMIME: return v1::BODY_TYPE_8BITMIME;
    default: return v1::BODY_TYPE_UNSPECIFIED;
  }
}

v1::DsnReturn ToApi(rec::DsnReturn dsn_return) {
  switch (dsn_return) {
    case rec::DSN_RETURN_FULL: return v1::DSN_RETURN_FULL;
    case rec::DSN_RETURN_HEADERS: return v1::DSN_RETURN_HEADERS;
    default: return v1::DSN_RETURN_UNSPECIFIED;
  }
}

v1::Envelope ToApi(const rec::Envelope& envelope) {
  v1::Envelope out;
  out.set_sender(envelope.sender());
  for (const std::string& recipient : envelope.recipients()) out.add_recipients(recipient);
  out.set_body_type(ToApi(envelope.body_type()));
  out.set_declared_size(envelope.declared_size());
  if (envelope.has_client()) *out.mutable_client() = CopyClient<v1::ClientInfo>(envelope.client());
  out.set_smtputf8(envelope.smtputf8());
  out.set_dsn_return(ToApi(envelope.dsn_return()));
  out.set_envid(envelope.envid());
  for (const rec::RecipientOptions& options : envelope.recipient_options()) {
    *out.add_recipient_options() = CopyRecipientOptions<v1::RecipientOptions>(options);
  }
  out.set_idempotency_key(envelope.idempotency_key());
  out.set_requested_queue_id(envelope.requested_queue_id());
  return out;
}

v1::DeliveryAttempt ToApi(const rec::DeliveryAttempt& attempt) {
  v1::DeliveryAttempt out;
  if (attempt.has_time()) *out.mutable_time() = attempt.time();
  out.set_smtp_code(attempt.smtp_code());
  out.set_dsn_status(attempt.dsn_status());
  out.set_reason(attempt.reason());
  out.set_relay(attempt.relay());
  out.set_duration_seconds(attempt.duration_seconds());
  return out;
}

v1::RecipientStatus ToApi(const rec::RecipientStatus& recipient) {
  v1::RecipientStatus out;
  out.set_address(recipient.address());
  out.set_state(ToApi(recipient.state()));
  out.set_smtp_code(recipient.smtp_code());
  out.set_dsn_status(recipient.dsn_status());
  out.set_reason(recipient.reason());
  out.set_relay(recipient.relay());
  out.set_attempts(recipient.attempts());
  if (recipient.has_last_attempt_time()) *out.mutable_last_attempt_time() = recipient.last_attempt_time();
  if (recipient.has_options()) *out.mutable_options() = CopyRecipientOptions<v1::RecipientOptions>(recipient.options());
  out.set_dsn_queue_id(recipient.dsn_queue_id());
  for (const rec::DeliveryAttempt& attempt : recipient.history()) *out.add_history() = ToApi(attempt);
  out.set_delay_warning_sent(recipient.delay_warning_sent());
  return out;
}

}  // namespace

rec::RecipientOptions FromApi(const v1::RecipientOptions& options) {
  return CopyRecipientOptions<rec::RecipientOptions>(options);
}

rec::Envelope FromApi(const v1::Envelope& envelope) {
  rec::Envelope out;
  out.set_sender(envelope.sender());
  for (const std::string& recipient : envelope.recipients()) out.add_recipients(recipient);
  out.set_body_type(FromApi(envelope.body_type()));
  out.set_declared_size(envelope.declared_size());
  if (envelope.has_client()) *out.mutable_client() = CopyClient<rec::ClientInfo>(envelope.client());
  out.set_smtputf8(envelope.smtputf8());
  out.set_dsn_return(FromApi(envelope.dsn_return()));
  out.set_envid(envelope.envid());
  for (const v1::RecipientOptions& options : envelope.recipient_options()) {
    *out.add_recipient_options() = CopyRecipientOptions<rec::RecipientOptions>(options);
  }
  out.set_idempotency_key(envelope.idempotency_key());
  out.set_requested_queue_id(envelope.requested_queue_id());
  return out;
}

rec::MessageState FromApi(v1::MessageState state) {
  switch (state) {
    case v1::MESSAGE_STATE_ACTIVE: return rec::MESSAGE_STATE_ACTIVE;
    case v1::MESSAGE_STATE_DEFERRED: return rec::MESSAGE_STATE_DEFERRED;
    case v1::MESSAGE_STATE_DONE: return rec::MESSAGE_STATE_DONE;
    case v1::MESSAGE_STATE_HOLD: return rec::MESSAGE_STATE_HOLD;
    default: return rec::MESSAGE_STATE_UNSPECIFIED;
  }
}

v1::MessageState ToApi(rec::MessageState state) {
  switch (state) {
    case rec::MESSAGE_STATE_ACTIVE: return v1::MESSAGE_STATE_ACTIVE;
    case rec::MESSAGE_STATE_DEFERRED: return v1::MESSAGE_STATE_DEFERRED;
    case rec::MESSAGE_STATE_DONE: return v1::MESSAGE_STATE_DONE;
    case rec::MESSAGE_STATE_HOLD: return v1::MESSAGE_STATE_HOLD;
    default: return v1::MESSAGE_STATE_UNSPECIFIED;
  }
}

v1::RecipientState ToApi(rec::RecipientState state) {
  switch (state) {
    case rec::RECIPIENT_STATE_QUEUED: return v1::RECIPIENT_STATE_QUEUED;
    case rec::RECIPIENT_STATE_DELIVERED: return v1::RECIPIENT_STATE_DELIVERED;
    case rec::RECIPIENT_STATE_DEFERRED: return v1::RECIPIENT_STATE_DEFERRED;
    case rec::RECIPIENT_STATE_BOUNCED: return v1::RECIPIENT_STATE_BOUNCED;
    default: return v1::RECIPIENT_STATE_UNSPECIFIED;
  }
}

v1::Message ToApi(const rec::Message& message) {
  v1::Message out;
  out.set_queue_id(message.queue_id());
  out.set_state(ToApi(message.state()));
  if (message.has_envelope()) *out.mutable_envelope() = ToApi(message.envelope());
  out.set_size(message.size());
  if (message.has_arrival_time()) *out.mutable_arrival_time() = message.arrival_time();
  for (const rec::RecipientStatus& recipient : message.recipients()) *out.add_recipients() = ToApi(recipient);
  if (message.has_completion_time()) *out.mutable_completion_time() = message.completion_time();
  if (message.has_queued_time()) *out.mutable_queued_time() = message.queued_time();
  if (message.has_next_attempt_time()) *out.mutable_next_attempt_time() = message.next_attempt_time();
  out.set_hold_reason(message.hold_reason());
  return out;
}

}  // namespace postgate::queue
