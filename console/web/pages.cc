#include "console/web/pages.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "console/web/sparkline.h"
#include "console/web/text.h"
#include "queuectl/api_names.h"

namespace postgate::console {
namespace {

using queuectl::MessageStateName;
using queuectl::RecipientStateName;

constexpr v1::MessageState kStates[] = {v1::MESSAGE_STATE_ACTIVE, v1::MESSAGE_STATE_DEFERRED,
                                        v1::MESSAGE_STATE_HOLD, v1::MESSAGE_STATE_DONE};

std::string TimeText(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(t.seconds()), absl::UTCTimeZone());
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

std::string Bytes(uint64_t bytes) {
  if (bytes < 10 * 1024) return absl::StrCat(bytes, " B");
  if (bytes < 10 * 1024 * 1024) return absl::StrCat(bytes / 1024, " KiB");
  return absl::StrCat(bytes / (1024 * 1024), " MiB");
}

std::string Sender(const std::string& sender) { return sender.empty() ? "<>" : sender; }

std::string MessageLink(const std::string& id) {
  return absl::StrCat("<a class=\"qid\" href=\"/message/", UrlEncode(id), "\">", Html(id), "</a>");
}

std::string Hidden(const std::string& name, const std::string& value) {
  return absl::StrCat("<input type=\"hidden\" name=\"", Html(name), "\" value=\"", Html(value), "\">");
}

std::string Page(const Viewer& viewer, const std::string& title, const std::string& current, const std::string& body,
                 const std::string& scripts = "") {
  const auto nav = [&](const char* href, const char* name, const char* label) {
    return absl::StrCat("<a href=\"", href, "\"", current == name ? " aria-current=\"page\"" : "", ">", label, "</a>");
  };
  std::string who;
  if (!viewer.operator_name.empty()) {
    who = absl::StrCat("<form class=\"who\" method=\"post\" action=\"/logout\">", Hidden("csrf", viewer.csrf),
                       "<span>", Html(viewer.operator_name), "</span> <button type=\"submit\">Sign out</button></form>");
  } else if (viewer.can_sign_in) {
    who = "<a class=\"who\" href=\"/login\">Sign in</a>";
  }
  return absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>", Html(title), " – Postgate queue</title>"
      "<link rel=\"stylesheet\" href=\"/static/console.css\">", scripts, "</head><body>"
      "<header><span class=\"brand\">Postgate queue</span><nav>",
      nav("/", "overview", "Overview"), nav("/messages", "messages", "Messages"), nav("/events", "events", "Live events"),
      "</nav>", who, "</header><main>", body, "</main></body></html>\n");
}

std::string Notice(const std::string& notice) {
  return notice.empty() ? "" : absl::StrCat("<p class=\"notice\" role=\"status\">", Html(notice), "</p>");
}

std::vector<uint64_t> Series(const v1::Activity& activity, uint64_t (v1::ActivityMinute::*field)() const) {
  std::vector<uint64_t> values;
  for (const v1::ActivityMinute& minute : activity.minutes()) values.push_back((minute.*field)());
  return values;
}

uint64_t Sum(const std::vector<uint64_t>& values) {
  uint64_t total = 0;
  for (uint64_t v : values) total += v;
  return total;
}

std::string ActionLink(const std::string& id, const char* action, const char* label) {
  return absl::StrCat("<a class=\"button\" href=\"/message/", UrlEncode(id), "/", action, "\">", label, "</a>");
}

}  // namespace

std::string FormatAge(absl::Duration age) {
  const int64_t seconds = std::max<int64_t>(0, absl::ToInt64Seconds(age));
  if (seconds < 60) return absl::StrCat(seconds, "s");
  if (seconds < 3600) return absl::StrFormat("%dm %02ds", seconds / 60, seconds % 60);
  if (seconds < 86400) return absl::StrFormat("%dh %02dm", seconds / 3600, seconds % 3600 / 60);
  return absl::StrFormat("%dd %02dh", seconds / 86400, seconds % 86400 / 3600);
}

std::string ListUrl(const ListQuery& query) {
  std::vector<std::string> parts;
  if (query.state != v1::MESSAGE_STATE_UNSPECIFIED) parts.push_back("state=" + MessageStateName(query.state));
  if (!query.sender.empty()) parts.push_back("sender=" + UrlEncode(query.sender));
  if (!query.recipient.empty()) parts.push_back("recipient=" + UrlEncode(query.recipient));
  if (query.min_age_seconds != 0) parts.push_back(absl::StrCat("min_age=", query.min_age_seconds));
  if (query.max_age_seconds != 0) parts.push_back(absl::StrCat("max_age=", query.max_age_seconds));
  if (query.newest_first) parts.push_back("order=newest");
  if (!query.after.empty()) parts.push_back("after=" + UrlEncode(query.after));
  return parts.empty() ? "/messages" : absl::StrCat("/messages?", absl::StrJoin(parts, "&"));
}

std::string RenderOverview(const Viewer& viewer, const OverviewData& data, const std::string& notice) {
  std::string body = absl::StrCat("<h1>Queue overview</h1>", Notice(notice));
  absl::StrAppend(&body, "<table class=\"states\"><thead><tr><th>State</th><th>Messages</th><th>Size</th>"
                         "<th>Oldest</th></tr></thead><tbody>");
  for (v1::MessageState state : kStates) {
    auto found = data.states.find(state);
    const StateOverview none;
    const StateOverview& s = found == data.states.end() ? none : found->second;
    ListQuery query;
    query.state = state;
    absl::StrAppend(&body, "<tr><td><a href=\"", Html(ListUrl(query)), "\">", MessageStateName(state), "</a></td><td class=\"num\" data-state=\"",
                    MessageStateName(state), "\">", s.messages, "</td><td class=\"num\">", Bytes(s.bytes), "</td><td>",
                    s.oldest_arrival ? FormatAge(data.now - *s.oldest_arrival) : "–", "</td></tr>");
  }
  absl::StrAppend(&body, "</tbody></table>");

  absl::StrAppend(&body, "<h2>Last hour</h2><div class=\"sparks\">");
  const struct {
    const char* name;
    const char* label;
    uint64_t (v1::ActivityMinute::*field)() const;
  } series[] = {{"received", "Accepted", &v1::ActivityMinute::received},
                {"delivered", "Delivered", &v1::ActivityMinute::delivered},
                {"deferred", "Deferred", &v1::ActivityMinute::deferred},
                {"bounced", "Bounced", &v1::ActivityMinute::bounced}};
  for (const auto& s : series) {
    const std::vector<uint64_t> values = Series(data.activity, s.field);
    absl::StrAppend(&body, "<figure class=\"", s.name, "\"><figcaption>", s.label, " <b data-series=\"", s.name, "\">",
                    Sum(values), "</b> in 60 min</figcaption>",
                    Sparkline(values, s.name, absl::StrCat(s.label, " per minute over the last hour")), "</figure>");
  }
  absl::StrAppend(&body, "</div><p class=\"hint\">Counts per minute kept by each queue-service replica since it started.</p>");

  absl::StrAppend(&body, "<h2>Replicas</h2><table class=\"replicas\"><thead><tr><th>Replica</th><th>Address</th>"
                         "<th>Messages</th><th>Accepting</th></tr></thead><tbody>");
  for (const ReplicaOverview& replica : data.replicas) {
    if (!replica.error.empty()) {
      absl::StrAppend(&body, "<tr class=\"down\"><td>?</td><td>", Html(replica.address), "</td><td colspan=\"2\">",
                      Html(replica.error), "</td></tr>");
      continue;
    }
    absl::StrAppend(&body, "<tr><td>", replica.status.replica(), "</td><td>", Html(replica.address), "</td><td class=\"num\">",
                    replica.status.total_messages(), "</td><td>", replica.status.accepting() ? "yes" : "no (draining)",
                    "</td></tr>");
  }
  absl::StrAppend(&body, "</tbody></table>");

  if (!viewer.operator_name.empty()) {
    absl::StrAppend(&body, "<h2>Flush deferred mail</h2><form class=\"inline\" method=\"get\" action=\"/flush\">"
                           "<label>Domain <input name=\"domain\" placeholder=\"example.org (empty: all)\"></label> "
                           "<button type=\"submit\">Flush…</button></form>");
  }
  return Page(viewer, "Overview", "overview", body);
}

std::string RenderList(const Viewer& viewer, const ListData& data) {
  const ListQuery& q = data.query;
  std::string body = "<h1>Messages</h1><form class=\"filters\" method=\"get\" action=\"/messages\"><label>State <select name=\"state\">";
  absl::StrAppend(&body, "<option value=\"\">not done</option>");
  for (v1::MessageState state : kStates) {
    absl::StrAppend(&body, "<option", q.state == state ? " selected" : "", ">", MessageStateName(state), "</option>");
  }
  absl::StrAppend(&body, "</select></label> <label>Sender <input name=\"sender\" value=\"", Html(q.sender),
                  "\"></label> <label>Recipient or @domain <input name=\"recipient\" value=\"", Html(q.recipient),
                  "\"></label> <label>Older than (s) <input name=\"min_age\" inputmode=\"numeric\" value=\"",
                  q.min_age_seconds == 0 ? "" : absl::StrCat(q.min_age_seconds),
                  "\"></label> <label>Younger than (s) <input name=\"max_age\" inputmode=\"numeric\" value=\"",
                  q.max_age_seconds == 0 ? "" : absl::StrCat(q.max_age_seconds),
                  "\"></label> <label class=\"check\"><input type=\"checkbox\" name=\"order\" value=\"newest\"",
                  q.newest_first ? " checked" : "", "> newest first</label> <button type=\"submit\">Filter</button></form>");
  for (const std::string& error : data.errors) absl::StrAppend(&body, "<p class=\"error\">", Html(error), "</p>");
  absl::StrAppend(&body, "<table class=\"messages\"><thead><tr><th>Queue ID</th><th>State</th><th>Age</th><th>Size</th>"
                         "<th>Sender</th><th>Recipients</th><th>Reason</th></tr></thead><tbody>");
  for (const v1::Message& m : data.messages) {
    std::vector<std::string> pending;
    std::string reason;
    for (const v1::RecipientStatus& r : m.recipients()) {
      if (r.state() == v1::RECIPIENT_STATE_QUEUED || r.state() == v1::RECIPIENT_STATE_DEFERRED || m.state() == v1::MESSAGE_STATE_DONE) {
        pending.push_back(r.address());
      }
      if (reason.empty() && !r.reason().empty() && r.state() != v1::RECIPIENT_STATE_DELIVERED) reason = r.reason();
    }
    if (!m.hold_reason().empty() && m.state() == v1::MESSAGE_STATE_HOLD) reason = m.hold_reason();
    std::string shown;
    for (size_t i = 0; i < pending.size() && i < 3; ++i) absl::StrAppend(&shown, i == 0 ? "" : "<br>", Html(pending[i]));
    if (pending.size() > 3) absl::StrAppend(&shown, "<br>+", pending.size() - 3, " more");
    absl::StrAppend(&body, "<tr data-queue-id=\"", Html(m.queue_id()), "\"><td>", MessageLink(m.queue_id()), "</td><td class=\"state ",
                    MessageStateName(m.state()), "\">", MessageStateName(m.state()), "</td><td>", FormatAge(data.now - ToTime(m.arrival_time())),
                    "</td><td class=\"num\">", Bytes(m.size()), "</td><td>", Html(Sender(m.envelope().sender())), "</td><td>", shown,
                    "</td><td class=\"reason\">", Html(reason), "</td></tr>");
  }
  if (data.messages.empty()) absl::StrAppend(&body, "<tr><td colspan=\"7\" class=\"empty\">No messages match.</td></tr>");
  absl::StrAppend(&body, "</tbody></table><nav class=\"pages\">");
  if (!q.after.empty()) {
    ListQuery first = q;
    first.after.clear();
    absl::StrAppend(&body, "<a href=\"", Html(ListUrl(first)), "\">First page</a> ");
  }
  if (!data.next_after.empty()) {
    ListQuery next = q;
    next.after = data.next_after;
    absl::StrAppend(&body, "<a rel=\"next\" href=\"", Html(ListUrl(next)), "\">Next page</a>");
  }
  absl::StrAppend(&body, "</nav>");
  return Page(viewer, "Messages", "messages", body);
}

std::string RenderMessage(const Viewer& viewer, const MessageData& data, const std::string& notice) {
  const v1::Message& m = data.message;
  const v1::Envelope& e = m.envelope();
  std::string body = absl::StrCat("<h1>Message <span class=\"qid\">", Html(m.queue_id()), "</span> <span class=\"state ",
                                  MessageStateName(m.state()), "\">", MessageStateName(m.state()), "</span></h1>", Notice(notice));
  if (!viewer.operator_name.empty()) {
    absl::StrAppend(&body, "<p class=\"actions\">");
    if (m.state() == v1::MESSAGE_STATE_HOLD) {
      absl::StrAppend(&body, ActionLink(m.queue_id(), "release", "Release…"), " ");
    } else if (m.state() != v1::MESSAGE_STATE_DONE) {
      absl::StrAppend(&body, ActionLink(m.queue_id(), "hold", "Hold…"), " ");
    }
    if (m.state() == v1::MESSAGE_STATE_DEFERRED || m.state() == v1::MESSAGE_STATE_ACTIVE) {
      absl::StrAppend(&body, ActionLink(m.queue_id(), "requeue", "Requeue…"), " ", ActionLink(m.queue_id(), "flush", "Flush…"), " ");
    }
    absl::StrAppend(&body, ActionLink(m.queue_id(), "delete", "Delete…"), "</p>");
  }
  absl::StrAppend(&body, "<h2>Envelope</h2><table class=\"fields\"><tbody>");
  const auto row = [&](const char* name, const std::string& value) {
    if (!value.empty()) absl::StrAppend(&body, "<tr><th>", name, "</th><td>", Html(value), "</td></tr>");
  };
  row("Sender", Sender(e.sender()));
  row("Size", Bytes(m.size()));
  row("Arrived", absl::StrCat(TimeText(m.arrival_time()), " (", FormatAge(data.now - ToTime(m.arrival_time())), " ago)"));
  row("Queued", TimeText(m.queued_time()));
  row("Next attempt", TimeText(m.next_attempt_time()));
  row("Completed", TimeText(m.completion_time()));
  row("Held because", m.hold_reason());
  row("Client", e.client().address().empty() ? "" : absl::StrCat(e.client().hostname(), "[", e.client().address(), "] HELO ",
                                                                  e.client().helo(), " via ", e.client().protocol()));
  row("Return (RET)", e.dsn_return() == v1::DSN_RETURN_FULL ? "FULL" : e.dsn_return() == v1::DSN_RETURN_HEADERS ? "HDRS" : "");
  row("ENVID", e.envid());
  row("Body type", e.body_type() == v1::BODY_TYPE_8BITMIME ? "8BITMIME" : e.body_type() == v1::BODY_TYPE_7BIT ? "7BIT" : "");
  row("SMTPUTF8", e.smtputf8() ? "yes" : "");
  row("Replica", data.replica);
  absl::StrAppend(&body, "</tbody></table>");

  absl::StrAppend(&body, "<h2>Recipients</h2><table class=\"recipients\"><thead><tr><th>Recipient</th><th>State</th><th>Reply</th>"
                         "<th>Relay</th><th>Attempts</th><th>NOTIFY / ORCPT</th></tr></thead><tbody>");
  for (const v1::RecipientStatus& r : m.recipients()) {
    std::string notify;
    if (r.options().notify_given()) {
      std::vector<std::string> kinds;
      if (r.options().notify_success()) kinds.push_back("SUCCESS");
      if (r.options().notify_failure()) kinds.push_back("FAILURE");
      if (r.options().notify_delay()) kinds.push_back("DELAY");
      notify = kinds.empty() ? "NEVER" : absl::StrJoin(kinds, ",");
    }
    if (!r.options().original_recipient().empty()) absl::StrAppend(&notify, notify.empty() ? "" : " ", r.options().original_recipient());
    const std::string reply = r.smtp_code() == 0 ? r.reason() : absl::StrCat(r.smtp_code(), " ", r.dsn_status(), " ", r.reason());
    absl::StrAppend(&body, "<tr><td>", Html(r.address()), "</td><td class=\"state ", RecipientStateName(r.state()), "\">",
                    RecipientStateName(r.state()), "</td><td class=\"reason\">", Html(reply), "</td><td>", Html(r.relay()),
                    "</td><td class=\"num\">", r.attempts(), "</td><td>", Html(notify), "</td></tr>");
    if (r.history_size() > 0) {
      absl::StrAppend(&body, "<tr class=\"history\"><td colspan=\"6\"><details><summary>Attempts</summary><table><tbody>");
      for (const v1::DeliveryAttempt& a : r.history()) {
        absl::StrAppend(&body, "<tr><td>", TimeText(a.time()), "</td><td>", a.smtp_code(), " ", Html(a.dsn_status()),
                        "</td><td class=\"reason\">", Html(a.reason()), "</td><td>", Html(a.relay()), "</td><td class=\"num\">",
                        absl::StrFormat("%.2f s", a.duration_seconds()), "</td></tr>");
      }
      absl::StrAppend(&body, "</tbody></table></details></td></tr>");
    }
  }
  absl::StrAppend(&body, "</tbody></table>");

  absl::StrAppend(&body, "<h2>Content</h2>");
  if (!data.content_loaded) {
    absl::StrAppend(&body, "<p class=\"hint\">", Html(data.content_note), "</p>");
  } else {
    absl::StrAppend(&body, "<h3>Headers</h3><pre class=\"headers\">", Html(data.headers), "</pre><h3>Body (as text)</h3><pre class=\"body\">",
                    Html(data.body), "</pre>");
    if (data.body_truncated) absl::StrAppend(&body, "<p class=\"hint\">The body is longer; only its beginning is shown.</p>");
  }
  return Page(viewer, absl::StrCat("Message ", m.queue_id()), "messages", body);
}

std::string RenderEvents(const Viewer& viewer, const std::string& domain) {
  std::string stream = "/events/stream";
  if (!domain.empty()) stream += "?domain=" + UrlEncode(domain);
  const std::string body = absl::StrCat(
      "<h1>Live events</h1><form class=\"filters\" method=\"get\" action=\"/events\"><label>Recipient domain <input name=\"domain\" value=\"",
      Html(domain), "\" placeholder=\"example.org\"></label> <button type=\"submit\">Follow</button></form>"
      "<p id=\"feed-status\" class=\"hint\" role=\"status\">Connecting…</p>"
      "<noscript><p class=\"error\">The live feed needs JavaScript.</p></noscript>"
      "<table class=\"events\" id=\"events\" data-stream=\"", Html(stream), "\"><thead><tr><th>Time</th><th>Event</th><th>Queue ID</th>"
      "<th>Sender</th><th>Recipient</th><th>Reply</th><th>Relay</th></tr></thead><tbody></tbody></table>");
  return Page(viewer, "Live events", "events", body, "<script src=\"/static/console.js\" defer></script>");
}

std::string RenderLogin(const Viewer& viewer, const std::string& error, const std::string& operator_name,
                        const std::string& next) {
  std::string body = "<h1>Sign in</h1>";
  if (!error.empty()) absl::StrAppend(&body, "<p class=\"error\" role=\"alert\">", Html(error), "</p>");
  absl::StrAppend(&body, "<form class=\"login\" method=\"post\" action=\"/login\">", Hidden("next", next),
                  "<label>Your name (for the audit log) <input name=\"operator\" autocomplete=\"username\" required value=\"",
                  Html(operator_name), "\"></label><label>Admin token <input name=\"token\" type=\"password\" "
                  "autocomplete=\"current-password\" required></label><button type=\"submit\">Sign in</button></form>");
  return Page(viewer, "Sign in", "", body);
}

std::string RenderConfirmation(const Viewer& viewer, const Confirmation& c) {
  std::string body = absl::StrCat("<h1>", Html(c.title), "?</h1><p>", Html(c.explanation), "</p><form method=\"post\" action=\"",
                                  Html(c.post_to), "\">", Hidden("csrf", viewer.csrf));
  for (const auto& [name, value] : c.fields) absl::StrAppend(&body, Hidden(name, value));
  absl::StrAppend(&body, "<button type=\"submit\"", c.dangerous ? " class=\"danger\"" : "", ">", Html(c.button), "</button> <a href=\"",
                  Html(c.cancel_to), "\">Cancel</a></form>");
  return Page(viewer, c.title, "", body);
}

std::string RenderError(const Viewer& viewer, int status, const std::string& text) {
  return Page(viewer, absl::StrCat("Error ", status), "",
              absl::StrCat("<h1>", status, "</h1><p class=\"error\">", Html(text), "</p><p><a href=\"/\">Overview</a></p>"));
}

}  // namespace postgate::console
