// smtp-gateway's Prometheus metrics in one struct. Labels come from fixed sets (verbs, reply
// classes, reasons) – never addresses, hosts or queue IDs – so cardinality stays bounded.
#pragma once

#include <array>

#include "absl/strings/string_view.h"
#include "core/smtp/command.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace postgate::gateway {

class GatewayMetrics {
 public:
  explicit GatewayMetrics(prometheus::Registry& registry);

  // One SMTP command answered with `reply_code`. Every verb × reply class exists from the start
  // (at 0), so this is an array lookup on the per-command path, not a label-map search.
  void CountCommand(smtp::Verb verb, int reply_code);
  // A recipient or message refused; `reason` is one of a fixed set (see RejectReason()).
  void CountReject(absl::string_view reason);
  // Maps a refusing reply (its code, and its first line's text from the enhanced code on) to its
  // reason label: relay_denied, access_denied, unknown_recipient, …
  static absl::string_view RejectReason(int code, absl::string_view text);

  prometheus::Counter& connections;
  prometheus::Gauge& active_sessions;
  prometheus::Counter& messages_accepted;
  prometheus::Counter& accepted_bytes;
  prometheus::Histogram& enqueue_seconds;  // End of DATA → queue's "stored" answer.
  prometheus::Histogram& message_bytes;
  // Unix time the STARTTLS certificate expires (0 without TLS); alerts watch it.
  prometheus::Gauge& tls_certificate_expiry;
  // main.cf reloads (SIGHUP or the file changed), applied and refused.
  prometheus::Counter& config_reloads;
  prometheus::Counter& config_reloads_failed;
  // DKIM signatures by result: signed (one per signature stored), error (a message refused 451).
  prometheus::Family<prometheus::Counter>& dkim_signatures;
  // Milter failures by milter (as configured) and reason (connect, timeout, io, protocol): each
  // one made the milter stand for its milter_default_action for the rest of the session.
  prometheus::Family<prometheus::Counter>& milter_failures;
  // What milters decided, by verdict: reject (a 4xx/5xx reply), discard, hold.
  prometheus::Family<prometheus::Counter>& milter_verdicts;
  // SMTP AUTH attempts by mechanism (PLAIN, LOGIN, other) and result (success, failed, aborted).
  void CountLogin(absl::string_view mechanism, absl::string_view result);

 private:
  prometheus::Family<prometheus::Counter>& commands_;
  static constexpr size_t kVerbs = static_cast<size_t>(smtp::Verb::kUnknown) + 1;
  std::array<std::array<prometheus::Counter*, 4>, kVerbs> command_counters_{};  // [verb][2xx..5xx]
  prometheus::Family<prometheus::Counter>& rejects_;
  prometheus::Family<prometheus::Counter>& logins_;
};

}  // namespace postgate::gateway
