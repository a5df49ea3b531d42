#include "queuectl/api_names.h"

#include "gtest/gtest.h"

namespace postgate::queuectl {
namespace {

namespace v1 = ::postgate::queue::v1;

TEST(ApiNamesTest, StatesRoundTripAndEmptyMeansNotDone) {
  for (v1::MessageState state : {v1::MESSAGE_STATE_ACTIVE, v1::MESSAGE_STATE_DEFERRED, v1::MESSAGE_STATE_HOLD,
                                 v1::MESSAGE_STATE_DONE}) {
    EXPECT_EQ(ParseMessageState(MessageStateName(state)), state);
  }
  EXPECT_EQ(MessageStateName(v1::MESSAGE_STATE_HOLD), "hold");
  EXPECT_EQ(ParseMessageState(""), v1::MESSAGE_STATE_UNSPECIFIED);
  EXPECT_EQ(ParseMessageState("held"), std::nullopt);
  EXPECT_EQ(ParseMessageState("unknown"), std::nullopt);
}

TEST(ApiNamesTest, RecipientStatesAndEventKinds) {
  EXPECT_EQ(RecipientStateName(v1::RECIPIENT_STATE_BOUNCED), "bounced");
  EXPECT_EQ(RecipientStateName(v1::RECIPIENT_STATE_UNSPECIFIED), "unknown");
  EXPECT_EQ(EventKindName(v1::EVENT_KIND_HELD), "held");
  EXPECT_EQ(EventKindName(v1::EVENT_KIND_DONE), "done");
}

}  // namespace
}  // namespace postgate::queuectl
