// Who may send where, Postfix's defaults for smtpd_relay_restrictions and local_recipient_maps:
// clients in mynetworks, and clients logged in with SMTP AUTH (permit_sasl_authenticated), may
// relay anywhere; every other client may only send to mydestination;
// at mydestination only local users and aliases exist. Decisions only: each answer is a Verdict
// carrying Postfix's reply; nothing here touches a socket. Thread-safe after construction.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/lookup_table.h"
#include "smtp-gateway/policy/access_map.h"
#include "smtp-gateway/policy/virtual_aliases.h"

#include "absl/time/time.h"
#include "core/addressing/local_domain.h"
#include "smtp-gateway/policy/client_limiter.h"
#include "smtp-gateway/policy/network.h"
#include "smtp-gateway/protocol/session_machine.h"

namespace postgate::gateway::policy {

// One word of smtpd_sender_restrictions or smtpd_recipient_restrictions, checked in order until
// one permits (the rest of that list is skipped) or refuses.
struct AddressRestriction {
  enum class Kind {
    kPermit,                   // permit
    kReject,                   // reject: 554 5.7.1 "… address rejected: Access denied"
    kDefer,                    // defer: 450 4.3.2 "… address rejected: Try again later"
    kPermitMynetworks,         // permit_mynetworks
    kPermitSaslAuthenticated,  // permit_sasl_authenticated
    kPermitAuthDestination,    // permit_auth_destination (recipients)
    kRejectUnauthDestination,  // reject_unauth_destination (recipients)
    kDeferUnauthDestination,   // defer_unauth_destination (recipients)
    kCheckAccess,              // check_sender_access / check_recipient_access TABLE
    kRejectNonFqdn,            // reject_non_fqdn_sender / _recipient: 504 5.5.2
    kLoginMismatch,            // reject_*sender_login_mismatch (senders; smtpd_sender_login_maps)
    kRejectUnknownSenderDomain,  // reject_unknown_sender_domain: no MX, A or AAAA record (DNS)
  };
  Kind kind = Kind::kPermit;
  std::shared_ptr<const AccessMap> access{};  // kCheckAccess
  // kLoginMismatch: a logged-in client must own the address (`unknown_allowed`: unless the
  // table does not list it, reject_known_…); an address the table lists needs a login.
  bool check_authenticated = false;
  bool unknown_allowed = false;
  bool check_unauthenticated = false;
};

// smtpd_sender_login_maps with smtpd_sender_restrictions.
struct SenderLoginPolicy {
  std::optional<config::LookupTable> owners;  // "address owner, owner" / "@domain owner"
  std::vector<AddressRestriction> restrictions;
};

// smtpd_sender_restrictions' words (a table follows check_sender_access) into a policy; an
// unknown word, a missing or unreadable table, or a login mismatch check without
// smtpd_sender_login_maps is an error naming it.
absl::StatusOr<SenderLoginPolicy> ParseSenderRestrictions(const std::vector<std::string>& words,
                                                          std::optional<config::LookupTable> owners,
                                                          char recipient_delimiter = '\0');

// smtpd_recipient_restrictions (checked after smtpd_relay_restrictions; empty by default, as in
// Postfix 3.x): permit, reject, defer, permit_mynetworks, permit_sasl_authenticated,
// permit_auth_destination, reject_unauth_destination, defer_unauth_destination,
// check_recipient_access TABLE, reject_non_fqdn_recipient.
absl::StatusOr<std::vector<AddressRestriction>> ParseRecipientRestrictions(const std::vector<std::string>& words,
                                                                           char recipient_delimiter = '\0');

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
                                                                  RelayRestriction::kRejectUnauthDestination},
              std::vector<AddressRestriction> recipient_restrictions = {})
      : local_domain_(local_domain),
        mynetworks_(std::move(mynetworks)),
        fast_flush_domains_(std::move(fast_flush_domains)),
        sender_logins_(std::move(sender_logins)),
        relay_restrictions_(AsAddressRestrictions(relay_restrictions)),
        recipient_restrictions_(std::move(recipient_restrictions)),
        checks_sender_domain_(HasUnknownSenderDomainCheck(sender_logins_.restrictions) ||
                              HasUnknownSenderDomainCheck(recipient_restrictions_)) {}

  // smtpd_sender_restrictions for `sender` as the client sent it ("" = the null sender, looked up
  // in access tables as "<>") from a client in mynetworks or not, logged in as `user` ("" = not):
  // a refusal, evaluated at RCPT as Postfix's smtpd_delay_reject does, or nullopt.
  // `sender_domain`: DNS's answer for the sender's domain, when SenderDomainToCheck asked for one.
  std::optional<protocol::Verdict> CheckSender(const std::string& sender, bool in_mynetworks, const std::string& user,
                                               std::optional<protocol::DomainLookup> sender_domain = std::nullopt) const;
  // The domain reject_unknown_sender_domain needs looked up for `sender`: nullopt when no list
  // has that check, or the sender is <>, unqualified, an address literal or in one of our domains
  // (Postfix skips those: they resolve locally).
  std::optional<std::string> SenderDomainToCheck(const std::string& sender) const;
  // unknown_address_reject_code (Postfix's default 450).
  void set_unknown_address_reject_code(int code) { unknown_address_reject_code_ = code; }

  bool RelayPermitted(absl::string_view client_address) const;
  // virtual_alias_maps / virtual_alias_domains (null: none).
  void set_virtual_aliases(std::shared_ptr<const VirtualAliases> aliases) { virtual_ = std::move(aliases); }
  const VirtualAliases* virtual_aliases() const { return virtual_.get(); }
  // recipient_canonical_maps / canonical_maps: does one of them have this recipient? Unset: no.
  void set_recipient_canonical(std::function<bool(absl::string_view)> found) { recipient_canonical_ = std::move(found); }
  void set_auth_rate_limit(AuthRateLimit limit) { auth_rate_ = std::move(limit); }
  const AuthRateLimit& auth_rate_limit() const { return auth_rate_; }

  // The Decider for one session from `client_address`.
  std::unique_ptr<protocol::Decider> ForClient(absl::string_view client_address) const;

  // smtpd_relay_restrictions for a client in mynetworks or not, logged in or not, then
  // smtpd_recipient_restrictions, then the local recipient table.
  // `sender`: the transaction's sender and its domain's DNS answer, for reject_unknown_sender_domain
  // in smtpd_recipient_restrictions.
  struct SenderFacts {
    std::string address;
    std::optional<protocol::DomainLookup> domain;
  };
  protocol::Verdict CheckRecipient(bool in_mynetworks, bool logged_in, const std::string& address,
                                   const SenderFacts& sender = {}) const;
  protocol::Verdict Verify(const std::string& address) const;
  // ETRN: `domain` (lower case) is in fast_flush_domains, or below an entry there (Postfix's
  // parent_domain_matches_subdomains includes fast_flush_domains).
  bool MayFlush(const std::string& domain) const;
  std::string QualifySender(const std::string& address) const { return local_domain_.Qualify(address); }

 private:
  std::optional<protocol::Verdict> CheckLoginMismatch(const AddressRestriction& check, const std::string& sender,
                                                      const std::string& user) const;
  // What one restriction list is checked for.
  struct ListContext {
    std::string address{};      // The sender ("" for <>) or the recipient, as the client sent it.
    absl::string_view what{};   // "Sender address" / "Recipient address", for the replies.
    bool in_mynetworks = false;
    bool logged_in = false;
    bool our_destination = false;  // Recipients: reject_unauth_destination's notion.
    std::string user{};         // Senders: the SMTP AUTH login, for the login mismatch checks.
    std::string sender{};       // The transaction's sender (reject_unknown_sender_domain).
    std::optional<protocol::DomainLookup> sender_domain{};  // Its domain's DNS answer; nullopt: not checked.
  };
  // One list (smtpd_sender_restrictions, smtpd_relay_restrictions, smtpd_recipient_restrictions),
  // in order: a refusal, or nullopt when it permits or ends undecided.
  std::optional<protocol::Verdict> CheckList(const std::vector<AddressRestriction>& list,
                                             const ListContext& context) const;
  // reject_unknown_sender_domain's reply for DNS's answer, or nullopt when the domain exists.
  std::optional<protocol::Verdict> UnknownSenderDomain(const std::string& sender, protocol::DomainLookup answer) const;
  // A recipient that passed the lists: in a virtual alias domain it must be an alias; in a local
  // domain a user, an alias or a canonical_maps key. Accepted as `accepted`.
  protocol::Verdict CheckMailbox(const std::string& address, const addressing::ClassifiedAddress& classified,
                                 std::string accepted) const;
  static bool HasUnknownSenderDomainCheck(const std::vector<AddressRestriction>& list);
  static std::vector<AddressRestriction> AsAddressRestrictions(const std::vector<RelayRestriction>& relay);

  const addressing::LocalDomain& local_domain_;
  NetworkList mynetworks_;
  std::vector<std::string> fast_flush_domains_;
  SenderLoginPolicy sender_logins_;
  std::vector<AddressRestriction> relay_restrictions_;
  std::vector<AddressRestriction> recipient_restrictions_;
  std::shared_ptr<const VirtualAliases> virtual_;
  bool checks_sender_domain_;  // A list has reject_unknown_sender_domain: senders need DNS.
  std::function<bool(absl::string_view)> recipient_canonical_;
  int unknown_address_reject_code_ = 450;
  AuthRateLimit auth_rate_;
};

}  // namespace postgate::gateway::policy
