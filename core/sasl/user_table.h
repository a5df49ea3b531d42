// Who may log in to the gateway with SMTP AUTH (server side): a file an operator mounts from a
// Secret, one "name:hash" per line ("#" comments and blank lines skipped), the hash a crypt(3)
// string made by standard tools – `mkpasswd -m yescrypt`, `mkpasswd -m bcrypt`, `mkpasswd -m
// sha-512`, `htpasswd -B` … – and checked with libcrypt, never with hand-written hashing.
// Pure apart from libcrypt; thread-safe once built.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/sasl/secret.h"

namespace postgate::sasl {

class UserTable {
 public:
  // Errors name the file and line, never the line's text. Hashes of methods libcrypt calls
  // legacy (DES, MD5, …) or cannot read are refused: such a table would accept weak or no logins.
  static absl::StatusOr<UserTable> Parse(absl::string_view text, absl::string_view filename);

  // Whether `password` is `user`'s. It costs the same whether or not the user exists – an unknown
  // name's password is checked against a stand-in hash with the table's first entry's method and
  // cost – so the time a refusal takes does not tell a client which names exist.
  bool Verify(absl::string_view user, const Secret& password) const;
  size_t size() const { return hashes_.size(); }

 private:
  absl::flat_hash_map<std::string, std::string> hashes_;  // name → crypt(3) string
  std::string stand_in_;
};

}  // namespace postgate::sasl
