#include "console/web/pages.h"

#include "absl/strings/match.h"
#include "console/web/sparkline.h"
#include "gtest/gtest.h"

namespace postgate::console {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1796212800);

v1::Message HostileMessage() {
  v1::Message m;
  m.set_queue_id("4ABCDEF0123");
  m.set_state(v1::MESSAGE_STATE_DEFERRED);
  m.mutable_envelope()->set_sender("\"<script>alert(1)</script>\"@evil.example");
  m.mutable_arrival_time()->set_seconds(1796212800 - 125);
  v1::RecipientStatus* r = m.add_recipients();
  r->set_address("<img src=x onerror=alert(2)>@example.org");
  r->set_state(v1::RECIPIENT_STATE_DEFERRED);
  r->set_smtp_code(451);
  r->set_dsn_status("4.3.0");
  r->set_reason("<b>try later</b>");
  v1::DeliveryAttempt* a = r->add_history();
  a->set_reason("<iframe src=//evil>");
  return m;
}

// Nothing a stranger wrote may appear as markup.
void ExpectNoHostileMarkup(const std::string& html) {
  for (const char* tag : {"<script>alert", "<img src=x", "<b>try", "<iframe"}) EXPECT_FALSE(absl::StrContains(html, tag)) << tag;
  EXPECT_FALSE(absl::StrContains(html, "<script>")) << "no inline script at all";
  EXPECT_FALSE(absl::StrContains(html, "style=")) << "no inline style (CSP)";
}

TEST(PagesTest, ListEscapesAddressesAndReasonsAndLinksTheMessage) {
  ListData data;
  data.now = kNow;
  data.messages.push_back(HostileMessage());
  data.next_after = "4ABCDEF0123";
  data.query.state = v1::MESSAGE_STATE_DEFERRED;
  data.query.recipient = "@example.org";
  const std::string html = RenderList(Viewer{}, data);
  ExpectNoHostileMarkup(html);
  EXPECT_TRUE(absl::StrContains(html, "&lt;img src=x onerror=alert(2)&gt;@example.org"));
  EXPECT_TRUE(absl::StrContains(html, "href=\"/message/4ABCDEF0123\""));
  EXPECT_TRUE(absl::StrContains(html, "2m 05s"));
  // The next page keeps the filters and carries the cursor.
  EXPECT_TRUE(absl::StrContains(html, "href=\"/messages?state=deferred&amp;recipient=%40example.org&amp;after=4ABCDEF0123\""));
}

TEST(PagesTest, MessagePageShowsContentAsTextAndActionsOnlyToOperators) {
  MessageData data;
  data.now = kNow;
  data.message = HostileMessage();
  data.content_loaded = true;
  data.headers = "Subject: <script>alert(3)</script>";
  data.body = "<html><body onload=alert(4)>hi</body></html>";
  const std::string anonymous = RenderMessage(Viewer{}, data, "");
  ExpectNoHostileMarkup(anonymous);
  EXPECT_TRUE(absl::StrContains(anonymous, "&lt;html&gt;&lt;body onload=alert(4)&gt;"));
  EXPECT_FALSE(absl::StrContains(anonymous, "/hold\""));
  Viewer op{"alice", "csrf-token", true};
  const std::string signed_in = RenderMessage(op, data, "");
  EXPECT_TRUE(absl::StrContains(signed_in, "href=\"/message/4ABCDEF0123/hold\""));
  EXPECT_TRUE(absl::StrContains(signed_in, "href=\"/message/4ABCDEF0123/delete\""));
  EXPECT_FALSE(absl::StrContains(signed_in, "/release\""));  // Not held.
  EXPECT_TRUE(absl::StrContains(signed_in, "451 4.3.0 &lt;b&gt;try later&lt;/b&gt;"));
}

TEST(PagesTest, ConfirmationPostsWithTheCsrfToken) {
  Confirmation c;
  c.title = "Delete message X";
  c.post_to = "/message/X/delete";
  c.button = "Delete";
  c.cancel_to = "/message/X";
  c.dangerous = true;
  const std::string html = RenderConfirmation(Viewer{"bob", "tok\"en", true}, c);
  EXPECT_TRUE(absl::StrContains(html, "<form method=\"post\" action=\"/message/X/delete\">"));
  EXPECT_TRUE(absl::StrContains(html, "name=\"csrf\" value=\"tok&quot;en\""));
  EXPECT_TRUE(absl::StrContains(html, "class=\"danger\""));
}

TEST(PagesTest, OverviewCountsStatesAndDrawsTheHour) {
  OverviewData data;
  data.now = kNow;
  data.states[v1::MESSAGE_STATE_DEFERRED] = {7, 7000, kNow - absl::Hours(3)};
  for (int i = 0; i < 60; ++i) data.activity.add_minutes()->set_received(i == 59 ? 12 : 1);
  ReplicaOverview replica{"127.0.0.1:50051", "", {}};
  replica.status.set_replica(3);
  data.replicas.push_back(replica);
  data.replicas.push_back({"127.0.0.1:50052", "connection refused <x>", {}});
  const std::string html = RenderOverview(Viewer{}, data, "");
  EXPECT_TRUE(absl::StrContains(html, "data-state=\"deferred\">7<"));
  EXPECT_TRUE(absl::StrContains(html, "3h 00m"));
  EXPECT_TRUE(absl::StrContains(html, "data-series=\"received\">71<"));
  EXPECT_TRUE(absl::StrContains(html, "connection refused &lt;x&gt;"));
  EXPECT_TRUE(absl::StrContains(html, "<svg class=\"spark received\""));
}

TEST(PagesTest, EventsPageLoadsTheScriptFileAndNoInlineScript) {
  const std::string html = RenderEvents(Viewer{}, "\"><script>x</script>");
  EXPECT_TRUE(absl::StrContains(html, "<script src=\"/static/console.js\" defer></script>"));
  EXPECT_FALSE(absl::StrContains(html, "<script>"));
  EXPECT_TRUE(absl::StrContains(html, "data-stream=\"/events/stream?domain=%22%3E%3Cscript%3Ex%3C%2Fscript%3E\""));
}

TEST(PagesTest, SparklineScalesToThePeak) {
  EXPECT_EQ(Sparkline({0, 5, 10}, "received", "r"),
            "<svg class=\"spark received\" viewBox=\"0 0 240 40\" width=\"240\" height=\"40\" role=\"img\" aria-label=\"r\">"
            "<polyline fill=\"none\" points=\"0.0,38.0 120.0,20.0 240.0,2.0\"/></svg>");
  EXPECT_TRUE(absl::StrContains(Sparkline({0, 0}, "x", "y"), "points=\"0.0,38.0 240.0,38.0\""));
}

TEST(PagesTest, Ages) {
  EXPECT_EQ(FormatAge(absl::Seconds(42)), "42s");
  EXPECT_EQ(FormatAge(absl::Seconds(185)), "3m 05s");
  EXPECT_EQ(FormatAge(absl::Hours(50)), "2d 02h");
}

}  // namespace
}  // namespace postgate::console
