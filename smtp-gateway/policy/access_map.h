// check_sender_access and check_recipient_access: an access(5) table looked up for an address
// the way Postfix's smtpd does, and the action it names turned into a decision with Postfix's
// reply. Lookup order: the whole address (and without its recipient_delimiter extension), the
// domain and each parent domain (parent_domain_matches_subdomains includes the access maps, so
// "example.com" also matches "mail.example.com"; ".example.com" matches only subdomains), then
// "user@" (and without the extension). The first key found decides, even DUNNO.
// Actions: OK (and an all-numeric value), PERMIT, DUNNO, REJECT [text], DEFER [text], and
// "4NN/5NN [x.y.z] text"; any other action is refused when the table is loaded, so a table means
// exactly what it says. Pure but for Load.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config/lookup_table.h"
#include "core/smtp/reply.h"

namespace postgate::gateway::policy {

struct AccessDecision {
  enum class Kind { kDunno, kPermit, kRefuse };
  Kind kind = Kind::kDunno;
  smtp::Reply reply;  // kRefuse: the reply, e.g. "554 5.7.1 <a@b>: Sender address rejected: Access denied".
};

class AccessMap {
 public:
  // "texthash:/path" (or hash:); errors name the file and line, and an unsupported action.
  static absl::StatusOr<std::shared_ptr<const AccessMap>> Load(absl::string_view spec, char recipient_delimiter);
  static absl::StatusOr<std::shared_ptr<const AccessMap>> FromTable(config::LookupTable table, std::string name,
                                                                    char recipient_delimiter);

  // The value of the first key that matches `address` (Postfix's order above), or null.
  const std::string* Find(absl::string_view address) const;
  // `address`'s decision; `what` is "Sender address" or "Recipient address" (the reply's words).
  AccessDecision Decide(absl::string_view address, absl::string_view what) const;

 private:
  AccessMap(config::LookupTable table, char delimiter) : table_(std::move(table)), delimiter_(delimiter) {}
  config::LookupTable table_;
  char delimiter_;
};

// An access(5) action for `address`: what Decide does with the value found. nullopt when the
// action is not one Postgate has (Load refuses such tables).
std::optional<AccessDecision> ApplyAccessAction(absl::string_view action, absl::string_view address,
                                                absl::string_view what);

}  // namespace postgate::gateway::policy
