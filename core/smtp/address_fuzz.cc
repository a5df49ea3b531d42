// libFuzzer target: MAIL/RCPT path arguments with ESMTP parameters, mailbox syntax, xtext
// (RFC 3461) and UTF-8 checks. Invariants: xtext round-trips; what ParsePathArgument accepts is
// a valid mailbox (or the null path) and splits into the same parts again.
#include <cstdint>
#include <cstdlib>

#include "core/smtp/address.h"
#include "core/smtp/utf8.h"
#include "core/smtp/xtext.h"

using namespace postgate::smtp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  for (absl::string_view prefix : {"FROM:", "TO:"}) {
    ParsedPath parsed = ParsePathArgument(input, prefix);
    if (parsed.error == PathError::kNone && !parsed.path.address.empty()) {
      if (!IsValidMailbox(parsed.path.address)) std::abort();
      MailboxParts parts = SplitMailbox(parsed.path.address);
      if (!parts.domain.empty() && parts.local_part + "@" + parts.domain != parsed.path.address) std::abort();
    }
    for (const EsmtpParameter& parameter : parsed.path.parameters) {
      if (parameter.keyword.empty()) std::abort();
      (void)DecodeXtext(parameter.value);
    }
  }
  (void)IsValidMailbox(input);
  (void)IsValidDomain(input);
  (void)IsValidUtf8(input);
  std::optional<std::string> decoded = DecodeXtext(input);
  if (decoded && *DecodeXtext(EncodeXtext(*decoded)) != *decoded) std::abort();
  if (*DecodeXtext(EncodeXtext(input)) != input) std::abort();
  return 0;
}
