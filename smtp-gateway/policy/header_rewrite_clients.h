// local_header_rewrite_clients: which clients' mail cleanup completes (a missing Message-Id:,
// Date:, From:) as mail from this site. Postfix's default is permit_inet_interfaces – a client on
// this machine – so mail from elsewhere arrives as it was sent. Pure: the caller gives this
// machine's addresses (what inet_interfaces names, or every interface's for "all").
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "smtp-gateway/policy/network.h"

namespace postgate::gateway::policy {

class HeaderRewriteClients {
 public:
  // The words of local_header_rewrite_clients: permit_inet_interfaces, permit_mynetworks,
  // permit_sasl_authenticated and static:all (every client). Anything else is an error naming it.
  static absl::StatusOr<HeaderRewriteClients> Parse(const std::vector<std::string>& words,
                                                    NetworkList machine_addresses);

  bool Matches(absl::string_view client_address, bool in_mynetworks, bool logged_in) const;

 private:
  bool inet_interfaces_ = false;
  bool mynetworks_ = false;
  bool sasl_authenticated_ = false;
  bool all_ = false;
  NetworkList machine_addresses_;
};

}  // namespace postgate::gateway::policy
