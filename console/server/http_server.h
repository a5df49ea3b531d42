// The console's HTTP listener: civetweb (Debian's libcivetweb) parses HTTP/1.1, keeps connections
// alive and runs a bounded pool of threads; every request goes to ConsoleApp. Bodies over 64 KiB
// are refused (the console's forms are small). Server-sent event streams hold a thread each, so
// at most a quarter of the threads may stream at once.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "console/app/console_app.h"

struct mg_context;
struct mg_connection;

namespace postgate::console {

class HttpServer {
 public:
  // `listen`: "127.0.0.1:8025", "0.0.0.0:8025", "[::]:8025"; port 0 picks a free one.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen, int threads, ConsoleApp& app);
  ~HttpServer();  // Stops: ends event streams, waits for requests under way.

  int port() const { return port_; }

 private:
  HttpServer(ConsoleApp& app, int threads) : app_(app), stream_limit_(std::max(1, threads / 4)) {}
  static int HandleRequest(::mg_connection* connection, void* self);

  ConsoleApp& app_;
  const int stream_limit_;
  std::atomic<int> streams_{0};
  std::atomic<bool> running_{true};
  mg_context* context_ = nullptr;
  int port_ = 0;
};

}  // namespace postgate::console
