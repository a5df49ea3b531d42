// Who may send where, Postfix's defaults for smtpd_relay_restrictions and local_recipient_maps:
// clients in mynetworks, and clients logged in with SMTP AUTH (permit_sasl_authenticated), may
// relay anywhere; every other client may only send to mydestination;
// at mydestination only local users and aliases exist. Decisions only: each answer is a Verdict
// carrying Postfix's reply; nothing here touches a socket. Thread-safe after construction.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/lookup_table.h"

#include "absl/time/time.h"
#include "core/addressing/local_domain.h"
#include "smtp-gateway/policy/client_limiter.h"
#include "smtp-gateway/policy/network.h"
#include "smtp-gateway/protocol/session_machine.h"

namespace postgate::gateway::policy {

// smtpd_sender_login_maps with the smtpd_sender_restrictions that use it: who may send as which
// address once logged in, and which addresses need a login at all.
struct SenderLoginPolicy {
  std::optional<config::LookupTable> owners;  // "address owner, owner" / "@domain owner"
  // reject_authenticated_sender_login_mismatch (or the first half of reject_sender_login_mismatch):
  // a logged-in client must own the address; `unknown_allowed` (reject_known_…) lets it send as
  // an address the table does not list.
  bool check_authenticated = false;
  bool unknown_allowed = false;
  // reject_unauthenticated_sender_login_mismatch (and the second half): an address the table
  // lists needs a login.
  bool check_unauthenticated = false;
};

// smtpd_sender_restrictions' words (the login mismatch checks are the ones Postgate has) into a
// policy; an unknown word is an error naming it.
absl::StatusOr<SenderLoginPolicy> ParseSenderRestrictions(const std::vector<std::string>& words,
                                                          std::optional<config::LookupTable> owners);

// smtpd_relay_restrictions: checked for each recipient, in order, until one permits or refuses;
// a list that ends undecided permits (ParseRelayRestrictions makes sure one word can refuse). The default is Postfix's list with reject_unauth_destination.
enum class RelayRestriction {
  kPermitMynetworks,         // permit_mynetworks
  kPermitSaslAuthenticated,  // permit_sasl_authenticated
  kPermitAuthDestination,    // permit_auth_destination: the recipient's domain is ours
  kRejectUnauthDestination,  // reject_unauth_destination: 554 "Relay access denied" unless ours
  kDeferUnauthDestination,   // defer_unauth_destination: the same with 454
  kPermit,
  kReject,                   // 554 "Recipient address rejected: Access denied"
  kDefer,                    // 450 "Recipient address rejected: Try again later"
};
inline constexpr const char* kDefaultRelayRestrictions =
    "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination";

// An unknown word is an error naming it; so is a list without reject_unauth_destination,
// defer_unauth_destination, reject or defer (Postfix refuses such a list too: an open relay).
absl::StatusOr<std::vector<RelayRestriction>> ParseRelayRestrictions(const std::vector<std::string>& words);

// smtpd_client_auth_rate_limit: AUTH commands per client (and service) per time unit, counted in
// the gateway's shared ClientLimiter; clients in `exceptions` (smtpd_client_event_limit_exceptions)
// are not counted.
struct AuthRateLimit {
  ClientLimiter* limiter = nullptr;  // Null or limit 0: no limit.
  size_t limit = 0;
  absl::Duration time_unit = absl::Seconds(60);  // anvil_rate_time_unit
  std::string service = "smtp";                  // The master.cf service: anvil counts per service.
  const NetworkList* exceptions = nullptr;
};

class RelayPolicy {
 public:
  RelayPolicy(const addressing::LocalDomain& local_domain, NetworkList mynetworks,
              std::vector<std::string> fast_flush_domains = {}, SenderLoginPolicy sender_logins = {},
              std::vector<RelayRestriction> relay_restrictions = {RelayRestriction::kPermitMynetworks,
                                                                  RelayRestriction::kPermitSaslAuthenticated,
                                                                  RelayRestriction::kRejectUnauthDestination})
      : local_domain_(local_domain),
        mynetworks_(std::move(mynetworks)),
        fast_flush_domains_(std::move(fast_flush_domains)),
        sender_logins_(std::move(sender_logins)),
        relay_restrictions_(std::move(relay_restrictions)) {}

  // smtpd_sender_restrictions for `sender` ("" = null sender, never checked) from a client logged
  // in as `user` ("" = not logged in): a refusal, evaluated at RCPT as Postfix's
  // smtpd_delay_reject does, or nullopt.
  std::optional<protocol::Verdict> CheckSenderLogin(const std::string& sender, const std::string& user) const;

  bool RelayPermitted(absl::string_view client_address) const;
  void set_auth_rate_limit(AuthRateLimit limit) { auth_rate_ = std::move(limit); }
  const AuthRateLimit& auth_rate_limit() const { return auth_rate_; }

  // The Decider for one session from `client_address`.
  std::unique_ptr<protocol::Decider> ForClient(absl::string_view client_address) const;

  // smtpd_relay_restrictions for a client in mynetworks or not, logged in or not, then the local
  // recipient table.
  protocol::Verdict CheckRecipient(bool in_mynetworks, bool logged_in, const std::string& address) const;
  protocol::Verdict Verify(const std::string& address) const;
  // ETRN: `domain` (lower case) is in fast_flush_domains, or below an entry there (Postfix's
  // parent_domain_matches_subdomains includes fast_flush_domains).
  bool MayFlush(const std::string& domain) const;
  std::string QualifySender(const std::string& address) const { return local_domain_.Qualify(address); }

 private:
  const addressing::LocalDomain& local_domain_;
  NetworkList mynetworks_;
  std::vector<std::string> fast_flush_domains_;
  SenderLoginPolicy sender_logins_;
  std::vector<RelayRestriction> relay_restrictions_;
  AuthRateLimit auth_rate_;
};

}  // namespace postgate::gateway::policy
