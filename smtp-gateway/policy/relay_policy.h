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

#include "core/addressing/local_domain.h"
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

class RelayPolicy {
 public:
  RelayPolicy(const addressing::LocalDomain& local_domain, NetworkList mynetworks,
              std::vector<std::string> fast_flush_domains = {}, SenderLoginPolicy sender_logins = {})
      : local_domain_(local_domain),
        mynetworks_(std::move(mynetworks)),
        fast_flush_domains_(std::move(fast_flush_domains)),
        sender_logins_(std::move(sender_logins)) {}

  // smtpd_sender_restrictions for `sender` ("" = null sender, never checked) from a client logged
  // in as `user` ("" = not logged in): a refusal, evaluated at RCPT as Postfix's
  // smtpd_delay_reject does, or nullopt.
  std::optional<protocol::Verdict> CheckSenderLogin(const std::string& sender, const std::string& user) const;

  bool RelayPermitted(absl::string_view client_address) const;

  // The Decider for one session from `client_address`.
  std::unique_ptr<protocol::Decider> ForClient(absl::string_view client_address) const;

  protocol::Verdict CheckRecipient(bool relay_permitted, const std::string& address) const;
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
};

}  // namespace postgate::gateway::policy
