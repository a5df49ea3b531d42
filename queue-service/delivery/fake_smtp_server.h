// For unit tests: a minimal SMTP server on a loopback port for one connection. It answers 354 to
// DATA, 221 to QUIT, 550 to a RCPT TO whose address contains "unknown", 250 to everything else,
// and keeps what it was sent. (End-to-end tests talk to real servers; this one only lets a unit
// test reach the client's code paths without one.)
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace postgate::queue {

class FakeSmtpServer {
 public:
  FakeSmtpServer() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    listen(listener_, 1);
    socklen_t length = sizeof(address);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeSmtpServer() {
    thread_.join();  // Returns once the client closed its connection.
    close(listener_);
  }
  uint16_t port() const { return port_; }
  // Everything the client sent, as it came.
  std::string received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  void Serve() {
    const int client = accept(listener_, nullptr, nullptr);
    Say(client, "220 fake.test ESMTP\r\n");
    std::string buffer;
    bool in_data = false;
    char data[4096];
    for (ssize_t got; (got = read(client, data, sizeof(data))) > 0;) {
      {
        absl::MutexLock lock(&mu_);
        received_.append(data, static_cast<size_t>(got));
      }
      buffer.append(data, static_cast<size_t>(got));
      for (size_t end; (end = buffer.find("\r\n")) != std::string::npos; buffer.erase(0, end + 2)) {
        const std::string line = buffer.substr(0, end);
        if (in_data) {
          if (line == ".") {
            in_data = false;
            Say(client, "250 2.0.0 queued\r\n");
          }
          continue;
        }
        if (line.rfind("DATA", 0) == 0) {
          in_data = true;
          Say(client, "354 go on\r\n");
        } else if (line.rfind("QUIT", 0) == 0) {
          Say(client, "221 bye\r\n");
        } else if (line.rfind("RCPT", 0) == 0 && line.find("unknown") != std::string::npos) {
          Say(client, "550 5.1.1 no such user\r\n");
        } else {
          Say(client, "250 ok\r\n");
        }
      }
    }
    close(client);
  }
  static void Say(int fd, const std::string& text) { (void)!write(fd, text.data(), text.size()); }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  absl::Mutex mu_;
  std::string received_ ABSL_GUARDED_BY(mu_);
};

}  // namespace postgate::queue
