// The users who may log in with SMTP AUTH (postgate_smtpd_sasl_users_file): a file of
// "name:crypt-hash" lines an operator mounts from a Kubernetes Secret, read again when it changes
// (checked at each login: a Secret update swaps the file) without a restart or a reload. A
// changed file that does not parse is logged with its file:line and the previous table stays in
// use. Thread-safe; a check runs on the caller's thread (the gateway's password-check pool: a
// yescrypt or bcrypt hash takes milliseconds, never spent on an I/O thread).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/config/file_version.h"
#include "core/sasl/secret.h"
#include "core/sasl/user_table.h"

namespace postgate::gateway::policy {

class LoginDatabase {
 public:
  // Reads the file; an error (file, line) when it cannot, which stops a start or refuses a reload.
  static absl::StatusOr<std::shared_ptr<LoginDatabase>> Open(std::string path);

  // Whether `password` is `user`'s, in the same time whether or not `user` exists.
  bool Verify(const std::string& user, const sasl::Secret& password);

 private:
  explicit LoginDatabase(std::string path) : path_(std::move(path)) {}
  std::shared_ptr<const sasl::UserTable> Current();

  const std::string path_;
  absl::Mutex mu_;
  std::shared_ptr<const sasl::UserTable> table_ ABSL_GUARDED_BY(mu_);
  std::optional<config::FileVersion> version_ ABSL_GUARDED_BY(mu_);
};

}  // namespace postgate::gateway::policy
