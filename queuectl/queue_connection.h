// How a client of the queue API (queuectl, the web console) reaches queue-service: the replicas
// a --server value names, the channel credentials for its TLS options and the admin token file.
// One implementation, so both tools understand the same addresses and files the same way.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace postgate::queuectl {

// "a:p,b:p" → each; "dns:///name:port" → every address the name resolves to (a Kubernetes
// headless Service: one per ready replica); anything else → itself.
absl::StatusOr<std::vector<std::string>> ReplicaAddresses(const std::string& server);

struct QueueTls {
  std::string ca;           // CA file; empty: plaintext.
  std::string cert;         // Client certificate (mTLS), optional.
  std::string key;          // Its key; empty: in `cert`.
  std::string server_name;  // Name to expect in the server certificate, if not the host.
};

// Credentials for `tls` (setting the name override in `arguments`); an error names the file.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> QueueCredentials(const QueueTls& tls,
                                                                           grpc::ChannelArguments* arguments);

// The first line of a token file, trailing white space removed; an error names the file.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace postgate::queuectl
