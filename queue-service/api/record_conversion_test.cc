#include "queue-service/api/record_conversion.h"

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace postgate::queue {
namespace {

// Every field of the API's message set to a value of its own. The record types share the field
// numbers (queues written when the record embedded the API's message read unchanged), so the
// same bytes parse as a record; converting that record back must give the message whole – a
// field the conversion forgets shows up here.
constexpr char kEveryField[] = R"pb(
  queue_id: "4A1B2C3D4E" state: MESSAGE_STATE_HOLD size: 1234 hold_reason: "spam review"
  arrival_time { seconds: 1800000000 nanos: 5 } completion_time { seconds: 1800000100 }
  queued_time { seconds: 1800000001 } next_attempt_time { seconds: 1800000300 }
  envelope {
    sender: "foo@mail169.com" recipients: "a@example.org" recipients: "b@example.org"
    body_type: BODY_TYPE_8BITMIME declared_size: 2048 smtputf8: true dsn_return: DSN_RETURN_HEADERS
    envid: "QQ314159" idempotency_key: "k-1" requested_queue_id: "4A1B2C3D4D"
    client { address: "192.0.2.7" hostname: "client.example" helo: "client.test" protocol: "ESMTPS" }
    recipient_options { notify_given: true notify_success: true original_recipient: "rfc822;a@example.org" }
    recipient_options { notify_given: true notify_failure: true notify_delay: true }
  }
  recipients {
    address: "a@example.org" state: RECIPIENT_STATE_DEFERRED smtp_code: 451 dsn_status: "4.3.0"
    reason: "try later" relay: "mx.example.org[192.0.2.1]:25" attempts: 3
    last_attempt_time { seconds: 1800000200 } dsn_queue_id: "4A1B2C3D4F" delay_warning_sent: true
    options { notify_given: true notify_success: true original_recipient: "rfc822;a@example.org" }
    history { time { seconds: 1800000150 } smtp_code: 451 dsn_status: "4.3.0" reason: "busy"
              relay: "mx.example.org[192.0.2.1]:25" duration_seconds: 0.25 }
  }
  recipients { address: "b@example.org" state: RECIPIENT_STATE_BOUNCED smtp_code: 550 }
)pb";

TEST(RecordConversionTest, EveryFieldOfAStoredMessageReachesTheApi) {
  v1::Message api;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(kEveryField, &api));
  rec::Message record;
  ASSERT_TRUE(record.ParseFromString(api.SerializeAsString()));
  EXPECT_EQ(record.envelope().client().helo(), "client.test");  // The layout is shared.
  EXPECT_EQ(ToApi(record).DebugString(), api.DebugString());
}

TEST(RecordConversionTest, EveryFieldOfAnApiEnvelopeReachesTheRecord) {
  v1::Message api;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(kEveryField, &api));
  rec::Envelope expected;
  ASSERT_TRUE(expected.ParseFromString(api.envelope().SerializeAsString()));
  EXPECT_EQ(FromApi(api.envelope()).DebugString(), expected.DebugString());
}

TEST(RecordConversionTest, StatesMapOneToOne) {
  for (int state = v1::MessageState_MIN; state <= v1::MessageState_MAX; ++state) {
    const auto api = static_cast<v1::MessageState>(state);
    EXPECT_EQ(ToApi(FromApi(api)), api);
    EXPECT_EQ(rec::MessageState_Name(FromApi(api)), v1::MessageState_Name(api));
  }
  for (int state = rec::RecipientState_MIN; state <= rec::RecipientState_MAX; ++state) {
    const auto stored = static_cast<rec::RecipientState>(state);
    EXPECT_EQ(v1::RecipientState_Name(ToApi(stored)), rec::RecipientState_Name(stored));
  }
}

}  // namespace
}  // namespace postgate::queue
