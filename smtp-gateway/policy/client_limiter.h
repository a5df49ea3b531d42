// Postfix's anvil(8): how many connections each client has open
// (smtpd_client_connection_count_limit), and has opened and sent AUTH commands in the current
// time unit (smtpd_client_connection_rate_limit, smtpd_client_auth_rate_limit per
// anvil_rate_time_unit). A client is a key the caller makes: anvil's is the service and the
// address, so each master.cf service counts on its own. Pure bookkeeping: the caller
// supplies the time and the limits (which a reload may change while the counts carry on), and
// sends Postfix's "421 4.7.0 … Error: too many connections from …" on a refusal.
// Thread-safe: sessions on every io_context share one.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace postgate::gateway::policy {

struct ClientLimits {
  size_t count_limit = 50;                      // Open at once; 0: no limit.
  size_t rate_limit = 0;                        // Opened per time unit; 0: no limit.
  absl::Duration time_unit = absl::Seconds(60);  // anvil_rate_time_unit
};

class ClientLimiter {
 public:
  enum class Verdict { kAdmitted, kTooManyOpen, kTooFast };
  struct Admission {
    Verdict verdict;
    size_t count;  // With kTooManyOpen: connections open; with kTooFast: opened this time unit.
  };

  // A new connection from `client` at `now`. Only an admitted one must be Released later; a
  // refused one still counts towards the rate (as anvil counts every connection attempt).
  Admission Admit(const std::string& client, const ClientLimits& limits, absl::Time now);
  void Release(const std::string& client);
  // An AUTH command from `client` at `now`: how many it has sent in the current time unit, this
  // one included (refused ones count too, as with anvil).
  size_t CountAuth(const std::string& client, absl::Duration time_unit, absl::Time now);
  size_t TrackedClients();

 private:
  struct Counts {
    size_t open = 0;
    size_t opened = 0;          // In the time unit that began at `window_start`.
    size_t auths = 0;           // Likewise.
    absl::Time window_start;
  };
  // The client's counts, their time unit started again if it is over.
  Counts& Current(const std::string& client, absl::Duration time_unit, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops clients with nothing open whose time unit is over, so memory follows the live clients.
  void Sweep(absl::Time now, absl::Duration time_unit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Counts> clients_ ABSL_GUARDED_BY(mu_);
  absl::Time last_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace postgate::gateway::policy
