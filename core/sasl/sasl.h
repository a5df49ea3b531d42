// SASL for SMTP AUTH (RFC 4954) with the mechanisms Postgate speaks: PLAIN (RFC 4616) and LOGIN
// (draft-murchison-sasl-login), as Postfix's smtp(8) and smtpd(8) speak them with Cyrus SASL.
// Pure: encodings, which mechanism a security policy allows, and the client's side of an
// exchange step by step. No I/O, no logging – nothing here may put a secret where it is seen.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/sasl/secret.h"

namespace postgate::sasl {

// Postfix's smtp_sasl_security_options / smtpd_sasl_security_options words (Cyrus properties).
struct SecurityOptions {
  bool noplaintext = false;   // No mechanism that sends the password in the clear (PLAIN, LOGIN).
  bool noactive = false;      // No mechanism open to active (non-dictionary) attack.
  bool nodictionary = false;  // No mechanism open to passive dictionary attack.
  bool noanonymous = false;   // No ANONYMOUS.
  bool mutual_auth = false;   // Only mechanisms that authenticate the server too.
};
// "noplaintext, noanonymous" → options; an unknown word is an error naming it.
absl::StatusOr<SecurityOptions> ParseSecurityOptions(const std::vector<std::string>& words);

// Mechanisms Postgate implements, in the order a client prefers them.
const std::vector<std::string>& SupportedMechanisms();
// Whether `options` allow `mechanism` (upper case). PLAIN and LOGIN send the password itself,
// so noplaintext, noactive, nodictionary and mutual_auth each exclude them.
bool Permits(const SecurityOptions& options, absl::string_view mechanism);

// The client's choice among `offered` (the server's AUTH keywords, any case): mechanisms
// Postgate implements, in `filter` when it is not empty (smtp_sasl_mechanism_filter, names), that
// `options` permit – the first by Postgate's preference. Error when none is left, saying why as
// Cyrus does ("no mechanism available").
absl::StatusOr<std::string> ChooseMechanism(const std::vector<std::string>& offered,
                                            const std::vector<std::string>& filter,
                                            const SecurityOptions& options);

// PLAIN's message: authorization identity (usually empty), NUL, user, NUL, password – base64.
std::string EncodePlain(absl::string_view authzid, absl::string_view user, const Secret& password);
struct PlainMessage {
  std::string authzid;
  std::string user;
  Secret password;
};
// The server's side: a client's base64 PLAIN message, or an error that never quotes it.
absl::StatusOr<PlainMessage> DecodePlain(absl::string_view base64);

// The client's side of one exchange. The AUTH command carries PLAIN's initial response when it
// fits in 512 octets (RFC 4954 §4); each 334 challenge then gets Respond's line. LOGIN answers
// its first challenge with the user name and its second with the password, whatever the prompt
// says (servers word them differently).
class ClientExchange {
 public:
  ClientExchange(std::string mechanism, std::string user, Secret password);
  const std::string& mechanism() const { return mechanism_; }
  // "AUTH PLAIN <initial response>\r\n" or "AUTH LOGIN\r\n". Holds the secret: never log it.
  std::string Command();
  // The reply line to a 334 challenge's text (base64, possibly empty); an error when the
  // mechanism has nothing more to say (a server looping, or one that wants too many steps).
  absl::StatusOr<std::string> Respond(absl::string_view challenge);

 private:
  std::string mechanism_;
  std::string user_;
  Secret password_;
  int steps_ = 0;
  bool initial_sent_ = false;
};

}  // namespace postgate::sasl
