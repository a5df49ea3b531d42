#include "smtp-gateway/policy/relay_policy.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

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
    Verdict verdict = Verdict::Accept(policy_.QualifySender(address));
    sender_ = verdict.address;
    return verdict;
  }
  Verdict CheckRecipient(const std::string& address) override {
    // smtpd_sender_restrictions first (delayed to RCPT, as Postfix's smtpd_delay_reject), then
    // permit_mynetworks, permit_sasl_authenticated (Postfix's default smtpd_relay_restrictions).
    if (std::optional<Verdict> refused = policy_.CheckSenderLogin(sender_, user_)) return *refused;
    return policy_.CheckRecipient(relay_permitted_ || !user_.empty(), address);
  }
  Verdict Verify(const std::string& address) override { return policy_.Verify(address); }
  bool MayFlush(const std::string& domain) override { return policy_.MayFlush(domain); }
  void LoggedIn(const std::string& user) override { user_ = user; }

 private:
  const RelayPolicy& policy_;
  bool relay_permitted_;
  std::string user_;    // SMTP AUTH login, "" before.
  std::string sender_;  // The current transaction's MAIL FROM.
};

}  // namespace

absl::StatusOr<SenderLoginPolicy> ParseSenderRestrictions(const std::vector<std::string>& words,
                                                          std::optional<config::LookupTable> owners) {
  SenderLoginPolicy policy;
  policy.owners = std::move(owners);
  for (const std::string& word : words) {
    const std::string name = absl::AsciiStrToLower(word);
    if (name == "reject_sender_login_mismatch") {
      policy.check_authenticated = policy.check_unauthenticated = true;
    } else if (name == "reject_authenticated_sender_login_mismatch") {
      policy.check_authenticated = true;
    } else if (name == "reject_known_sender_login_mismatch") {
      policy.check_authenticated = policy.check_unauthenticated = policy.unknown_allowed = true;
    } else if (name == "reject_unauthenticated_sender_login_mismatch") {
      policy.check_unauthenticated = true;
    } else if (name != "permit") {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", word, "\": not supported (Postgate has permit and the reject_*sender_login_mismatch checks)"));
    }
  }
  return policy;
}

std::optional<Verdict> RelayPolicy::CheckSenderLogin(const std::string& sender, const std::string& user) const {
  if (sender.empty() || !sender_logins_.owners) return std::nullopt;
  const std::string* owners = sender_logins_.owners->FindAddress(sender);
  if (!user.empty() && sender_logins_.check_authenticated) {
    if (owners == nullptr && sender_logins_.unknown_allowed) return std::nullopt;
    bool owned = false;
    if (owners != nullptr) {
      for (absl::string_view owner : absl::StrSplit(*owners, absl::ByAnyChar(", \t"), absl::SkipEmpty())) {
        owned |= absl::EqualsIgnoreCase(owner, user);
      }
    }
    if (!owned) {
      return Verdict::Reject(Reply::Make(
          553, "5.7.1", absl::StrCat("<", sender, ">: Sender address rejected: not owned by user ", user)));
    }
  }
  if (user.empty() && sender_logins_.check_unauthenticated && owners != nullptr) {
    return Verdict::Reject(Reply::Make(553, "5.7.1", absl::StrCat("<", sender, ">: Sender address rejected: not logged in")));
  }
  return std::nullopt;
}

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
