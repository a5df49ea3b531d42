// The console's view of HTTP: a parsed request in, a response out. The server glue
// (server/http_server.cc) turns civetweb's connection into these and back; everything between is
// plain code, testable without a socket.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace postgate::console {

struct HttpRequest {
  std::string method;  // "GET", "POST", …
  std::string path;    // Decoded path, e.g. "/message/4F1A09C2B7".
  std::string query;   // Raw query string, without '?'.
  std::string peer;    // Client address.
  std::map<std::string, std::string> headers;  // Names in lower case.
  std::string body;

  std::string Header(const std::string& lower_case_name) const {
    auto it = headers.find(lower_case_name);
    return it == headers.end() ? "" : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Where a streamed response (server-sent events) goes; false once the client is gone.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual bool Start(const HttpResponse& head) = 0;  // Status and headers, no length.
  virtual bool Write(absl::string_view bytes) = 0;
};

}  // namespace postgate::console
