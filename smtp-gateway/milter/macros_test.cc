#include "smtp-gateway/milter/macros.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::gateway::milter {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(MacrosTest, PostfixDefaultsUnlessTheMilterNamedItsOwnAndOnlyKnownValuesAreSent) {
  const MacroLists defaults = MacroLists::PostfixDefaults();
  Negotiated negotiated;
  EXPECT_THAT(MacroNames(MacroStage::kConnect, defaults, negotiated),
              ElementsAre("j", "{daemon_name}", "{daemon_addr}", "v", "_"));
  negotiated.macro_lists = {{MacroStage::kMail, "{mail_addr} {auth_authen}"}};
  EXPECT_THAT(MacroNames(MacroStage::kMail, defaults, negotiated), ElementsAre("{mail_addr}", "{auth_authen}"));
  EXPECT_THAT(MacroNames(MacroStage::kRecipient, defaults, negotiated),
              ElementsAre("i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"));
  const MacroValues values = [](absl::string_view name) -> std::optional<std::string> {
    if (name == "{mail_addr}") return "foo@mail169.com";
    return std::nullopt;  // Not logged in: no {auth_authen}.
  };
  EXPECT_THAT(MacroPairs(MacroNames(MacroStage::kMail, defaults, negotiated), values),
              ElementsAre(Pair("{mail_addr}", "foo@mail169.com")));
}

}  // namespace
}  // namespace postgate::gateway::milter
