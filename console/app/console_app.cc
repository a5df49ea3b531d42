#include "console/app/console_app.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "console/web/static_assets.h"
#include "console/web/text.h"
#include "queuectl/api_names.h"
#include "spdlog/spdlog.h"

namespace postgate::console {
namespace {

constexpr char kCookie[] = "postgate_console";

// Queue IDs are letters and digits; anything else cannot name a message (and is never echoed).
bool PlausibleQueueId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::optional<Action> ParseAction(absl::string_view name) {
  if (name == "hold") return Action::kHold;
  if (name == "release") return Action::kRelease;
  if (name == "requeue") return Action::kRequeue;
  if (name == "delete") return Action::kDelete;
  if (name == "flush") return Action::kFlush;
  return std::nullopt;
}

// Past-tense notices for the page an action returns to (a fixed set: nothing from the URL is shown).
std::string DoneNotice(absl::string_view action) {
  if (action == "hold") return "The message is on hold.";
  if (action == "release") return "The message is released; delivery is attempted now.";
  if (action == "requeue") return "The message is requeued; its deferred recipients are attempted now.";
  if (action == "flush") return "Delivery of the message is attempted now.";
  return "";
}

// Where the login form may send the operator back to: a path on this site, never another host.
// Browsers drop tabs and line breaks from URLs and read "\\" as "/", so "/\t/evil.example" would
// become "//evil.example": any control character or backslash sends the operator home instead.
std::string SafeNext(const std::string& next) {
  if (next.empty() || next[0] != '/' || absl::StartsWith(next, "//")) return "/";
  for (char c : next) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F || c == '\\') return "/";
  }
  return next;
}

// A request path for a log line: control characters (a decoded %0A) would forge lines.
std::string Loggable(absl::string_view text) {
  std::string out(text.substr(0, 200));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  }
  return out;
}

// A domain for Flush: letters, digits, dots and hyphens ("" for every domain).
bool ValidDomain(absl::string_view domain) {
  if (domain.size() > 253) return false;
  for (char c : domain) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
  }
  return true;
}

std::string EventJson(const v1::QueueEvent& e) {
  const absl::Time time = absl::FromUnixSeconds(e.time().seconds()) + absl::Nanoseconds(e.time().nanos());
  return absl::StrCat("{\"time\":", JsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone())),
                      ",\"kind\":", JsonString(queuectl::EventKindName(e.kind())), ",\"queue_id\":", JsonString(e.queue_id()),
                      ",\"sender\":", JsonString(e.sender()), ",\"recipient\":", JsonString(e.recipient()),
                      ",\"smtp_code\":", e.smtp_code(), ",\"dsn_status\":", JsonString(e.dsn_status()),
                      ",\"reason\":", JsonString(e.reason()), ",\"relay\":", JsonString(e.relay()), ",\"size\":", e.size(),
                      ",\"missed\":", e.missed(), "}");
}

uint64_t Seconds(const std::map<std::string, std::string>& form, const char* name) {
  uint64_t value = 0;
  auto it = form.find(name);
  if (it != form.end() && !absl::SimpleAtoi(it->second, &value)) value = 0;
  return value;
}

std::string Field(const std::map<std::string, std::string>& form, const char* name) {
  auto it = form.find(name);
  return it == form.end() ? "" : it->second;
}

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kFailedPrecondition: return 409;
    default: return 502;  // The queue did not answer, or refused the console.
  }
}

}  // namespace

void AddSecurityHeaders(HttpResponse& response) {
  response.headers.emplace_back("Content-Security-Policy",
                                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("X-Frame-Options", "DENY");
  response.headers.emplace_back("Referrer-Policy", "same-origin");
  response.headers.emplace_back("Cache-Control", "no-store");
}

ConsoleApp::ConsoleApp(ConsoleSettings settings, QueueView& queue)
    : settings_(std::move(settings)), queue_(queue), sessions_(settings_.session_idle, settings_.session_lifetime),
      throttle_(10, absl::Minutes(5)), proxy_csrf_key_(RandomHex(32)) {}

std::optional<ConsoleApp::Identity> ConsoleApp::Identify(const HttpRequest& request) {
  if (!settings_.trusted_user_header.empty() && settings_.trusted_proxies.Contains(request.peer)) {
    const std::string name = request.Header(settings_.trusted_user_header);
    if (ValidOperatorName(name)) return Identity{name, ProxyCsrfToken(proxy_csrf_key_, name), ""};
  }
  const std::map<std::string, std::string> cookies = ParseCookies(request.Header("cookie"));
  auto cookie = cookies.find(kCookie);
  if (cookie == cookies.end()) return std::nullopt;
  std::optional<Session> session = sessions_.Find(cookie->second, absl::Now());
  if (!session) return std::nullopt;
  return Identity{session->operator_name, session->csrf, session->id};
}

Viewer ConsoleApp::ViewerFor(const std::optional<Identity>& identity) const {
  Viewer viewer;
  if (identity) {
    viewer.operator_name = identity->operator_name;
    viewer.csrf = identity->csrf;
  }
  viewer.can_sign_in = !settings_.admin_token().empty();
  return viewer;
}

HttpResponse ConsoleApp::HtmlPage(int status, std::string body) const {
  HttpResponse response{status, {{"Content-Type", "text/html; charset=utf-8"}}, std::move(body)};
  AddSecurityHeaders(response);
  return response;
}

HttpResponse ConsoleApp::Redirect(const std::string& location) const {
  HttpResponse response{303, {{"Location", location}, {"Content-Type", "text/plain; charset=utf-8"}}, "See " + location + "\n"};
  AddSecurityHeaders(response);
  return response;
}

HttpResponse ConsoleApp::Error(const Viewer& viewer, int status, const std::string& text) const {
  return HtmlPage(status, RenderError(viewer, status, text));
}

HttpResponse ConsoleApp::ErrorFor(const Viewer& viewer, const absl::Status& status) const {
  return Error(viewer, HttpStatusFor(status), std::string(status.message()));
}

HttpResponse ConsoleApp::Handle(const HttpRequest& request) {
  if (request.path == "/healthz") {
    HttpResponse ok{200, {{"Content-Type", "text/plain; charset=utf-8"}}, "ok\n"};
    AddSecurityHeaders(ok);
    return ok;
  }
  if (absl::StartsWith(request.path, "/static/")) {
    std::optional<StaticAsset> asset = FindStaticAsset(request.path);
    if (!asset || request.method != "GET") return Error(Viewer{}, 404, "No such file.");
    HttpResponse response{200, {{"Content-Type", std::string(asset->content_type)}}, std::string(asset->bytes)};
    AddSecurityHeaders(response);
    return response;
  }
  const std::optional<Identity> identity = Identify(request);
  const Viewer viewer = ViewerFor(identity);
  if (request.method == "POST") {
    if (request.path == "/login") return Login(request);
    if (const std::string refused = RefusePost(request, identity); !refused.empty()) {
      spdlog::warn("console: refused POST {} from {}: {}", Loggable(request.path), request.peer, refused);
      return Error(viewer, 403, refused);
    }
    if (request.path == "/logout") return Logout(request, identity);
    if (request.path == "/flush") return DoFlush(request, *identity);
    const std::vector<std::string> parts = absl::StrSplit(request.path, '/');  // "", "message", id, action
    if (parts.size() == 4 && parts[1] == "message") return DoAction(parts[2], parts[3], request, *identity);
    return Error(viewer, 404, "No such page.");
  }
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse response = Error(viewer, 405, "Only GET and POST are served.");
    response.headers.emplace_back("Allow", "GET, HEAD, POST");
    return response;
  }
  if (request.path == "/login") return LoginForm(request, viewer);
  if (!identity && settings_.read_requires_sign_in) {
    const std::string here = request.query.empty() ? request.path : absl::StrCat(request.path, "?", request.query);
    return Redirect("/login?next=" + UrlEncode(here));
  }
  if (request.path == "/") return Overview(request, viewer);
  if (request.path == "/messages") return Messages(request, viewer);
  if (request.path == "/events") return HtmlPage(200, RenderEvents(viewer, Field(ParseForm(request.query), "domain")));
  if (request.path == "/flush") {
    if (!identity) return Redirect("/login?next=" + UrlEncode("/flush?" + request.query));
    return ConfirmFlush(request, viewer);
  }
  const std::vector<std::string> parts = absl::StrSplit(request.path, '/');
  if (parts.size() == 3 && parts[1] == "message") return MessagePage(parts[2], request, viewer);
  if (parts.size() == 4 && parts[1] == "message") {
    if (!identity) return Redirect("/login?next=" + UrlEncode(request.path));
    return ConfirmAction(parts[2], parts[3], viewer);
  }
  return Error(viewer, 404, "No such page.");
}

std::string ConsoleApp::RefusePost(const HttpRequest& request, const std::optional<Identity>& identity) const {
  if (!SameOrigin(request.Header("origin"), request.Header("sec-fetch-site"), request.Header("host"))) {
    return "This request came from another site.";
  }
  if (!identity) return "Sign in first.";
  const std::string csrf = Field(ParseForm(request.body), "csrf");
  if (csrf.empty() || !ConstantTimeEquals(csrf, identity->csrf)) return "The form is stale or forged (CSRF token mismatch); reload the page.";
  return "";
}

HttpResponse ConsoleApp::Overview(const HttpRequest& request, const Viewer& viewer) {
  absl::StatusOr<OverviewData> data = queue_.Overview(absl::Now());
  if (!data.ok()) return ErrorFor(viewer, data.status());
  const std::map<std::string, std::string> query = ParseForm(request.query);
  std::string notice;
  uint64_t flushed = 0;
  if (query.count("flushed") && absl::SimpleAtoi(query.at("flushed"), &flushed)) {
    notice = absl::StrCat("Flush: ", flushed, " deferred message(s) scheduled for delivery now.");
  }
  if (query.count("deleted")) notice = "The message is deleted.";
  return HtmlPage(200, RenderOverview(viewer, *data, notice));
}

HttpResponse ConsoleApp::Messages(const HttpRequest& request, const Viewer& viewer) {
  const std::map<std::string, std::string> form = ParseForm(request.query);
  ListQuery query;
  std::optional<v1::MessageState> state = queuectl::ParseMessageState(Field(form, "state"));
  if (!state) return Error(viewer, 400, "Unknown state: use active, deferred, hold or done.");
  query.state = *state;
  query.sender = Field(form, "sender");
  query.recipient = Field(form, "recipient");
  query.min_age_seconds = Seconds(form, "min_age");
  query.max_age_seconds = Seconds(form, "max_age");
  query.newest_first = Field(form, "order") == "newest";
  query.after = Field(form, "after");
  if (!query.after.empty() && !PlausibleQueueId(query.after)) return Error(viewer, 400, "Bad page cursor.");
  if (query.max_age_seconds != 0 && query.max_age_seconds <= query.min_age_seconds) {
    return Error(viewer, 400, "\"Younger than\" must be more than \"older than\".");
  }
  return HtmlPage(200, RenderList(viewer, queue_.List(query, settings_.page_size, absl::Now())));
}

HttpResponse ConsoleApp::MessagePage(const std::string& id, const HttpRequest& request, const Viewer& viewer) {
  if (!PlausibleQueueId(id)) return Error(viewer, 404, "No such message.");
  absl::StatusOr<QueueView::Found> found = queue_.Find(id);
  if (!found.ok()) return ErrorFor(viewer, found.status());
  MessageData data;
  data.message = std::move(found->message);
  data.replica = found->replica;
  data.now = absl::Now();
  if (viewer.operator_name.empty()) {
    data.content_note = "Sign in to see the headers and the text.";
  } else if (data.message.state() == v1::MESSAGE_STATE_DONE) {
    data.content_note = "Every recipient is final: the content is no longer stored.";
  } else {
    absl::StatusOr<QueueView::Content> content = queue_.ReadContent(data.replica, id, settings_.body_limit);
    if (content.ok()) {
      data.content_loaded = true;
      data.headers = std::move(content->headers);
      data.body = std::move(content->body);
      data.body_truncated = content->truncated;
    } else {
      data.content_note = absl::StrCat("The content could not be read: ", content.status().message());
    }
  }
  return HtmlPage(200, RenderMessage(viewer, data, DoneNotice(Field(ParseForm(request.query), "done"))));
}

HttpResponse ConsoleApp::ConfirmAction(const std::string& id, const std::string& action, const Viewer& viewer) {
  if (!PlausibleQueueId(id) || !ParseAction(action)) return Error(viewer, 404, "No such page.");
  absl::StatusOr<QueueView::Found> found = queue_.Find(id);
  if (!found.ok()) return ErrorFor(viewer, found.status());
  Confirmation c;
  c.post_to = absl::StrCat("/message/", id, "/", action);
  c.cancel_to = absl::StrCat("/message/", id);
  const std::string sender = found->message.envelope().sender().empty() ? "<>" : found->message.envelope().sender();
  if (action == "hold") {
    c.title = "Hold message " + id;
    c.explanation = absl::StrCat("Nothing is delivered from it until it is released (from ", sender, ").");
    c.button = "Hold";
  } else if (action == "release") {
    c.title = "Release message " + id;
    c.explanation = "Delivery is attempted now.";
    c.button = "Release";
  } else if (action == "requeue") {
    c.title = "Requeue message " + id;
    c.explanation = "Its deferred recipients stop waiting for their retry time and are attempted now.";
    c.button = "Requeue";
  } else if (action == "flush") {
    c.title = "Flush message " + id;
    c.explanation = "Delivery is attempted now.";
    c.button = "Flush";
  } else {
    c.title = "Delete message " + id;
    c.explanation = absl::StrCat("The message from ", sender, " is removed for good; no one is notified.");
    c.button = "Delete";
    c.dangerous = true;
  }
  return HtmlPage(200, RenderConfirmation(viewer, c));
}

HttpResponse ConsoleApp::DoAction(const std::string& id, const std::string& action, const HttpRequest& request,
                                  const Identity& identity) {
  const Viewer viewer = ViewerFor(identity);
  std::optional<Action> parsed = ParseAction(action);
  if (!PlausibleQueueId(id) || !parsed) return Error(viewer, 404, "No such page.");
  const absl::Status done = queue_.Act(*parsed, id, absl::StrCat("held by ", identity.operator_name, " (web console)"));
  spdlog::info("audit: operator={} client={} action={} queue_id={} result={}", identity.operator_name, request.peer, action, id,
               done.ok() ? "ok" : absl::StrCat("failed (", done.message(), ")"));
  if (!done.ok()) return ErrorFor(viewer, done);
  if (*parsed == Action::kDelete) return Redirect("/?deleted=1");
  return Redirect(absl::StrCat("/message/", id, "?done=", action));
}

HttpResponse ConsoleApp::ConfirmFlush(const HttpRequest& request, const Viewer& viewer) {
  const std::string domain = absl::AsciiStrToLower(absl::StripAsciiWhitespace(Field(ParseForm(request.query), "domain")));
  if (!ValidDomain(domain)) return Error(viewer, 400, "Not a domain name.");
  Confirmation c;
  c.title = domain.empty() ? "Flush all deferred mail" : "Flush deferred mail for " + domain;
  c.explanation = "Deferred messages are attempted now instead of at their retry time (as postqueue -f / -s do).";
  c.post_to = "/flush";
  c.fields["domain"] = domain;
  c.button = "Flush";
  c.cancel_to = "/";
  return HtmlPage(200, RenderConfirmation(viewer, c));
}

HttpResponse ConsoleApp::DoFlush(const HttpRequest& request, const Identity& identity) {
  const std::string domain = absl::AsciiStrToLower(absl::StripAsciiWhitespace(Field(ParseForm(request.body), "domain")));
  if (!ValidDomain(domain)) return Error(ViewerFor(identity), 400, "Not a domain name.");
  absl::StatusOr<uint32_t> scheduled = queue_.FlushDomain(domain);
  spdlog::info("audit: operator={} client={} action=flush domain={} result={}", identity.operator_name, request.peer,
               domain.empty() ? "(all)" : domain,
               scheduled.ok() ? absl::StrCat("ok (", *scheduled, " scheduled)") : absl::StrCat("failed (", scheduled.status().message(), ")"));
  if (!scheduled.ok()) return ErrorFor(ViewerFor(identity), scheduled.status());
  return Redirect(absl::StrCat("/?flushed=", *scheduled));
}

HttpResponse ConsoleApp::LoginForm(const HttpRequest& request, const Viewer& viewer) {
  if (!viewer.can_sign_in) return Error(viewer, 404, "Signing in is not configured (no admin token file).");
  return HtmlPage(200, RenderLogin(viewer, "", "", SafeNext(Field(ParseForm(request.query), "next"))));
}

HttpResponse ConsoleApp::Login(const HttpRequest& request) {
  const Viewer anonymous = ViewerFor(std::nullopt);
  if (!SameOrigin(request.Header("origin"), request.Header("sec-fetch-site"), request.Header("host"))) {
    spdlog::warn("console: refused sign-in from {}: cross-site request", request.peer);
    return Error(anonymous, 403, "This request came from another site.");
  }
  const std::map<std::string, std::string> form = ParseForm(request.body);
  const std::string name = Field(form, "operator");
  const std::string next = SafeNext(Field(form, "next"));
  const std::string token = settings_.admin_token();
  if (token.empty()) return Error(anonymous, 404, "Signing in is not configured (no admin token file).");
  const absl::Time now = absl::Now();
  if (!throttle_.Allowed(request.peer, now)) {
    spdlog::warn("console: sign-in refused for {}: too many failures", request.peer);
    return HtmlPage(429, RenderLogin(anonymous, "Too many failed attempts; wait a few minutes.", "", next));
  }
  if (!ValidOperatorName(name)) {
    return HtmlPage(400, RenderLogin(anonymous, "Give a name of letters, digits and . _ @ + - (at most 64).", "", next));
  }
  if (!ConstantTimeEquals(Field(form, "token"), token)) {
    throttle_.Failed(request.peer, now);
    // Postfix's "authentication failed" shape, so a fail2ban filter can use it.
    spdlog::warn("console: login failed: operator={} client={}", name, request.peer);
    return HtmlPage(401, RenderLogin(anonymous, "Wrong token.", name, next));
  }
  throttle_.Succeeded(request.peer);
  const Session session = sessions_.Create(name, now);
  spdlog::info("audit: operator={} client={} action=sign-in result=ok", name, request.peer);
  HttpResponse response = Redirect(next);
  response.headers.emplace_back("Set-Cookie", absl::StrCat(kCookie, "=", session.id, "; Path=/; HttpOnly; SameSite=Strict",
                                                           settings_.secure_cookie ? "; Secure" : ""));
  return response;
}

HttpResponse ConsoleApp::Logout(const HttpRequest& request, const std::optional<Identity>& identity) {
  if (identity && !identity->session_id.empty()) {
    sessions_.Remove(identity->session_id);
    spdlog::info("audit: operator={} client={} action=sign-out result=ok", identity->operator_name, request.peer);
  }
  HttpResponse response = Redirect("/login");
  response.headers.emplace_back("Set-Cookie", absl::StrCat(kCookie, "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
                                                           settings_.secure_cookie ? "; Secure" : ""));
  return response;
}

bool ConsoleApp::IsEventStream(const HttpRequest& request) const {
  return request.method == "GET" && request.path == "/events/stream";
}

void ConsoleApp::StreamEvents(const HttpRequest& request, ResponseStream& stream, const std::atomic<bool>& running) {
  const std::optional<Identity> identity = Identify(request);
  if (!identity && settings_.read_requires_sign_in) {
    HttpResponse refused{401, {{"Content-Type", "text/plain; charset=utf-8"}}, ""};
    AddSecurityHeaders(refused);
    stream.Start(refused);
    stream.Write("Sign in first.\n");
    return;
  }
  HttpResponse head{200, {{"Content-Type", "text/event-stream; charset=utf-8"}, {"X-Accel-Buffering", "no"}}, ""};
  AddSecurityHeaders(head);
  if (!stream.Start(head) || !stream.Write("retry: 3000\n\n")) return;
  const std::string domain = absl::AsciiStrToLower(Field(ParseForm(request.query), "domain"));
  absl::Time last_write = absl::Now();
  bool client_gone = false;
  const absl::Status ended = queue_.Watch(
      domain,
      [&](const v1::QueueEvent& event) {
        last_write = absl::Now();
        client_gone = !stream.Write(absl::StrCat("event: queue\ndata: ", EventJson(event), "\n\n"));
        return !client_gone;
      },
      [&] {
        // A comment line now and then: proxies keep the stream open, and a gone client shows.
        if (!client_gone && absl::Now() - last_write >= absl::Seconds(15)) {
          last_write = absl::Now();
          client_gone = !stream.Write(": keep-alive\n\n");
        }
        return running.load() && !client_gone;
      },
      absl::Seconds(1),
      [&] {
        // Every replica has the watch in place: from now on no event is missed.
        client_gone = !stream.Write("event: ready\ndata: {}\n\n");
        return !client_gone;
      });
  if (!ended.ok() && !client_gone) spdlog::warn("console: event feed for {} ended: {}", request.peer, std::string(ended.message()));
}

}  // namespace postgate::console
