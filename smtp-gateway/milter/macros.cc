#include "smtp-gateway/milter/macros.h"

#include "absl/strings/str_split.h"

namespace postgate::gateway::milter {

MacroLists MacroLists::PostfixDefaults() {
  MacroLists lists;
  lists.connect = {"j", "{daemon_name}", "{daemon_addr}", "v", "_"};
  lists.helo = {"{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}"};
  lists.mail = {"i", "{auth_type}", "{auth_authen}", "{auth_author}", "{mail_addr}", "{mail_host}", "{mail_mailer}"};
  lists.recipient = {"i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"};
  lists.data = {"i"};
  lists.end_of_headers = {"i"};
  lists.end_of_message = {"i"};
  return lists;
}

const std::vector<std::string>& MacroLists::ForStage(MacroStage stage) const {
  switch (stage) {
    case MacroStage::kConnect: return connect;
    case MacroStage::kHelo: return helo;
    case MacroStage::kMail: return mail;
    case MacroStage::kRecipient: return recipient;
    case MacroStage::kData: return data;
    case MacroStage::kEndOfHeaders: return end_of_headers;
    case MacroStage::kEndOfMessage: return end_of_message;
  }
  return end_of_message;
}

std::vector<std::string> MacroNames(MacroStage stage, const MacroLists& configured, const Negotiated& negotiated) {
  for (const auto& [listed_stage, names] : negotiated.macro_lists) {
    if (listed_stage == stage) return absl::StrSplit(names, absl::ByAnyChar(" ,\t"), absl::SkipEmpty());
  }
  return configured.ForStage(stage);
}

std::vector<std::pair<std::string, std::string>> MacroPairs(const std::vector<std::string>& names,
                                                            const MacroValues& values) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const std::string& name : names) {
    if (std::optional<std::string> value = values(name)) pairs.emplace_back(name, *std::move(value));
  }
  return pairs;
}

}  // namespace postgate::gateway::milter
