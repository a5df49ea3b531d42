// A class of clients named as Postfix's local_header_rewrite_clients names them: whose mail
// cleanup completes (a missing Message-Id:, Date:, From:) as mail from this site – Postfix's
// default, permit_inet_interfaces, is a client on this machine – and whose mail is DKIM-signed
// (postgate_dkim_signing_clients). Pure: the caller gives this machine's addresses (what
// inet_interfaces names, or every interface's for "all").
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "smtp-gateway/policy/network.h"

namespace postgate::gateway::policy {

class ClientMatch {
 public:
  // The words of the parameter: permit_inet_interfaces, permit_mynetworks,
  // permit_sasl_authenticated and static:all (every client). Anything else is an error naming it.
  static absl::StatusOr<ClientMatch> Parse(const std::vector<std::string>& words,
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
