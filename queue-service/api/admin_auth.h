// Who may change the queue. Read RPCs are open to whoever reaches the port (put it behind a
// NetworkPolicy); admin RPCs need "authorization: Bearer <token>" matching the token file
// (postgate_queue_admin_token_file, e.g. a mounted Kubernetes Secret – re-read when it changes).
// Without a token file, admin RPCs are refused: secure by default. Refusals are logged and counted.
// Thread-safe.
#pragma once

#include <sys/stat.h>

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"

namespace postgate::queue {

class AdminAuth {
 public:
  // `client_names`: certificate names (CN or SAN) that may call admin RPCs over verified mTLS.
  AdminAuth(std::string token_file, std::vector<std::string> client_names,
            prometheus::Family<prometheus::Counter>& denied)
      : token_file_(std::move(token_file)), client_names_(std::move(client_names)), denied_(denied) {}

  // OK, or UNAUTHENTICATED naming what is missing. `method` is for the log and the metric.
  grpc::Status Check(const grpc::ServerContextBase& context, const char* method);

 private:
  std::string CurrentToken();

  bool TrustedClientCertificate(const grpc::ServerContextBase& context) const;

  const std::string token_file_;
  const std::vector<std::string> client_names_;
  prometheus::Family<prometheus::Counter>& denied_;
  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  struct timespec loaded_mtime_ ABSL_GUARDED_BY(mu_) {};
  ino_t loaded_inode_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace postgate::queue
