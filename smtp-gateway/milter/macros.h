// The macros a milter is told at each stage, as Postfix sends them: the names milter_*_macros list
// (Postfix's defaults below) – or, for a stage the milter named in option negotiation, its own list
// – each with the value the session knows; a macro without a value is not sent (issue 18: not
// wired yet). Pure.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "smtp-gateway/milter/milter_protocol.h"

namespace postgate::gateway::milter {

struct MacroLists {
  std::vector<std::string> connect, helo, mail, recipient, data, end_of_headers, end_of_message;
  // Postfix 3.7's milter_connect_macros … milter_end_of_data_macros defaults.
  static MacroLists PostfixDefaults();
  const std::vector<std::string>& ForStage(MacroStage stage) const;
};

// The names to send at `stage`: the milter's list for it when negotiation gave one, else `configured`'s.
std::vector<std::string> MacroNames(MacroStage stage, const MacroLists& configured, const Negotiated& negotiated);

// name → value, or nullopt when the session has none (e.g. {auth_authen} before a login).
using MacroValues = std::function<std::optional<std::string>(absl::string_view name)>;
std::vector<std::pair<std::string, std::string>> MacroPairs(const std::vector<std::string>& names,
                                                            const MacroValues& values);

}  // namespace postgate::gateway::milter
