#include "console/server/http_server.h"

#include <civetweb.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace postgate::console {
namespace {

constexpr long long kMaxBody = 64 * 1024;

bool SendHead(mg_connection* connection, const HttpResponse& response, long long length) {
  if (mg_response_header_start(connection, response.status) < 0) return false;
  for (const auto& [name, value] : response.headers) mg_response_header_add(connection, name.c_str(), value.c_str(), -1);
  if (length >= 0) mg_response_header_add(connection, "Content-Length", absl::StrCat(length).c_str(), -1);
  return mg_response_header_send(connection) >= 0;
}

class CivetStream final : public ResponseStream {
 public:
  explicit CivetStream(mg_connection* connection) : connection_(connection) {}
  bool Start(const HttpResponse& head) override { return SendHead(connection_, head, -1); }
  bool Write(absl::string_view bytes) override {
    return mg_write(connection_, bytes.data(), bytes.size()) == static_cast<int>(bytes.size());
  }

 private:
  mg_connection* connection_;
};

int LogMessage(const mg_connection*, const char* message) {
  spdlog::warn("console: http: {}", message);
  return 1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen, int threads, ConsoleApp& app) {
  std::unique_ptr<HttpServer> server(new HttpServer(app, threads));
  const std::string thread_count = absl::StrCat(std::max(2, threads));
  const char* options[] = {"listening_ports", listen.c_str(),
                           "num_threads", thread_count.c_str(),
                           "request_timeout_ms", "30000",
                           "enable_keep_alive", "yes",
                           "keep_alive_timeout_ms", "15000",
                           "enable_auth_domain_check", "no",
                           nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = LogMessage;
  mg_init_library(0);
  server->context_ = mg_start(&callbacks, nullptr, options);
  if (server->context_ == nullptr) return absl::UnavailableError(absl::StrCat("--listen ", listen, ": cannot listen there"));
  mg_set_request_handler(server->context_, "/", &HttpServer::HandleRequest, server.get());
  mg_server_port ports[4] = {};
  const int count = mg_get_server_ports(server->context_, 4, ports);
  if (count > 0) server->port_ = ports[0].port;
  return server;
}

HttpServer::~HttpServer() {
  running_ = false;
  if (context_ != nullptr) mg_stop(context_);
  mg_exit_library();
}

int HttpServer::HandleRequest(mg_connection* connection, void* self_pointer) {
  HttpServer& self = *static_cast<HttpServer*>(self_pointer);
  const mg_request_info* info = mg_get_request_info(connection);
  HttpRequest request;
  request.method = info->request_method ? info->request_method : "";
  request.path = info->local_uri ? info->local_uri : "/";
  request.query = info->query_string ? info->query_string : "";
  request.peer = info->remote_addr;
  for (int i = 0; i < info->num_headers; ++i) {
    request.headers.emplace(absl::AsciiStrToLower(info->http_headers[i].name), info->http_headers[i].value);
  }
  if (info->content_length > kMaxBody) {
    HttpResponse too_big{413, {{"Content-Type", "text/plain; charset=utf-8"}, {"Connection", "close"}}, "Request body too large.\n"};
    AddSecurityHeaders(too_big);
    SendHead(connection, too_big, static_cast<long long>(too_big.body.size()));
    mg_write(connection, too_big.body.data(), too_big.body.size());
    return 413;
  }
  char buffer[8192];
  for (int n; (n = mg_read(connection, buffer, sizeof(buffer))) > 0;) {
    request.body.append(buffer, static_cast<size_t>(n));
    if (static_cast<long long>(request.body.size()) > kMaxBody) return 413;  // Chunked and too long: drop it.
  }
  if (self.app_.IsEventStream(request)) {
    if (self.streams_.fetch_add(1) >= self.stream_limit_) {
      --self.streams_;
      HttpResponse busy{503, {{"Content-Type", "text/plain; charset=utf-8"}, {"Retry-After", "10"}}, "Too many live feeds open.\n"};
      AddSecurityHeaders(busy);
      SendHead(connection, busy, static_cast<long long>(busy.body.size()));
      mg_write(connection, busy.body.data(), busy.body.size());
      return 503;
    }
    CivetStream stream(connection);
    self.app_.StreamEvents(request, stream, self.running_);
    --self.streams_;
    return 200;
  }
  const HttpResponse response = self.app_.Handle(request);
  SendHead(connection, response, static_cast<long long>(response.body.size()));
  if (request.method != "HEAD") mg_write(connection, response.body.data(), response.body.size());
  return response.status;
}

}  // namespace postgate::console
