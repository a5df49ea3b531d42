#include "core/sasl/user_table.h"

#include <crypt.h>

#include <memory>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace postgate::sasl {
namespace {

// crypt(3) of `password` with `setting` (a whole hash works as its own setting), or "" when
// libcrypt refuses it. The work area is the caller's own: thread-safe.
std::string Crypt(absl::string_view password, const std::string& setting) {
  auto data = std::make_unique<crypt_data>();
  Secret phrase{std::string(password)};  // NUL-terminated for libcrypt, wiped afterwards.
  const char* hashed = crypt_rn(phrase.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  std::string result = hashed != nullptr && hashed[0] != '*' ? std::string(hashed) : std::string();
  explicit_bzero(data.get(), sizeof(crypt_data));
  return result;
}

bool SameInConstantTime(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

}  // namespace

absl::StatusOr<UserTable> UserTable::Parse(absl::string_view text, absl::string_view filename) {
  UserTable table;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const absl::string_view stripped = absl::StripAsciiWhitespace(line);
    if (stripped.empty() || stripped.front() == '#') continue;
    const std::string where = absl::StrCat(filename, ":", number);
    const size_t colon = stripped.find(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": expected \"name:hash\""));
    }
    const std::string name(stripped.substr(0, colon));
    // Some tools write more fields after the hash (passwd style): only the hash is used.
    const std::string hash(stripped.substr(colon + 1, stripped.find(':', colon + 1) - colon - 1));
    if (crypt_checksalt(hash.c_str()) != CRYPT_SALT_OK) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": user ", name, ": not a password hash libcrypt accepts (use yescrypt, bcrypt or SHA-512-crypt, "
          "e.g. mkpasswd -m yescrypt)"));
    }
    if (!table.hashes_.try_emplace(name, hash).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": user ", name, " is listed twice"));
    }
    if (table.stand_in_.empty()) {
      std::random_device random;
      table.stand_in_ = Crypt(absl::StrCat("stand-in-", random(), random()), hash);
    }
  }
  return table;
}

bool UserTable::Verify(absl::string_view user, const Secret& password) const {
  auto it = hashes_.find(user);
  const std::string& expected = it != hashes_.end() ? it->second : stand_in_;
  if (expected.empty()) return false;  // An empty table.
  const std::string computed = Crypt(password.reveal(), expected);
  return it != hashes_.end() && !computed.empty() && SameInConstantTime(computed, expected);
}

}  // namespace postgate::sasl
