// HAProxy's PROXY protocol, versions 1 (text) and 2 (binary), as sent by a load balancer before
// the SMTP conversation so the server learns the real client address
// (https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt). Pure and incremental: call
// ParseProxyHeader on the bytes received so far until it stops asking for more.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace postgate::smtp {

struct ProxyHeader {
  enum class Result { kNeedMore, kInvalid, kDone };
  Result result = Result::kNeedMore;
  size_t consumed = 0;        // Header length when kDone.
  bool has_address = false;   // False for v1 "UNKNOWN" and v2 LOCAL: use the connection's address.
  std::string source_address; // Client IP as text when has_address.
  int source_port = 0;
  std::string error;          // Why, when kInvalid.
};

ProxyHeader ParseProxyHeader(absl::string_view input);

}  // namespace postgate::smtp
