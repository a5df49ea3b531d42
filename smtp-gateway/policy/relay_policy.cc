#include "smtp-gateway/policy/relay_policy.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace postgate::gateway::policy {
namespace {

using protocol::DomainLookup;
using protocol::Verdict;
using smtp::Reply;

Verdict RelayDenied(const std::string& address) {
  return Verdict::Reject(Reply::Make(554, "5.7.1", absl::StrCat("<", address, ">: Relay access denied")));
}

Verdict RelayDeferred(const std::string& address) {
  return Verdict::Reject(Reply::Make(454, "4.7.1", absl::StrCat("<", address, ">: Relay access denied")));
}

// "reject" and "defer" in the restriction lists, in Debian's Postfix 3.7.11's words; `what` is
// "Sender address" or "Recipient address".
Verdict AccessDenied(absl::string_view address, absl::string_view what) {
  return Verdict::Reject(Reply::Make(554, "5.7.1", absl::StrCat("<", address, ">: ", what, " rejected: Access denied")));
}

Verdict TryAgainLater(absl::string_view address, absl::string_view what) {
  return Verdict::Reject(Reply::Make(450, "4.3.2", absl::StrCat("<", address, ">: ", what, " rejected: Try again later")));
}

Verdict UnknownUser(const std::string& address) {
  return Verdict::Reject(Reply::Make(
      550, "5.1.1",
      absl::StrCat("<", address,
                   ">: Recipient address rejected: User unknown in local recipient table")));
}

class ClientPolicy : public protocol::Decider {
 public:
  ClientPolicy(const RelayPolicy& policy, std::string address, bool in_mynetworks)
      : policy_(policy), address_(std::move(address)), in_mynetworks_(in_mynetworks) {}

  Verdict CheckSender(const std::string& address) override {
    Verdict verdict = Verdict::Accept(policy_.QualifySender(address));
    sender_ = address;
    return verdict;
  }
  Verdict CheckRecipient(const std::string& address) override {
    // smtpd_sender_restrictions first (delayed to RCPT, as Postfix's smtpd_delay_reject), then
    // smtpd_relay_restrictions, smtpd_recipient_restrictions and the local recipient table.
    const std::optional<DomainLookup> sender_domain = SenderDomainAnswer();
    if (std::optional<Verdict> refused = policy_.CheckSender(sender_, in_mynetworks_, user_, sender_domain)) {
      return *refused;
    }
    return policy_.CheckRecipient(in_mynetworks_, !user_.empty(), address, {sender_, sender_domain});
  }
  std::optional<std::string> DomainToLookUp() override {
    std::optional<std::string> domain = policy_.SenderDomainToCheck(sender_);
    if (!domain || (looked_up_ && looked_up_->first == *domain)) return std::nullopt;
    return domain;
  }
  void DomainLookedUp(const std::string& domain, DomainLookup answer) override { looked_up_.emplace(domain, answer); }
  Verdict Verify(const std::string& address) override { return policy_.Verify(address); }
  bool MayFlush(const std::string& domain) override { return policy_.MayFlush(domain); }
  void LoggedIn(const std::string& user) override { user_ = user; }
  std::optional<size_t> AuthRateExceeded() override {
    const AuthRateLimit& rate = policy_.auth_rate_limit();
    if (rate.limiter == nullptr || rate.limit == 0) return std::nullopt;
    if (rate.exceptions != nullptr) {
      absl::StatusOr<IpAddress> ip = IpAddress::Parse(address_);
      if (ip.ok() && rate.exceptions->Contains(*ip)) return std::nullopt;
    }
    const size_t count = rate.limiter->CountAuth(absl::StrCat(rate.service, ":", address_), rate.time_unit, absl::Now());
    if (count <= rate.limit) return std::nullopt;
    return count;
  }
  std::string ClientAddress() const override { return address_; }

 private:
  const RelayPolicy& policy_;
  std::string address_;
  bool in_mynetworks_;
  std::string user_;    // SMTP AUTH login, "" before.
  std::string sender_;  // The current transaction's MAIL FROM, as the client sent it.
  // The last domain DNS was asked about for reject_unknown_sender_domain, and its answer.
  std::optional<std::pair<std::string, DomainLookup>> looked_up_;

  std::optional<DomainLookup> SenderDomainAnswer() const {
    std::optional<std::string> domain = policy_.SenderDomainToCheck(sender_);
    if (!domain || !looked_up_ || looked_up_->first != *domain) return std::nullopt;
    return looked_up_->second;
  }
};

}  // namespace

namespace {

// The words both lists share; `access_word` is check_sender_access or check_recipient_access.
// Returns false for a word that is not one of them.
absl::StatusOr<bool> ParseCommonRestriction(const std::vector<std::string>& words, size_t& i,
                                            absl::string_view access_word, absl::string_view non_fqdn_word,
                                            char delimiter, std::vector<AddressRestriction>& out) {
  using Kind = AddressRestriction::Kind;
  const std::string name = absl::AsciiStrToLower(words[i]);
  static constexpr std::pair<const char*, Kind> kSimple[] = {
      {"permit", Kind::kPermit},
      {"reject", Kind::kReject},
      {"defer", Kind::kDefer},
      {"permit_mynetworks", Kind::kPermitMynetworks},
      {"permit_sasl_authenticated", Kind::kPermitSaslAuthenticated},
  };
  for (const auto& [word, kind] : kSimple) {
    if (name == word) {
      out.push_back({.kind = kind});
      return true;
    }
  }
  if (name == non_fqdn_word) {
    out.push_back({.kind = Kind::kRejectNonFqdn});
    return true;
  }
  if (name == "reject_unknown_sender_domain") {
    out.push_back({.kind = Kind::kRejectUnknownSenderDomain});
    return true;
  }
  if (name == access_word) {
    if (i + 1 >= words.size()) return absl::InvalidArgumentError(absl::StrCat(words[i], " needs a table (texthash:/path)"));
    absl::StatusOr<std::shared_ptr<const AccessMap>> map = AccessMap::Load(words[++i], delimiter);
    if (!map.ok()) return map.status();
    out.push_back({.kind = Kind::kCheckAccess, .access = *std::move(map)});
    return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<SenderLoginPolicy> ParseSenderRestrictions(const std::vector<std::string>& words,
                                                          std::optional<config::LookupTable> owners,
                                                          char recipient_delimiter) {
  using Kind = AddressRestriction::Kind;
  SenderLoginPolicy policy;
  policy.owners = std::move(owners);
  for (size_t i = 0; i < words.size(); ++i) {
    absl::StatusOr<bool> common = ParseCommonRestriction(words, i, "check_sender_access", "reject_non_fqdn_sender",
                                                         recipient_delimiter, policy.restrictions);
    if (!common.ok()) return common.status();
    if (*common) continue;
    const std::string name = absl::AsciiStrToLower(words[i]);
    AddressRestriction mismatch{.kind = Kind::kLoginMismatch};
    if (name == "reject_sender_login_mismatch") {
      mismatch.check_authenticated = mismatch.check_unauthenticated = true;
    } else if (name == "reject_authenticated_sender_login_mismatch") {
      mismatch.check_authenticated = true;
    } else if (name == "reject_known_sender_login_mismatch") {
      mismatch.check_authenticated = mismatch.check_unauthenticated = mismatch.unknown_allowed = true;
    } else if (name == "reject_unauthenticated_sender_login_mismatch") {
      mismatch.check_unauthenticated = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", words[i], "\": not supported (Postgate has permit, reject, defer, permit_mynetworks, "
          "permit_sasl_authenticated, check_sender_access, reject_non_fqdn_sender, "
          "reject_unknown_sender_domain and the reject_*sender_login_mismatch checks)"));
    }
    policy.restrictions.push_back(mismatch);
  }
  return policy;
}

absl::StatusOr<std::vector<AddressRestriction>> ParseRecipientRestrictions(const std::vector<std::string>& words,
                                                                           char recipient_delimiter) {
  using Kind = AddressRestriction::Kind;
  std::vector<AddressRestriction> restrictions;
  for (size_t i = 0; i < words.size(); ++i) {
    absl::StatusOr<bool> common = ParseCommonRestriction(words, i, "check_recipient_access",
                                                         "reject_non_fqdn_recipient", recipient_delimiter, restrictions);
    if (!common.ok()) return common.status();
    if (*common) continue;
    const std::string name = absl::AsciiStrToLower(words[i]);
    if (name == "permit_auth_destination") {
      restrictions.push_back({.kind = Kind::kPermitAuthDestination});
    } else if (name == "reject_unauth_destination") {
      restrictions.push_back({.kind = Kind::kRejectUnauthDestination});
    } else if (name == "defer_unauth_destination") {
      restrictions.push_back({.kind = Kind::kDeferUnauthDestination});
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", words[i], "\": not supported (Postgate has permit, reject, defer, permit_mynetworks, "
          "permit_sasl_authenticated, permit_auth_destination, reject_unauth_destination, "
          "defer_unauth_destination, check_recipient_access, reject_non_fqdn_recipient and "
          "reject_unknown_sender_domain)"));
    }
  }
  return restrictions;
}

absl::StatusOr<std::vector<RelayRestriction>> ParseRelayRestrictions(const std::vector<std::string>& words) {
  static constexpr std::pair<const char*, RelayRestriction> kNames[] = {
      {"permit_mynetworks", RelayRestriction::kPermitMynetworks},
      {"permit_sasl_authenticated", RelayRestriction::kPermitSaslAuthenticated},
      {"permit_auth_destination", RelayRestriction::kPermitAuthDestination},
      {"reject_unauth_destination", RelayRestriction::kRejectUnauthDestination},
      {"defer_unauth_destination", RelayRestriction::kDeferUnauthDestination},
      {"permit", RelayRestriction::kPermit},
      {"reject", RelayRestriction::kReject},
      {"defer", RelayRestriction::kDefer},
  };
  std::vector<RelayRestriction> restrictions;
  for (const std::string& word : words) {
    const std::string name = absl::AsciiStrToLower(word);
    const auto* found = std::find_if(std::begin(kNames), std::end(kNames),
                                     [&name](const auto& entry) { return name == entry.first; });
    if (found == std::end(kNames)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", word, "\": not supported (Postgate has permit_mynetworks, permit_sasl_authenticated, "
          "permit_auth_destination, reject_unauth_destination, defer_unauth_destination, permit, reject, defer)"));
    }
    restrictions.push_back(found->second);
  }
  // Postfix's safety net against an open relay: some word must refuse what the others let through.
  const bool refuses = std::any_of(restrictions.begin(), restrictions.end(), [](RelayRestriction r) {
    return r == RelayRestriction::kRejectUnauthDestination || r == RelayRestriction::kDeferUnauthDestination ||
           r == RelayRestriction::kReject || r == RelayRestriction::kDefer;
  });
  if (!refuses) {
    return absl::InvalidArgumentError(
        "specify at least one working instance of: reject_unauth_destination, defer_unauth_destination, "
        "reject, defer (an open relay otherwise)");
  }
  return restrictions;
}

namespace {

// reject_non_fqdn_*: "user@host.domain" passes; "user" or "user@host" does not.
bool FullyQualified(absl::string_view address) {
  const size_t at = address.rfind('@');
  if (at == absl::string_view::npos) return false;
  const absl::string_view domain = address.substr(at + 1);
  return (domain.size() > 2 && domain.front() == '[') || domain.find('.') != absl::string_view::npos;
}

}  // namespace

std::optional<Verdict> RelayPolicy::CheckLoginMismatch(const AddressRestriction& check, const std::string& sender,
                                                       const std::string& user) const {
  if (!sender_logins_.owners) return std::nullopt;
  const std::string* owners = sender_logins_.owners->FindAddress(sender);
  if (!user.empty() && check.check_authenticated) {
    if (owners == nullptr && check.unknown_allowed) return std::nullopt;
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
  if (user.empty() && check.check_unauthenticated && owners != nullptr) {
    return Verdict::Reject(Reply::Make(553, "5.7.1", absl::StrCat("<", sender, ">: Sender address rejected: not logged in")));
  }
  return std::nullopt;
}

std::optional<Verdict> RelayPolicy::CheckSender(const std::string& sender, bool in_mynetworks, const std::string& user,
                                                std::optional<DomainLookup> sender_domain) const {
  return CheckList(sender_logins_.restrictions, {.address = sender,
                                                 .what = "Sender address",
                                                 .in_mynetworks = in_mynetworks,
                                                 .logged_in = !user.empty(),
                                                 .user = user,
                                                 .sender = sender,
                                                 .sender_domain = sender_domain});
}

bool RelayPolicy::HasUnknownSenderDomainCheck(const std::vector<AddressRestriction>& list) {
  return std::any_of(list.begin(), list.end(), [](const AddressRestriction& check) {
    return check.kind == AddressRestriction::Kind::kRejectUnknownSenderDomain;
  });
}

std::optional<std::string> RelayPolicy::SenderDomainToCheck(const std::string& sender) const {
  if (!checks_sender_domain_) return std::nullopt;  // Asked before every RCPT: this first.
  const size_t at = sender.rfind('@');
  if (sender.empty() || at == std::string::npos) return std::nullopt;
  const addressing::ClassifiedAddress classified = local_domain_.Classify(sender);
  if (classified.domain.empty() || classified.domain.front() == '[' || classified.local) return std::nullopt;
  if (virtual_ != nullptr && virtual_->IsVirtualDomain(classified.domain)) return std::nullopt;
  return classified.domain;
}

std::vector<AddressRestriction> RelayPolicy::AsAddressRestrictions(const std::vector<RelayRestriction>& relay) {
  using Kind = AddressRestriction::Kind;
  std::vector<AddressRestriction> steps;
  for (RelayRestriction restriction : relay) {
    Kind kind = Kind::kPermit;
    switch (restriction) {
      case RelayRestriction::kPermitMynetworks: kind = Kind::kPermitMynetworks; break;
      case RelayRestriction::kPermitSaslAuthenticated: kind = Kind::kPermitSaslAuthenticated; break;
      case RelayRestriction::kPermitAuthDestination: kind = Kind::kPermitAuthDestination; break;
      case RelayRestriction::kRejectUnauthDestination: kind = Kind::kRejectUnauthDestination; break;
      case RelayRestriction::kDeferUnauthDestination: kind = Kind::kDeferUnauthDestination; break;
      case RelayRestriction::kPermit: kind = Kind::kPermit; break;
      case RelayRestriction::kReject: kind = Kind::kReject; break;
      case RelayRestriction::kDefer: kind = Kind::kDefer; break;
    }
    steps.push_back({.kind = kind});
  }
  return steps;
}

std::optional<Verdict> RelayPolicy::CheckList(const std::vector<AddressRestriction>& list,
                                              const ListContext& context) const {
  using Kind = AddressRestriction::Kind;
  const std::string& address = context.address;
  const bool null_sender = address.empty();  // Only a sender can be <>.
  // defer_if_permit (a DNS failure): the deferral stands if the list goes on to permit, explicitly
  // or by ending; a refusal after it wins, as in Postfix.
  std::optional<Verdict> deferred;
  for (const AddressRestriction& check : list) {
    switch (check.kind) {
      case Kind::kPermit: return deferred;
      case Kind::kPermitMynetworks:
        if (context.in_mynetworks) return deferred;
        break;
      case Kind::kPermitSaslAuthenticated:
        if (context.logged_in) return deferred;
        break;
      case Kind::kPermitAuthDestination:
        if (context.our_destination) return deferred;
        break;
      case Kind::kRejectUnauthDestination:
        if (!context.our_destination) return RelayDenied(address);
        break;
      case Kind::kDeferUnauthDestination:
        if (!context.our_destination) return RelayDeferred(address);
        break;
      case Kind::kReject: return AccessDenied(address, context.what);
      case Kind::kDefer: return TryAgainLater(address, context.what);
      case Kind::kCheckAccess: {
        // The null sender is looked up as "<>" (smtpd_null_access_lookup_key).
        const AccessDecision decision = check.access->Decide(null_sender ? "<>" : address, context.what);
        if (decision.kind == AccessDecision::Kind::kPermit) return deferred;
        if (decision.kind == AccessDecision::Kind::kRefuse) return Verdict::Reject(decision.reply);
        break;
      }
      case Kind::kRejectNonFqdn:
        if (!null_sender && !FullyQualified(address)) {
          return Verdict::Reject(Reply::Make(504, "5.5.2", absl::StrCat("<", address, ">: ", context.what,
                                                                         " rejected: need fully-qualified address")));
        }
        break;
      case Kind::kLoginMismatch:
        if (null_sender) break;
        if (std::optional<Verdict> refused = CheckLoginMismatch(check, local_domain_.Qualify(address), context.user)) {
          return refused;
        }
        break;
      case Kind::kRejectUnknownSenderDomain:
        if (!context.sender_domain) break;  // Not a domain DNS decides (ours, <>, a literal).
        if (std::optional<Verdict> refused = UnknownSenderDomain(context.sender, *context.sender_domain)) {
          if (*context.sender_domain == DomainLookup::kTempFail) {
            if (!deferred) deferred = std::move(refused);
          } else {
            return refused;
          }
        }
        break;
    }
  }
  return deferred;
}

std::optional<Verdict> RelayPolicy::UnknownSenderDomain(const std::string& sender, DomainLookup answer) const {
  const size_t at = sender.rfind('@');
  const std::string domain = at == std::string::npos ? std::string() : sender.substr(at + 1);
  switch (answer) {
    case DomainLookup::kExists:
      return std::nullopt;
    case DomainLookup::kNullMx:  // RFC 7505.
      return Verdict::Reject(Reply::Make(
          550, "5.7.27",
          absl::StrCat("<", sender, ">: Sender address rejected: Domain ", domain, " does not accept mail (nullMX)")));
    case DomainLookup::kNotFound: {
      // Postfix's 4.1.8 with the class of the configured code.
      const int code = unknown_address_reject_code_;
      return Verdict::Reject(Reply::Make(code, code >= 500 ? "5.1.8" : "4.1.8",
                                         absl::StrCat("<", sender, ">: Sender address rejected: Domain not found")));
    }
    case DomainLookup::kTempFail:
      return Verdict::Reject(
          Reply::Make(450, "4.1.8", absl::StrCat("<", sender, ">: Sender address rejected: Domain not found")));
  }
  return std::nullopt;
}

bool RelayPolicy::RelayPermitted(absl::string_view client_address) const {
  absl::StatusOr<IpAddress> address = IpAddress::Parse(client_address);
  return address.ok() && mynetworks_.Contains(*address);
}

std::unique_ptr<protocol::Decider> RelayPolicy::ForClient(absl::string_view client_address) const {
  return std::make_unique<ClientPolicy>(*this, std::string(client_address), RelayPermitted(client_address));
}

Verdict RelayPolicy::CheckRecipient(bool in_mynetworks, bool logged_in, const std::string& address,
                                    const SenderFacts& sender) const {
  addressing::ClassifiedAddress classified = local_domain_.Classify(address);
  // Ours, as reject_unauth_destination sees it: a local domain, without sender-routing syntax
  // (user@other@ours, user%other@ours) that could make us relay, or a virtual alias domain.
  const bool virtual_domain = virtual_ != nullptr && virtual_->IsVirtualDomain(classified.domain);
  const bool our_destination = (classified.local && !classified.routing_syntax) || virtual_domain;
  // smtpd_relay_restrictions, then smtpd_recipient_restrictions: a permit ends one list only.
  const ListContext context{.address = address,
                            .what = "Recipient address",
                            .in_mynetworks = in_mynetworks,
                            .logged_in = logged_in,
                            .our_destination = our_destination,
                            .sender = sender.address,
                            .sender_domain = sender.domain};
  for (const std::vector<AddressRestriction>* list : {&relay_restrictions_, &recipient_restrictions_}) {
    if (std::optional<Verdict> refused = CheckList(*list, context)) return *refused;
  }
  return CheckMailbox(address, classified, local_domain_.Qualify(address));
}

Verdict RelayPolicy::CheckMailbox(const std::string& address, const addressing::ClassifiedAddress& classified,
                                  std::string accepted) const {
  // Found in a table that rewrites it (virtual aliases; recipient_canonical_maps or canonical_maps,
  // as Postfix's smtpd asks them first), the address needs no mailbox of its own.
  const bool virtual_alias = virtual_ != nullptr && !virtual_->empty() && virtual_->Lookup(address).has_value();
  const bool domain_is_virtual = virtual_ != nullptr && virtual_->IsVirtualDomain(classified.domain);
  if (domain_is_virtual && !virtual_alias) {
    return Verdict::Reject(Reply::Make(
        550, "5.1.1", absl::StrCat("<", address, ">: Recipient address rejected: User unknown in virtual alias table")));
  }
  if (classified.local && !virtual_alias && !(recipient_canonical_ && recipient_canonical_(address)) &&
      !local_domain_.IsKnownRecipient(classified)) {
    return UnknownUser(address);
  }
  return Verdict::Accept(std::move(accepted));
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
  return CheckMailbox(address, local_domain_.Classify(address), address);
}

}  // namespace postgate::gateway::policy
