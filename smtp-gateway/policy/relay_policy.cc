#include "smtp-gateway/policy/relay_policy.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace postgate::gateway::policy {
namespace {

using protocol::Verdict;
using smtp::Reply;

Verdict RelayDenied(const std::string& address) {
  return Verdict::Reject(Reply::Make(554, "5.7.1", absl::StrCat("<", address, ">: Relay access denied")));
}

Verdict UnknownUser(const std::string& address) {
  return Verdict::Reject(Reply::Make(
      550, "5.1.1",
      absl::StrCat("<", address,
                   ">: Recipient address rejected: User unknown in local recipient table")));
}

class ClientPolicy : public protocol::Decider {
 public:
  ClientPolicy(const RelayPolicy& policy, bool relay_permitted)
      : policy_(policy), relay_permitted_(relay_permitted) {}

  Verdict CheckSender(const std::string& address) override {
    return Verdict::Accept(policy_.QualifySender(address));
  }
  Verdict CheckRecipient(const std::string& address) override {
    // permit_mynetworks, permit_sasl_authenticated (Postfix's default smtpd_relay_restrictions).
    return policy_.CheckRecipient(relay_permitted_ || logged_in_, address);
  }
  Verdict Verify(const std::string& address) override { return policy_.Verify(address); }
  bool MayFlush(const std::string& domain) override { return policy_.MayFlush(domain); }
  void LoggedIn(const std::string& user) override { logged_in_ = !user.empty(); }

 private:
  const RelayPolicy& policy_;
  bool relay_permitted_;
  bool logged_in_ = false;
};

}  // namespace

bool RelayPolicy::RelayPermitted(absl::string_view client_address) const {
  absl::StatusOr<IpAddress> address = IpAddress::Parse(client_address);
  return address.ok() && mynetworks_.Contains(*address);
}

std::unique_ptr<protocol::Decider> RelayPolicy::ForClient(absl::string_view client_address) const {
  return std::make_unique<ClientPolicy>(*this, RelayPermitted(client_address));
}

Verdict RelayPolicy::CheckRecipient(bool relay_permitted, const std::string& address) const {
  addressing::ClassifiedAddress classified = local_domain_.Classify(address);
  if (!classified.local) {
    // Like reject_unauth_destination: checked before the local recipient table.
    if (!relay_permitted) return RelayDenied(address);
    return Verdict::Accept(local_domain_.Qualify(address));
  }
  if (classified.routing_syntax && !relay_permitted) return RelayDenied(address);
  if (!local_domain_.IsKnownRecipient(classified)) return UnknownUser(address);
  return Verdict::Accept(local_domain_.Qualify(address));
}

bool RelayPolicy::MayFlush(const std::string& domain) const {
  for (std::string entry : fast_flush_domains_) {
    entry = absl::AsciiStrToLower(entry);
    if (!entry.empty() && entry.front() == '.') entry.erase(0, 1);
    if (domain == entry || absl::EndsWith(domain, "." + entry)) return true;
  }
  return false;
}

Verdict RelayPolicy::Verify(const std::string& address) const {
  addressing::ClassifiedAddress classified = local_domain_.Classify(address);
  if (classified.local && !local_domain_.IsKnownRecipient(classified)) return UnknownUser(address);
  return Verdict::Accept(address);
}

}  // namespace postgate::gateway::policy
