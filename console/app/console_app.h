// The web console's requests: who is asking (session cookie or a trusted proxy's header), whether
// they may (read pages open or signed-in; actions signed-in with a CSRF token and same-origin),
// which page or action, and the audit line for every change. Rendering is in web/, the queue in
// backend/; this file only decides and wires.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "console/app/http.h"
#include "console/auth/request_checks.h"
#include "console/auth/sessions.h"
#include "console/backend/queue_view.h"
#include "console/web/pages.h"

namespace postgate::console {

struct ConsoleSettings {
  // The admin token operators sign in with (the one queue-service checks); read at each use so a
  // rotated Secret takes effect. Returns "" when none is configured.
  std::function<std::string()> admin_token;
  bool read_requires_sign_in = true;
  std::string trusted_user_header;  // Lower case; "" when no proxy names operators.
  TrustedPeers trusted_proxies;
  bool secure_cookie = true;  // Cookies carry Secure (browsers accept it on http://localhost too).
  size_t page_size = 50;
  size_t body_limit = 256 * 1024;  // Bytes of a message body the message page shows.
  absl::Duration session_idle = absl::Minutes(30);
  absl::Duration session_lifetime = absl::Hours(12);
};

class ConsoleApp {
 public:
  ConsoleApp(ConsoleSettings settings, QueueView& queue);

  HttpResponse Handle(const HttpRequest& request);

  // GET /events/stream: the live feed as server-sent events, until the client goes or
  // `running` turns false.
  bool IsEventStream(const HttpRequest& request) const;
  void StreamEvents(const HttpRequest& request, ResponseStream& stream, const std::atomic<bool>& running);

 private:
  struct Identity {
    std::string operator_name;
    std::string csrf;
    std::string session_id;  // "" when a trusted proxy vouched for the operator.
  };
  std::optional<Identity> Identify(const HttpRequest& request);
  Viewer ViewerFor(const std::optional<Identity>& identity) const;

  HttpResponse Overview(const HttpRequest& request, const Viewer& viewer);
  HttpResponse Messages(const HttpRequest& request, const Viewer& viewer);
  HttpResponse MessagePage(const std::string& id, const HttpRequest& request, const Viewer& viewer);
  HttpResponse ConfirmAction(const std::string& id, const std::string& action, const Viewer& viewer);
  HttpResponse DoAction(const std::string& id, const std::string& action, const HttpRequest& request,
                        const Identity& identity);
  HttpResponse ConfirmFlush(const HttpRequest& request, const Viewer& viewer);
  HttpResponse DoFlush(const HttpRequest& request, const Identity& identity);
  HttpResponse LoginForm(const HttpRequest& request, const Viewer& viewer);
  HttpResponse Login(const HttpRequest& request);
  HttpResponse Logout(const HttpRequest& request, const std::optional<Identity>& identity);
  // Why a POST from `identity` may not change anything, or "" when it may.
  std::string RefusePost(const HttpRequest& request, const std::optional<Identity>& identity) const;

  HttpResponse HtmlPage(int status, std::string body) const;
  HttpResponse Redirect(const std::string& location) const;
  HttpResponse Error(const Viewer& viewer, int status, const std::string& text) const;
  HttpResponse ErrorFor(const Viewer& viewer, const absl::Status& status) const;

  const ConsoleSettings settings_;
  QueueView& queue_;
  SessionStore sessions_;
  LoginThrottle throttle_;
  const std::string proxy_csrf_key_;
};

// The headers every response carries: a CSP that allows only the console's own script and style
// files (no inline script, no inline style, no framing), and no caching or sniffing.
void AddSecurityHeaders(HttpResponse& response);

}  // namespace postgate::console
