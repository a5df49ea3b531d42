// Who may send where, Postfix's defaults for smtpd_relay_restrictions and local_recipient_maps:
// clients in mynetworks, and clients logged in with SMTP AUTH (permit_sasl_authenticated), may
// relay anywhere; every other client may only send to mydestination;
// at mydestination only local users and aliases exist. Decisions only: each answer is a Verdict
// carrying Postfix's reply; nothing here touches a socket. Thread-safe after construction.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/addressing/local_domain.h"
#include "smtp-gateway/policy/network.h"
#include "smtp-gateway/protocol/session_machine.h"

namespace postgate::gateway::policy {

class RelayPolicy {
 public:
  RelayPolicy(const addressing::LocalDomain& local_domain, NetworkList mynetworks,
              std::vector<std::string> fast_flush_domains = {})
      : local_domain_(local_domain),
        mynetworks_(std::move(mynetworks)),
        fast_flush_domains_(std::move(fast_flush_domains)) {}

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
};

}  // namespace postgate::gateway::policy
