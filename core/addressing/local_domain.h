// Which addresses are ours, and whose mailbox they name – the part of Postfix's trivial-rewrite and
// local_recipient_maps both services need: the gateway to accept or refuse RCPT, the queue to pick
// the mailbox. Domains are compared case-insensitively and without a trailing dot; local parts
// are folded to lower case; "bar+tag" is bar's with recipient_delimiter = +.
// Pure; built once from main.cf and the alias table, then read-only and thread-safe.
#pragma once

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "core/config/aliases.h"
#include "core/config/main_cf.h"

namespace postgate::addressing {

struct ClassifiedAddress {
  bool local = false;        // Domain is in mydestination.
  std::string local_part;    // Lower case, as given otherwise ("bar+tag").
  std::string base;          // local_part without the extension ("bar").
  std::string extension;     // "tag", or "".
  std::string domain;        // Lower case, no trailing dot.
  // The local part holds routing characters (%, !, @, a quoted string): never a local user, and
  // never routed further – the percent hack and bang paths are not honoured.
  bool routing_syntax = false;
};

class LocalDomain {
 public:
  LocalDomain(const config::MainCf& cf, config::AliasTable aliases);

  // Appends "@$myorigin" to an address without a domain, as Postfix's append_at_myorigin.
  std::string Qualify(absl::string_view address) const;
  ClassifiedAddress Classify(absl::string_view address) const;
  // $myorigin or a mydestination domain: where Postfix's table lookups also try the bare local
  // part (mail_addr_find's "user" keys).
  bool IsOriginOrLocal(absl::string_view domain) const;
  // A local address whose local part (or its base) is a local user or an alias.
  bool IsKnownRecipient(const ClassifiedAddress& address) const;
  bool IsUser(absl::string_view name) const { return users_.contains(name); }
  const config::AliasTable& aliases() const { return aliases_; }
  const std::string& myorigin() const { return myorigin_; }

 private:
  absl::flat_hash_set<std::string> domains_;
  absl::flat_hash_set<std::string> users_;
  config::AliasTable aliases_;
  std::string myorigin_;
  std::string delimiter_;
};

}  // namespace postgate::addressing
