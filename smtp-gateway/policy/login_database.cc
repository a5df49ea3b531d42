#include "smtp-gateway/policy/login_database.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/base/absl_fmt.h"
#include "spdlog/spdlog.h"

namespace postgate::gateway::policy {
namespace {

absl::StatusOr<sasl::UserTable> Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  return sasl::UserTable::Parse(text.str(), path);
}

}  // namespace

absl::StatusOr<std::shared_ptr<LoginDatabase>> LoginDatabase::Open(std::string path) {
  std::shared_ptr<LoginDatabase> database(new LoginDatabase(std::move(path)));
  const std::optional<config::FileVersion> version = config::StatFile(database->path_);
  absl::StatusOr<sasl::UserTable> table = Load(database->path_);
  if (!table.ok()) return table.status();
  absl::MutexLock lock(&database->mu_);
  database->version_ = version;
  database->table_ = std::make_shared<const sasl::UserTable>(*std::move(table));
  return database;
}

std::shared_ptr<const sasl::UserTable> LoginDatabase::Current() {
  absl::MutexLock lock(&mu_);
  const std::optional<config::FileVersion> now = config::StatFile(path_);
  if (now && now != version_) {  // Changed (a missing file, mid-swap, keeps the last table).
    version_ = now;
    absl::StatusOr<sasl::UserTable> table = Load(path_);
    if (table.ok()) {
      table_ = std::make_shared<const sasl::UserTable>(*std::move(table));
      spdlog::info("postgate_smtpd_sasl_users_file: {} re-read ({} users)", path_, table_->size());
    } else {
      spdlog::error("postgate_smtpd_sasl_users_file: {}; the table read before stays in use", table.status().message());
    }
  }
  return table_;
}

bool LoginDatabase::Verify(const std::string& user, const sasl::Secret& password) {
  return Current()->Verify(user, password);  // Outside the lock: hashing takes milliseconds.
}

}  // namespace postgate::gateway::policy
