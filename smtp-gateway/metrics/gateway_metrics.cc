#include "smtp-gateway/metrics/gateway_metrics.h"

#include "absl/strings/match.h"

#include <string>

namespace postgate::gateway {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

namespace {

// Registered twice (once per result); the registry merges same-named families.
prometheus::Family<prometheus::Counter>& ReloadFamily(prometheus::Registry& registry) {
  return BuildCounter()
      .Name("postgate_smtpd_config_reloads_total")
      .Help("main.cf reloads (SIGHUP or the file changed), by result: applied or refused.")
      .Register(registry);
}

}  // namespace

GatewayMetrics::GatewayMetrics(prometheus::Registry& registry)
    : connections(BuildCounter()
                      .Name("postgate_smtpd_connections_total")
                      .Help("SMTP connections accepted.")
                      .Register(registry)
                      .Add({})),
      active_sessions(BuildGauge()
                          .Name("postgate_smtpd_active_sessions")
                          .Help("SMTP sessions open now.")
                          .Register(registry)
                          .Add({})),
      messages_accepted(BuildCounter()
                            .Name("postgate_smtpd_messages_accepted_total")
                            .Help("Messages answered with 250 queued (stored by queue-service).")
                            .Register(registry)
                            .Add({})),
      accepted_bytes(BuildCounter()
                         .Name("postgate_smtpd_accepted_bytes_total")
                         .Help("Content bytes of accepted messages.")
                         .Register(registry)
                         .Add({})),
      enqueue_seconds(BuildHistogram()
                          .Name("postgate_smtpd_enqueue_duration_seconds")
                          .Help("From the end of DATA to queue-service confirming the message is on disk.")
                          .Register(registry)
                          .Add({}, Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                               0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                                               5, 10, 30})),
      message_bytes(BuildHistogram()
                        .Name("postgate_smtpd_message_size_bytes")
                        .Help("Size of accepted messages.")
                        .Register(registry)
                        .Add({}, Histogram::BucketBoundaries{1024, 4096, 16384, 65536, 262144,
                                                             1048576, 4194304, 10485760, 52428800})),
      tls_certificate_expiry(BuildGauge()
                                 .Name("postgate_smtpd_tls_certificate_expiry_timestamp_seconds")
                                 .Help("Unix time the STARTTLS certificate in use expires; 0 without TLS.")
                                 .Register(registry)
                                 .Add({})),
      config_reloads(ReloadFamily(registry).Add({{"result", "applied"}})),
      config_reloads_failed(ReloadFamily(registry).Add({{"result", "refused"}})),
      dkim_signatures(BuildCounter()
                          .Name("postgate_smtpd_dkim_signatures_total")
                          .Help("DKIM signatures added (result=signed, one per signature) and messages refused with "
                                "451 because signing failed (result=error).")
                          .Register(registry)),
      milter_failures(BuildCounter()
                          .Name("postgate_smtpd_milter_failures_total")
                          .Help("Milters that could not be reached, timed out or broke the protocol; from then on "
                                "each stands for its milter_default_action for the session.")
                          .Register(registry)),
      milter_verdicts(BuildCounter()
                          .Name("postgate_smtpd_milter_verdicts_total")
                          .Help("Milter decisions that changed a session or message: reject (a 4xx or 5xx reply), "
                                "discard, hold.")
                          .Register(registry)),
      commands_(BuildCounter()
                    .Name("postgate_smtpd_commands_total")
                    .Help("SMTP commands answered, by verb and reply class (2xx, 3xx, 4xx, 5xx).")
                    .Register(registry)),
      rejects_(BuildCounter()
                   .Name("postgate_smtpd_rejects_total")
                   .Help("Recipients and messages refused, by reason.")
                   .Register(registry)),
      logins_(BuildCounter()
                  .Name("postgate_smtpd_sasl_logins_total")
                  .Help("SMTP AUTH attempts, by mechanism (PLAIN, LOGIN, other) and result (success, failed, aborted).")
                  .Register(registry)) {
  for (const char* result : {"signed", "error"}) dkim_signatures.Add({{"result", result}});
  for (const char* verdict : {"reject", "discard", "hold"}) milter_verdicts.Add({{"verdict", verdict}});
  for (const char* mechanism : {"PLAIN", "LOGIN", "other"}) {
    for (const char* result : {"success", "failed", "aborted"}) logins_.Add({{"mechanism", mechanism}, {"result", result}});
  }
  for (size_t verb = 0; verb < kVerbs; ++verb) {
    for (size_t reply_class = 0; reply_class < 4; ++reply_class) {
      command_counters_[verb][reply_class] = &commands_.Add(
          {{"verb", std::string(smtp::VerbName(static_cast<smtp::Verb>(verb)))},
           {"reply_class", std::to_string(reply_class + 2) + "xx"}});
    }
  }
  // Every reason exists from the start at 0, so rate() and alerts work before the first reject.
  for (const char* reason : {"relay_denied", "access_denied", "unknown_recipient", "message_too_big", "queue_error",
                             "too_many_recipients", "no_valid_recipients", "syntax", "connection_count",
                             "connection_rate", "auth_rate", "bare_newline", "too_many_hops", "content", "other"}) {
    rejects_.Add({{"reason", reason}});
  }
}

void GatewayMetrics::CountCommand(smtp::Verb verb, int reply_code) {
  const size_t verb_index = static_cast<size_t>(verb);
  const int reply_class = reply_code / 100 - 2;
  if (verb_index >= kVerbs || reply_class < 0 || reply_class > 3) return;
  command_counters_[verb_index][static_cast<size_t>(reply_class)]->Increment();
}

void GatewayMetrics::CountLogin(absl::string_view mechanism, absl::string_view result) {
  // Only the two known names: a client chooses what it sends, and labels must stay bounded.
  const absl::string_view name = mechanism == "PLAIN" || mechanism == "LOGIN" ? mechanism : "other";
  logins_.Add({{"mechanism", std::string(name)}, {"result", std::string(result)}}).Increment();
}

void GatewayMetrics::CountReject(absl::string_view reason) {
  rejects_.Add({{"reason", std::string(reason)}}).Increment();
}

absl::string_view GatewayMetrics::RejectReason(int code, absl::string_view text) {
  const absl::string_view enhanced = text.substr(0, 5);
  if (absl::StrContains(text, "Relay access denied")) return "relay_denied";
  // Other policy refusals: access tables, restriction lists' reject, login mismatch.
  if (absl::StartsWith(enhanced, "5.7.") || absl::StartsWith(enhanced, "4.7.")) return "access_denied";
  if (enhanced == "5.1.1") return "unknown_recipient";
  if (enhanced == "5.3.4") return "message_too_big";
  if (enhanced == "4.3.0") return "queue_error";
  if (enhanced == "4.5.3") return "too_many_recipients";
  if (enhanced == "5.5.1" && code == 554) return "no_valid_recipients";
  if (code == 501 || code == 555) return "syntax";
  return "other";
}

}  // namespace postgate::gateway
