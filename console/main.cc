// queue-console: the web console for queue-service. Flags → settings → objects → HTTP → wait for
// SIGTERM/SIGINT. Reads and acts through the queue's gRPC API, on every replica --server names.
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "console/app/console_app.h"
#include "console/backend/queue_view.h"
#include "console/server/http_server.h"
#include "core/base/logging.h"
#include "queuectl/queue_connection.h"
#include "spdlog/spdlog.h"

using namespace postgate;

int main(int argc, char** argv) {
  CLI::App app{"queue-console: a web console for Postgate's queue (see README.md, \"Web console\")"};
  std::string listen = "127.0.0.1:8025";
  std::string server = "127.0.0.1:50051";
  std::string token_file;
  std::string read_access = "sign-in";
  std::string user_header;
  std::vector<std::string> trusted_proxies;
  bool insecure_cookie = false;
  int threads = 16;
  size_t page_size = 50;
  std::string log_format = "text";
  queuectl::QueueTls tls;
  app.add_option("--listen", listen, "address:port to serve HTTP on (port 0: any free one)")->capture_default_str();
  app.add_option("--server", server, "queue-service gRPC address; several: a:p,b:p or dns:///name:port")->capture_default_str();
  app.add_option("--token-file", token_file,
                 "the queue's admin token (postgate_queue_admin_token_file): operators sign in with it and the "
                 "console uses it for actions; re-read when it changes");
  app.add_option("--read-access", read_access, "who may see the pages: sign-in (default) or open; actions always need signing in")
      ->check(CLI::IsMember({"sign-in", "open"}))->capture_default_str();
  app.add_option("--trusted-user-header", user_header,
                 "header a trusted reverse proxy names the signed-in operator in (e.g. X-Forwarded-User)");
  app.add_option("--trusted-proxy", trusted_proxies, "address or network of such a proxy (repeatable)")->delimiter(',');
  app.add_flag("--insecure-cookie", insecure_cookie,
               "session cookie without Secure (plain HTTP on a name other than localhost; never on a network)");
  app.add_option("--page-size", page_size, "messages per list page (1–1000)")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--threads", threads, "HTTP worker threads (a quarter may hold live feeds)")->capture_default_str();
  app.add_option("--log-format", log_format, "text (Postfix-shaped lines) or json")->check(CLI::IsMember({"text", "json"}));
  app.add_option("--tls-ca", tls.ca, "TLS to the queue: CA file (turns TLS on)");
  app.add_option("--tls-cert", tls.cert, "TLS to the queue: client certificate (mTLS)");
  app.add_option("--tls-key", tls.key, "TLS to the queue: client key (default: in --tls-cert)");
  app.add_option("--tls-server-name", tls.server_name, "TLS to the queue: name expected in its certificate");
  CLI11_PARSE(app, argc, argv);

  char hostname[256] = "localhost";
  gethostname(hostname, sizeof(hostname) - 1);
  if (absl::Status logging = base::InitLogging(hostname, "postgate/console", log_format); !logging.ok()) {
    std::cerr << "queue-console: " << logging.message() << "\n";
    return 1;
  }
  const auto fatal = [](const std::string& text) {
    spdlog::critical("{}", text);
    return 1;
  };
  console::ConsoleSettings settings;
  if (!token_file.empty()) {
    absl::StatusOr<std::string> first = queuectl::ReadTokenFile(token_file);
    if (!first.ok()) return fatal(std::string(first.status().message()));
    if (first->empty()) return fatal(absl::StrCat("--token-file ", token_file, ": empty"));
    settings.admin_token = [token_file]() {
      absl::StatusOr<std::string> token = queuectl::ReadTokenFile(token_file);
      return token.ok() ? *token : std::string();
    };
  } else {
    settings.admin_token = [] { return std::string(); };
  }
  settings.read_requires_sign_in = read_access == "sign-in";
  settings.trusted_user_header = absl::AsciiStrToLower(user_header);
  absl::StatusOr<console::TrustedPeers> proxies = console::TrustedPeers::Parse(trusted_proxies);
  if (!proxies.ok()) return fatal(absl::StrCat("--trusted-proxy: ", proxies.status().message()));
  settings.trusted_proxies = *proxies;
  if (!user_header.empty() && proxies->empty()) return fatal("--trusted-user-header needs --trusted-proxy");
  settings.secure_cookie = !insecure_cookie;
  settings.page_size = page_size;
  if (settings.read_requires_sign_in && token_file.empty() && user_header.empty()) {
    return fatal("--read-access sign-in needs --token-file or --trusted-user-header: no one could sign in");
  }

  console::QueueView::Options queue_options;
  queue_options.server = server;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      queuectl::QueueCredentials(tls, &queue_options.arguments);
  if (!credentials.ok()) return fatal(std::string(credentials.status().message()));
  queue_options.credentials = *credentials;
  queue_options.admin_token = settings.admin_token;
  console::QueueView queue(std::move(queue_options));
  console::ConsoleApp console_app(std::move(settings), queue);

  // Signals are taken with sigwait; block them before any thread exists so all threads inherit it.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<console::HttpServer>> http = console::HttpServer::Start(listen, threads, console_app);
  if (!http.ok()) return fatal(std::string(http.status().message()));
  const std::string host = listen.substr(0, listen.rfind(':'));
  spdlog::info("listening on http://{}:{}/ (queue {}, pages {})", host, (*http)->port(), server,
               read_access == "open" ? "open to read" : "for signed-in operators");
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("stopping on signal {}", signal_number);
  http->reset();
  return 0;
}
