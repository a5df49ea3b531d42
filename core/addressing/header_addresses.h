// The addresses in a message header field, for rewriting them in place (Postfix's cleanup(8)
// canonical and masquerade rewriting of From:, To:…, and smtp(8)'s smtp_generic_maps).
// An RFC 5322 address list is read as Postfix's tok822 reads it: quoted strings and (comments)
// are not addresses, "Name <addr>" gives the part in angle brackets (a source route "@a,@b:" is
// dropped), a bare "addr" (no blanks outside quotes) is one address, and "group: a, b;" gives a
// and b. Only the address text is replaced: display names, comments and folding stay as written
// (Postfix re-writes a rewritten header's spacing; the addresses are the same).
// Pure.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace postgate::addressing {

// Which of Postfix's header classes a header belongs to (header_opts: HDR_OPT_SENDER, _RECIP).
enum class HeaderAddressRole { kNone, kSender, kRecipient };
HeaderAddressRole AddressRoleOf(absl::string_view header_name);

// Calls `rewrite` for each address in `field` ("Name: value", folded lines as stored); returns
// the field with each address `rewrite` changed, or nullopt when none changed. Empty ("<>")
// addresses are not offered.
using AddressRewrite = std::function<std::optional<std::string>(absl::string_view address)>;
std::optional<std::string> RewriteHeaderAddresses(absl::string_view field, const AddressRewrite& rewrite);

// The same for a field whose name AddressRoleOf knows (From:, To:…), telling `rewrite` the role;
// nullopt for any other field.
using RoleAddressRewrite = std::function<std::optional<std::string>(absl::string_view address, HeaderAddressRole role)>;
std::optional<std::string> RewriteAddressHeader(absl::string_view field, const RoleAddressRewrite& rewrite);

}  // namespace postgate::addressing
