#include "smtp-gateway/policy/relay_policy.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::gateway::policy {
namespace {

class RelayPolicyTest : public ::testing::Test {
 protected:
  RelayPolicyTest()
      : cf_(*config::MainCf::Parse("myhostname = mail169.com\nmydomain = mail169.com\n"
                                   "mydestination = mail169.com, localhost.localdomain, localhost\n"
                                   "recipient_delimiter = +\npostgate_local_users = foo bar\n",
                                   "main.cf", "host")),
        domain_(cf_, Aliases()),
        policy_(domain_, *NetworkList::Parse({"127.0.0.0/8", "192.168.0.0/24"}),
                {"mail169.com", ".Example.ORG"}) {}

  static config::AliasTable Aliases() {
    config::AliasTable aliases;
    EXPECT_TRUE(aliases.Parse("postmaster: bar\n", "aliases").ok());
    return aliases;
  }

  // The wire reply for a RCPT from `client`, or "accept <address>".
  std::string Rcpt(const std::string& client, const std::string& address) {
    protocol::Verdict verdict = policy_.ForClient(client)->CheckRecipient(address);
    return verdict.accepted ? "accept " + verdict.address : verdict.reply.Format();
  }

  config::MainCf cf_;
  addressing::LocalDomain domain_;
  RelayPolicy policy_;
};

TEST_F(RelayPolicyTest, MynetworksMayRelayOthersMayNot) {
  EXPECT_EQ(Rcpt("192.168.0.10", "x@example.org"), "accept x@example.org");
  EXPECT_EQ(Rcpt("127.0.0.1", "x@example.org"), "accept x@example.org");
  EXPECT_EQ(Rcpt("10.9.9.9", "x@example.org"), "554 5.7.1 <x@example.org>: Relay access denied\r\n");
  EXPECT_EQ(Rcpt("10.9.9.9", "x@[127.0.0.1]"), "554 5.7.1 <x@[127.0.0.1]>: Relay access denied\r\n");
}

TEST_F(RelayPolicyTest, AnyClientReachesLocalUsers) {
  EXPECT_EQ(Rcpt("10.9.9.9", "bar@mail169.com"), "accept bar@mail169.com");
  EXPECT_EQ(Rcpt("10.9.9.9", "bar+tag@mail169.com"), "accept bar+tag@mail169.com");
  EXPECT_EQ(Rcpt("10.9.9.9", "postmaster@localhost"), "accept postmaster@localhost");
  EXPECT_EQ(Rcpt("10.9.9.9", "bar"), "accept bar@mail169.com");
  EXPECT_EQ(Rcpt("10.9.9.9", "nobody@mail169.com"),
            "550 5.1.1 <nobody@mail169.com>: Recipient address rejected: User unknown in local "
            "recipient table\r\n");
}

TEST_F(RelayPolicyTest, RoutingTricksAtLocalDomainAreRelayAttempts) {
  EXPECT_EQ(Rcpt("10.9.9.9", "bar%example.org@mail169.com"),
            "554 5.7.1 <bar%example.org@mail169.com>: Relay access denied\r\n");
  EXPECT_EQ(Rcpt("10.9.9.9", "example.org!bar@mail169.com"),
            "554 5.7.1 <example.org!bar@mail169.com>: Relay access denied\r\n");
  // From mynetworks they are not relayed either: there is no such local user.
  EXPECT_EQ(Rcpt("127.0.0.1", "bar%example.org@mail169.com").substr(0, 9), "550 5.1.1");
}

TEST_F(RelayPolicyTest, ALoggedInClientMayRelayAsPermitSaslAuthenticated) {
  auto decider = policy_.ForClient("10.9.9.9");
  EXPECT_FALSE(decider->CheckRecipient("someone@example.org").accepted);
  decider->LoggedIn("foo");
  EXPECT_TRUE(decider->CheckRecipient("someone@example.org").accepted);
  EXPECT_FALSE(decider->CheckRecipient("nosuch@mail169.com").accepted);  // Local users are still checked.
  EXPECT_FALSE(policy_.ForClient("10.9.9.9")->CheckRecipient("someone@example.org").accepted);  // Per session.
}

TEST_F(RelayPolicyTest, SenderLoginMismatchAsPostfix) {
  absl::StatusOr<config::LookupTable> owners =
      config::LookupTable::Parse("foo@mail169.com foo\nshared@mail169.com foo, bar\n@example.net bar\n", "login_maps");
  ASSERT_TRUE(owners.ok());
  auto policy_with = [&](std::vector<std::string> words) {
    return RelayPolicy(domain_, *NetworkList::Parse({"127.0.0.0/8"}), {}, *ParseSenderRestrictions(words, *owners));
  };
  auto reply = [](const std::optional<protocol::Verdict>& verdict) {
    return verdict ? verdict->reply.Format() : std::string("permitted");
  };
  const RelayPolicy strict = policy_with({"reject_sender_login_mismatch"});
  EXPECT_EQ(reply(strict.CheckSender("foo@mail169.com", false, "foo")), "permitted");
  EXPECT_EQ(reply(strict.CheckSender("shared@mail169.com", false, "BAR")), "permitted");  // Case-insensitive.
  EXPECT_EQ(reply(strict.CheckSender("foo@mail169.com", false, "bar")),
            "553 5.7.1 <foo@mail169.com>: Sender address rejected: not owned by user bar\r\n");
  EXPECT_EQ(reply(strict.CheckSender("anyone@example.net", false, "foo")),
            "553 5.7.1 <anyone@example.net>: Sender address rejected: not owned by user foo\r\n");
  // A logged-in user may not use an address the table does not list …
  EXPECT_EQ(reply(strict.CheckSender("unlisted@example.org", false, "foo")),
            "553 5.7.1 <unlisted@example.org>: Sender address rejected: not owned by user foo\r\n");
  // … and a listed address needs a login; the null sender is never checked.
  EXPECT_EQ(reply(strict.CheckSender("foo@mail169.com", false, "")),
            "553 5.7.1 <foo@mail169.com>: Sender address rejected: not logged in\r\n");
  EXPECT_EQ(reply(strict.CheckSender("unlisted@example.org", false, "")), "permitted");
  EXPECT_EQ(reply(strict.CheckSender("", false, "foo")), "permitted");
  EXPECT_EQ(reply(policy_with({"reject_known_sender_login_mismatch"}).CheckSender("unlisted@example.org", false, "foo")),
            "permitted");
  EXPECT_EQ(reply(policy_with({"reject_authenticated_sender_login_mismatch"}).CheckSender("foo@mail169.com", false, "")),
            "permitted");
  EXPECT_EQ(reply(policy_with({}).CheckSender("foo@mail169.com", false, "bar")), "permitted");
  EXPECT_EQ(ParseSenderRestrictions({"reject_unknown_client_hostname"}, std::nullopt).status().message(),
            "\"reject_unknown_client_hostname\": not supported (Postgate has permit, reject, defer, permit_mynetworks, "
            "permit_sasl_authenticated, check_sender_access, reject_non_fqdn_sender, "
            "reject_unknown_sender_domain and the reject_*sender_login_mismatch checks)");
  // Through a session's Decider: the refusal comes at RCPT, before the relay check.
  auto decider = strict.ForClient("10.9.9.9");
  decider->LoggedIn("bar");
  decider->CheckSender("foo@mail169.com");
  EXPECT_EQ(decider->CheckRecipient("someone@example.org").reply.Format(),
            "553 5.7.1 <foo@mail169.com>: Sender address rejected: not owned by user bar\r\n");
}

// smtpd_relay_restrictions as a submission service sets them: only logged-in clients send at all.
// The replies are Debian's Postfix 3.7.11's for the same lists.
TEST_F(RelayPolicyTest, RelayRestrictionsDecideInOrder) {
  auto rcpt = [this](const std::vector<std::string>& words, const std::string& client, bool logged_in,
                     const std::string& address) {
    RelayPolicy policy(domain_, *NetworkList::Parse({"127.0.0.0/8"}), {}, {}, *ParseRelayRestrictions(words));
    auto decider = policy.ForClient(client);
    if (logged_in) decider->LoggedIn("foo");
    protocol::Verdict verdict = decider->CheckRecipient(address);
    return verdict.accepted ? "accept " + verdict.address : verdict.reply.Format();
  };
  const std::vector<std::string> submission = {"permit_sasl_authenticated", "reject"};
  EXPECT_EQ(rcpt(submission, "10.9.9.9", true, "x@example.org"), "accept x@example.org");
  EXPECT_EQ(rcpt(submission, "10.9.9.9", false, "bar@mail169.com"),
            "554 5.7.1 <bar@mail169.com>: Recipient address rejected: Access denied\r\n");
  EXPECT_EQ(rcpt(submission, "127.0.0.1", false, "x@example.org"),  // mynetworks is not in this list.
            "554 5.7.1 <x@example.org>: Recipient address rejected: Access denied\r\n");
  EXPECT_EQ(rcpt(submission, "10.9.9.9", true, "nobody@mail169.com").substr(0, 9), "550 5.1.1");  // Still checked.
  EXPECT_EQ(rcpt({"permit_mynetworks", "defer_unauth_destination"}, "10.9.9.9", false, "x@example.org"),
            "454 4.7.1 <x@example.org>: Relay access denied\r\n");
  EXPECT_EQ(rcpt({"permit_auth_destination", "defer"}, "10.9.9.9", false, "bar@mail169.com"), "accept bar@mail169.com");
  EXPECT_EQ(rcpt({"permit_auth_destination", "defer"}, "10.9.9.9", false, "x@example.org"),
            "450 4.3.2 <x@example.org>: Recipient address rejected: Try again later\r\n");
  // A list that cannot refuse is an open relay: refused, as Postfix refuses it.
  for (const std::vector<std::string>& open : {std::vector<std::string>{}, {"permit_mynetworks", "permit"}}) {
    EXPECT_EQ(ParseRelayRestrictions(open).status().message(),
              "specify at least one working instance of: reject_unauth_destination, defer_unauth_destination, "
              "reject, defer (an open relay otherwise)");
  }
  EXPECT_EQ(rcpt({"PERMIT_MYNETWORKS", "reject_unauth_destination"}, "127.0.0.1", false, "x@example.org"),
            "accept x@example.org");
  EXPECT_EQ(ParseRelayRestrictions({"permit_mynetworks", "check_client_access"}).status().message(),
            "\"check_client_access\": not supported (Postgate has permit_mynetworks, permit_sasl_authenticated, "
            "permit_auth_destination, reject_unauth_destination, defer_unauth_destination, permit, reject, defer)");
}

TEST_F(RelayPolicyTest, SenderIsQualifiedAndVrfyChecksLocalUsers) {
  auto decider = policy_.ForClient("10.9.9.9");
  EXPECT_EQ(decider->CheckSender("foo").address, "foo@mail169.com");
  EXPECT_EQ(decider->CheckSender("").address, "");
  EXPECT_TRUE(decider->Verify("bar").accepted);
  EXPECT_FALSE(decider->Verify("nosuch").accepted);
  EXPECT_TRUE(decider->Verify("someone@example.org").accepted);
}

TEST_F(RelayPolicyTest, FastFlushDomainsIncludeSubdomains) {
  EXPECT_TRUE(policy_.MayFlush("mail169.com"));
  EXPECT_TRUE(policy_.MayFlush("example.org"));
  EXPECT_TRUE(policy_.MayFlush("mx.example.org"));
  EXPECT_FALSE(policy_.MayFlush("badexample.org"));
  EXPECT_FALSE(policy_.MayFlush("example.net"));
}

// Debian's Postfix 3.7.11's replies for the same lists (2026-11-30).
TEST_F(RelayPolicyTest, SenderAndRecipientRestrictionListsAsPostfix) {
  const std::string dir = ::testing::TempDir();
  const std::string senders = dir + "/sender_access";
  const std::string recipients = dir + "/rcpt_access";
  std::ofstream(senders) << "good.example OK\nspam.example REJECT\n";
  std::ofstream(recipients) << "blocked@mail169.com REJECT\nheld.example 450 4.7.1 Try later\n";
  absl::StatusOr<SenderLoginPolicy> sender_list = ParseSenderRestrictions(
      {"reject_non_fqdn_sender", "check_sender_access", "texthash:" + senders, "reject"}, std::nullopt, '+');
  ASSERT_TRUE(sender_list.ok()) << sender_list.status();
  absl::StatusOr<std::vector<AddressRestriction>> recipient_list = ParseRecipientRestrictions(
      {"reject_non_fqdn_recipient", "check_recipient_access", "texthash:" + recipients, "permit_mynetworks",
       "reject_unauth_destination"}, '+');
  ASSERT_TRUE(recipient_list.ok()) << recipient_list.status();
  const RelayPolicy policy(domain_, *NetworkList::Parse({"127.0.0.0/8"}), {}, *std::move(sender_list),
                           {RelayRestriction::kPermitMynetworks, RelayRestriction::kRejectUnauthDestination},
                           *std::move(recipient_list));
  auto rcpt = [&policy](const std::string& sender, const std::string& recipient) {
    auto decider = policy.ForClient("127.0.0.1");
    decider->CheckSender(sender);
    const protocol::Verdict verdict = decider->CheckRecipient(recipient);
    return verdict.accepted ? std::string("250") : verdict.reply.Format();
  };
  EXPECT_EQ(rcpt("x@good.example", "bar@mail169.com"), "250");  // OK ends the list before "reject".
  EXPECT_EQ(rcpt("x@spam.example", "bar@mail169.com"),
            "554 5.7.1 <x@spam.example>: Sender address rejected: Access denied\r\n");
  EXPECT_EQ(rcpt("x@other.example", "bar@mail169.com"),
            "554 5.7.1 <x@other.example>: Sender address rejected: Access denied\r\n");
  EXPECT_EQ(rcpt("nodomain", "bar@mail169.com"),
            "504 5.5.2 <nodomain>: Sender address rejected: need fully-qualified address\r\n");
  EXPECT_EQ(rcpt("x@nodot", "bar@mail169.com"),
            "504 5.5.2 <x@nodot>: Sender address rejected: need fully-qualified address\r\n");
  EXPECT_EQ(rcpt("x@good.example", "blocked@mail169.com"),
            "554 5.7.1 <blocked@mail169.com>: Recipient address rejected: Access denied\r\n");
  EXPECT_EQ(rcpt("x@good.example", "x@held.example"),
            "450 4.7.1 <x@held.example>: Recipient address rejected: Try later\r\n");
  EXPECT_EQ(rcpt("x@good.example", "bar@nodot"),
            "504 5.5.2 <bar@nodot>: Recipient address rejected: need fully-qualified address\r\n");
  EXPECT_EQ(rcpt("x@good.example", "bar"),
            "504 5.5.2 <bar>: Recipient address rejected: need fully-qualified address\r\n");
  EXPECT_EQ(rcpt("", "bar@mail169.com"), "554 5.7.1 <>: Sender address rejected: Access denied\r\n");
  EXPECT_THAT(std::string(ParseRecipientRestrictions({"check_recipient_access"}).status().message()),
              ::testing::HasSubstr("check_recipient_access needs a table"));
  EXPECT_THAT(std::string(ParseRecipientRestrictions({"check_recipient_access", "texthash:/nonexistent/x"})
                              .status().message()),
              ::testing::HasSubstr("/nonexistent/x"));
}

// reject_unknown_sender_domain: which senders need DNS, and each answer's reply (Postfix 3.7.11's).
TEST_F(RelayPolicyTest, UnknownSenderDomainAsksDnsOnlyForOtherDomainsAndDefersIfPermit) {
  const auto policy_with = [this](const std::vector<std::string>& words) {
    return RelayPolicy(domain_, *NetworkList::Parse({"127.0.0.0/8"}), {}, *ParseSenderRestrictions(words, std::nullopt));
  };
  const RelayPolicy policy = policy_with({"reject_unknown_sender_domain"});
  EXPECT_EQ(policy.SenderDomainToCheck("a@Example.ORG."), "example.org");
  EXPECT_EQ(policy.SenderDomainToCheck("a@mail169.com"), std::nullopt);  // Ours: resolved locally.
  EXPECT_EQ(policy.SenderDomainToCheck("a@[192.0.2.1]"), std::nullopt);
  EXPECT_EQ(policy.SenderDomainToCheck(""), std::nullopt);
  EXPECT_EQ(policy.SenderDomainToCheck("unqualified"), std::nullopt);
  EXPECT_EQ(policy_with({"permit"}).SenderDomainToCheck("a@example.org"), std::nullopt);
  const auto reply = [](const std::optional<protocol::Verdict>& verdict) {
    return verdict ? verdict->reply.Format() : "permitted";
  };
  EXPECT_EQ(reply(policy.CheckSender("a@example.org", false, "", protocol::DomainLookup::kExists)), "permitted");
  EXPECT_EQ(reply(policy.CheckSender("a@example.org", false, "", protocol::DomainLookup::kNotFound)),
            "450 4.1.8 <a@example.org>: Sender address rejected: Domain not found\r\n");
  EXPECT_EQ(reply(policy.CheckSender("a@example.org", false, "", protocol::DomainLookup::kNullMx)),
            "550 5.7.27 <a@example.org>: Sender address rejected: Domain example.org does not accept mail (nullMX)\r\n");
  EXPECT_EQ(reply(policy.CheckSender("a@example.org", false, "", std::nullopt)), "permitted");  // Not asked.
  // A DNS failure defers when the list would permit; a later refusal wins.
  EXPECT_EQ(reply(policy_with({"reject_unknown_sender_domain", "permit"})
                      .CheckSender("a@example.org", false, "", protocol::DomainLookup::kTempFail)),
            "450 4.1.8 <a@example.org>: Sender address rejected: Domain not found\r\n");
  EXPECT_EQ(reply(policy_with({"reject_unknown_sender_domain", "reject"})
                      .CheckSender("a@example.org", false, "", protocol::DomainLookup::kTempFail)),
            "554 5.7.1 <a@example.org>: Sender address rejected: Access denied\r\n");
  // Through a session's Decider: it asks once per domain, and the answer reaches the RCPT check.
  auto decider = policy.ForClient("10.9.9.9");
  decider->CheckSender("a@nowhere.example");
  ASSERT_EQ(decider->DomainToLookUp(), "nowhere.example");
  decider->DomainLookedUp("nowhere.example", protocol::DomainLookup::kNotFound);
  EXPECT_EQ(decider->DomainToLookUp(), std::nullopt);
  EXPECT_EQ(decider->CheckRecipient("bar@mail169.com").reply.Format(),
            "450 4.1.8 <a@nowhere.example>: Sender address rejected: Domain not found\r\n");
}

}  // namespace
}  // namespace postgate::gateway::policy
