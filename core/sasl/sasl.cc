#include "core/sasl/sasl.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace postgate::sasl {

absl::StatusOr<SecurityOptions> ParseSecurityOptions(const std::vector<std::string>& words) {
  SecurityOptions options;
  for (const std::string& word : words) {
    const std::string lower = absl::AsciiStrToLower(word);
    if (lower == "noplaintext") options.noplaintext = true;
    else if (lower == "noactive") options.noactive = true;
    else if (lower == "nodictionary") options.nodictionary = true;
    else if (lower == "noanonymous") options.noanonymous = true;
    else if (lower == "mutual_auth") options.mutual_auth = true;
    else return absl::InvalidArgumentError(absl::StrCat("unknown SASL security option \"", word, "\""));
  }
  return options;
}

const std::vector<std::string>& SupportedMechanisms() {
  static const std::vector<std::string> kMechanisms = {"PLAIN", "LOGIN"};
  return kMechanisms;
}

bool Permits(const SecurityOptions& options, absl::string_view mechanism) {
  const bool sends_password = mechanism == "PLAIN" || mechanism == "LOGIN";
  if (sends_password) {
    return !options.noplaintext && !options.noactive && !options.nodictionary && !options.mutual_auth;
  }
  return false;  // Nothing else is implemented.
}

absl::StatusOr<std::string> ChooseMechanism(const std::vector<std::string>& offered,
                                            const std::vector<std::string>& filter,
                                            const SecurityOptions& options) {
  auto contains = [](const std::vector<std::string>& names, absl::string_view name) {
    return std::any_of(names.begin(), names.end(),
                       [&](const std::string& candidate) { return absl::EqualsIgnoreCase(candidate, name); });
  };
  for (const std::string& mechanism : SupportedMechanisms()) {
    if (!contains(offered, mechanism)) continue;
    if (!filter.empty() && !contains(filter, mechanism)) continue;
    if (!Permits(options, mechanism)) continue;
    return mechanism;
  }
  return absl::FailedPreconditionError("no mechanism available");
}

std::string EncodePlain(absl::string_view authzid, absl::string_view user, const Secret& password) {
  std::string message = absl::StrCat(authzid, absl::string_view("\0", 1), user, absl::string_view("\0", 1));
  message.append(password.reveal().data(), password.reveal().size());
  std::string encoded = absl::Base64Escape(message);
  Secret wipe(std::move(message));
  return encoded;
}

absl::StatusOr<PlainMessage> DecodePlain(absl::string_view base64) {
  std::string decoded;
  if (!absl::Base64Unescape(base64, &decoded)) {
    Secret wipe(std::move(decoded));
    return absl::InvalidArgumentError("malformed BASE64 input");
  }
  Secret message(std::move(decoded));
  const absl::string_view text = message.reveal();
  const size_t first = text.find('\0');
  const size_t second = first == absl::string_view::npos ? first : text.find('\0', first + 1);
  if (second == absl::string_view::npos || text.find('\0', second + 1) != absl::string_view::npos) {
    return absl::InvalidArgumentError("malformed PLAIN message");
  }
  PlainMessage plain;
  plain.authzid = std::string(text.substr(0, first));
  plain.user = std::string(text.substr(first + 1, second - first - 1));
  plain.password = Secret(std::string(text.substr(second + 1)));
  return plain;
}

ClientExchange::ClientExchange(std::string mechanism, std::string user, Secret password)
    : mechanism_(std::move(mechanism)), user_(std::move(user)), password_(std::move(password)) {}

std::string ClientExchange::Command() {
  if (mechanism_ == "PLAIN") {
    std::string response = EncodePlain("", user_, password_);
    // RFC 4954 §4: the command line, CRLF included, stays within 512 octets; else the response
    // waits for the server's empty challenge.
    if (response.size() + mechanism_.size() + 8 <= 512) {
      initial_sent_ = true;
      return absl::StrCat("AUTH ", mechanism_, " ", response, "\r\n");
    }
  }
  return absl::StrCat("AUTH ", mechanism_, "\r\n");
}

absl::StatusOr<std::string> ClientExchange::Respond(absl::string_view challenge) {
  ++steps_;
  if (mechanism_ == "PLAIN") {
    if (initial_sent_ || steps_ > 1 || !challenge.empty()) {
      return absl::FailedPreconditionError("unexpected PLAIN challenge");
    }
    return EncodePlain("", user_, password_) + "\r\n";
  }
  if (mechanism_ == "LOGIN") {
    if (steps_ == 1) return absl::Base64Escape(user_) + "\r\n";
    if (steps_ == 2) return absl::Base64Escape(password_.reveal()) + "\r\n";
    return absl::FailedPreconditionError("unexpected LOGIN challenge");
  }
  return absl::FailedPreconditionError("unsupported mechanism");
}

}  // namespace postgate::sasl
