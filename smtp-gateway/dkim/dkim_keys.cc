#include "smtp-gateway/dkim/dkim_keys.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace postgate::gateway::dkim {
namespace {

// Read straight into one string (no stream buffer copy left behind: it may be a private key).
absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the ", what));
  std::string content(static_cast<size_t>(in.tellg()), '\0');
  in.seekg(0);
  if (!in.read(content.data(), static_cast<std::streamsize>(content.size()))) {
    return absl::DataLossError(absl::StrCat(path, ": cannot read the ", what));
  }
  return content;
}

// Each non-empty, non-comment line with its number, split into blank-separated words.
std::vector<std::pair<int, std::vector<std::string>>> TableLines(const std::string& content) {
  std::vector<std::pair<int, std::vector<std::string>>> lines;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    ++number;
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string> words = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (!words.empty()) lines.emplace_back(number, std::move(words));
  }
  return lines;
}

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

// Parses the key and fills in type, bits and the public value; the error never quotes the key.
absl::Status InspectKey(DkimKey& key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(key.private_key_pem.reveal().data(), static_cast<int>(key.private_key_pem.reveal().size())),
      &BIO_free);
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) return absl::InvalidArgumentError("not a PEM private key");
  if (EVP_PKEY_id(pkey.get()) == EVP_PKEY_RSA) {
    key.bits = EVP_PKEY_bits(pkey.get());
    if (key.bits < 1024) return absl::InvalidArgumentError(absl::StrCat("an RSA key of ", key.bits, " bits (RFC 8301: at least 1024)"));
    unsigned char* der = nullptr;
    const int length = i2d_PUBKEY(pkey.get(), &der);
    if (length <= 0) return absl::InternalError("cannot encode the public key");
    key.public_key = absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(length)));
    OPENSSL_free(der);
  } else if (EVP_PKEY_id(pkey.get()) == EVP_PKEY_ED25519) {
    key.type = DkimKey::Type::kEd25519;
    key.bits = EVP_PKEY_bits(pkey.get());
    unsigned char raw[32];
    size_t length = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(pkey.get(), raw, &length) != 1) {
      return absl::InternalError("cannot read the Ed25519 public key");
    }
    key.public_key = absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(raw), length));
    key.ed25519_key = std::shared_ptr<EVP_PKEY>(pkey.release(), PkeyFree());
  } else {
    return absl::InvalidArgumentError("neither an RSA nor an Ed25519 key");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DkimKeys> DkimKeys::Load(const std::string& key_table_path, const std::string& signing_table_path) {
  DkimKeys keys;
  keys.files_ = {key_table_path, signing_table_path};
  absl::StatusOr<std::string> key_table = ReadFile(key_table_path, "DKIM key table");
  if (!key_table.ok()) return key_table.status();
  for (auto& [number, words] : TableLines(*key_table)) {
    const std::string where = absl::StrCat(key_table_path, ":", number, ": ");
    std::vector<std::string> parts = words.size() == 2 ? absl::StrSplit(words[1], absl::MaxSplits(':', 2))
                                                       : std::vector<std::string>{};
    if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "expected \"NAME DOMAIN:SELECTOR:/path/to/key.pem\""));
    }
    for (const DkimKey& other : keys.keys_) {
      if (other.name == words[0]) return absl::InvalidArgumentError(absl::StrCat(where, "key \"", words[0], "\" named twice"));
    }
    DkimKey key;
    key.name = words[0];
    key.domain = absl::AsciiStrToLower(parts[0]);
    key.selector = parts[1];
    key.path = parts[2];
    absl::StatusOr<std::string> pem = ReadFile(key.path, "private key");
    if (!pem.ok()) return absl::InvalidArgumentError(absl::StrCat(where, pem.status().message()));
    key.private_key_pem = sasl::Secret(*std::move(pem));  // The one buffer that holds it, from here on.
    if (absl::Status inspected = InspectKey(key); !inspected.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, key.path, ": ", inspected.message()));
    }
    keys.files_.push_back(key.path);
    keys.keys_.push_back(std::move(key));
  }
  absl::StatusOr<std::string> signing_table = ReadFile(signing_table_path, "DKIM signing table");
  if (!signing_table.ok()) return signing_table.status();
  for (auto& [number, words] : TableLines(*signing_table)) {
    const std::string where = absl::StrCat(signing_table_path, ":", number, ": ");
    if (words.size() != 2) return absl::InvalidArgumentError(absl::StrCat(where, "expected \"PATTERN KEYNAME\""));
    size_t index = 0;
    while (index < keys.keys_.size() && keys.keys_[index].name != words[1]) ++index;
    if (index == keys.keys_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "key \"", words[1], "\" is not in ", key_table_path));
    }
    std::string pattern = absl::AsciiStrToLower(words[0]);
    if (absl::StartsWith(pattern, "*@")) pattern = pattern.substr(2);  // "*@example.com" = "example.com"
    keys.rules_.push_back({std::move(pattern), index});
  }
  return keys;
}

std::vector<const DkimKey*> DkimKeys::KeysFor(absl::string_view address) const {
  const std::string lower = absl::AsciiStrToLower(address);
  const size_t at = lower.rfind('@');
  if (at == std::string::npos) return {};
  const std::string domain = lower.substr(at + 1);
  std::vector<std::string> candidates = {lower, domain};
  for (size_t dot = domain.find('.'); dot != std::string::npos; dot = domain.find('.', dot + 1)) {
    candidates.push_back(absl::StrCat("*", domain.substr(dot)));
  }
  candidates.push_back("*");
  for (const std::string& candidate : candidates) {
    std::vector<const DkimKey*> found;
    for (const Rule& rule : rules_) {
      if (rule.pattern == candidate) found.push_back(&keys_[rule.key]);
    }
    if (!found.empty()) return found;
  }
  return {};
}

std::string DnsRecord(const DkimKey& key) {
  const std::string value =
      absl::StrCat("v=DKIM1; k=", key.type == DkimKey::Type::kEd25519 ? "ed25519" : "rsa", "; p=", key.public_key);
  std::string record = absl::StrCat(key.selector, "._domainkey.", key.domain, ". IN TXT (");
  for (size_t start = 0; start < value.size(); start += 255) {
    absl::StrAppend(&record, " \"", value.substr(start, 255), "\"");
  }
  absl::StrAppend(&record, " )");
  return record;
}

std::string AuthorAddress(absl::string_view value) {
  std::string address;
  const size_t open = value.rfind('<');
  if (open != absl::string_view::npos && value.find('>', open) != absl::string_view::npos) {
    address = std::string(value.substr(open + 1, value.find('>', open) - open - 1));
  } else {
    int depth = 0;  // Comments "(…)" dropped, nested or not; quoted strings kept as they are.
    bool quoted = false;
    for (size_t i = 0; i < value.size(); ++i) {
      const char c = value[i];
      if (quoted) {
        address.push_back(c);
        if (c == '\\' && i + 1 < value.size()) address.push_back(value[++i]);
        else if (c == '"') quoted = false;
      } else if (c == '(') {
        ++depth;
      } else if (c == ')' && depth > 0) {
        --depth;
      } else if (depth == 0 && c == '"') {
        quoted = true;
        address.push_back(c);
      } else if (depth == 0 && c == ',') {
        break;  // Several authors: the first.
      } else if (depth == 0 && !absl::ascii_isspace(static_cast<unsigned char>(c))) {
        address.push_back(c);
      }
    }
  }
  address = std::string(absl::StripAsciiWhitespace(address));
  const size_t at = address.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == address.size()) return "";
  return absl::StrCat(address.substr(0, at + 1), absl::AsciiStrToLower(address.substr(at + 1)));
}

}  // namespace postgate::gateway::dkim
