// What main.cf says about the milters of one SMTP service: smtpd_milters, each with its
// endpoint and the milter_* settings (Postfix 3.0's per-milter overrides in braces included):
//   smtpd_milters = inet:127.0.0.1:11332, { unix:/run/opendkim.sock, default_action = accept }
// Pure: parsing only; the connection is milter_connection's.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "smtp-gateway/milter/macros.h"

namespace postgate::gateway::milter {

// milter_default_action: what a milter that fails (unreachable, timeout, protocol error) stands
// for, as Postfix's milter8 applies it.
enum class DefaultAction {
  kTempfail,    // "451 4.7.1 Service unavailable - try again later" (Postfix's default)
  kAccept,      // As if the milter were not configured.
  kReject,      // "550 5.5.0 Service unavailable"
  kQuarantine,  // The message is accepted and kept on hold.
  kShutdown,    // "421 4.7.1 Service unavailable - try again later", and the session ends.
};
absl::string_view DefaultActionName(DefaultAction action);

struct MilterEndpoint {
  enum class Kind { kInet, kUnix };
  Kind kind = Kind::kInet;
  std::string host;  // kInet: a name or address ("[::1]" unbracketed); kUnix: "".
  uint16_t port = 0;
  std::string path;  // kUnix: the socket's path.
};
// "inet:host:port", "inet:[ipv6]:port", "unix:/path" (Postfix also takes "local:" for unix).
// The error names the text it refused.
absl::StatusOr<MilterEndpoint> ParseMilterEndpoint(absl::string_view text);

// The milter_* parameters every milter starts from (the braces may override them per milter).
struct MilterDefaults {
  std::chrono::milliseconds connect_timeout{30000};   // milter_connect_timeout
  std::chrono::milliseconds command_timeout{30000};   // milter_command_timeout
  std::chrono::milliseconds content_timeout{300000};  // milter_content_timeout
  DefaultAction default_action = DefaultAction::kTempfail;
  uint32_t protocol = 6;  // milter_protocol (2, 3, 4 or 6)
  MacroLists macros = MacroLists::PostfixDefaults();

  // The timeout a setting names – "connect_timeout", "command_timeout", "content_timeout" (in
  // braces; main.cf prefixes them with "milter_") – or null for another name.
  std::chrono::milliseconds* Timeout(absl::string_view name);
};

// One milter of smtpd_milters: where it is, and its settings after the braces' overrides.
struct MilterConfig : MilterDefaults {
  std::string name;  // As configured ("inet:127.0.0.1:11332"): Postfix logs milters by it.
  MilterEndpoint endpoint;
};

// Parses one of the milter_* settings that may also appear in braces. `name` is the parameter's
// name (for errors); durations take Postfix's units (s, m, h, d; "30" is seconds).
absl::StatusOr<DefaultAction> ParseDefaultAction(absl::string_view name, absl::string_view value);
absl::StatusOr<std::chrono::milliseconds> ParseMilterTime(absl::string_view name, absl::string_view value);
absl::StatusOr<uint32_t> ParseMilterProtocol(absl::string_view value);

// smtpd_milters' value: milters separated by commas or spaces, each an endpoint or
// "{ endpoint, name = value, … }" with connect_timeout, command_timeout, content_timeout,
// default_action or protocol. `parameter` names the parameter in errors.
absl::StatusOr<std::vector<MilterConfig>> ParseMilterList(absl::string_view parameter, absl::string_view value,
                                                          const MilterDefaults& defaults);

}  // namespace postgate::gateway::milter
