// Which key signs whose mail, in the shape of OpenDKIM's KeyTable and SigningTable files, which
// an operator mounts from a Kubernetes Secret:
//   KeyTable      one key per line:   NAME  DOMAIN:SELECTOR:/path/to/private-key.pem
//   SigningTable  one rule per line:  PATTERN  NAME
// A PATTERN is an address ("ann@example.com"), a domain ("example.com" or "*@example.com"), the
// subdomains of one ("*.example.com") or "*". The author (the From: header's address) is looked up
// in that order – the address, its domain, each parent "*.domain", "*" – and every rule with the
// first pattern that matches signs (a domain may list two keys, e.g. during a rotation: two
// signatures). Keys are PEM private keys: RSA (PKCS#8 or PKCS#1) of 1024 bits or more, signing
// rsa-sha256 with libopendkim, or Ed25519 (PKCS#8, RFC 8463), signing ed25519-sha256 with
// Postgate's own signer (ed25519_signature.h says why).
// Errors name the file and line, never a key's content.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <openssl/types.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/sasl/secret.h"

namespace postgate::gateway::dkim {

struct DkimKey {
  enum class Type { kRsa, kEd25519 };
  Type type = Type::kRsa;
  std::string name;
  std::string domain;
  std::string selector;
  std::string path;
  int bits = 0;
  sasl::Secret private_key_pem;  // As read; handed to libopendkim only, wiped when the key goes.
  // Ed25519: the key as parsed when it was loaded (Postgate's own signer uses it for every
  // message; OpenSSL clears it when freed). Null for RSA keys.
  std::shared_ptr<EVP_PKEY> ed25519_key;
  // The p= value: base64 of the SubjectPublicKeyInfo (RSA) or of the raw 32-byte key (Ed25519).
  std::string public_key;
};

class DkimKeys {
 public:
  static absl::StatusOr<DkimKeys> Load(const std::string& key_table_path, const std::string& signing_table_path);

  // The keys that sign mail whose author is `address` (empty: none).
  std::vector<const DkimKey*> KeysFor(absl::string_view address) const;
  const std::vector<DkimKey>& keys() const { return keys_; }
  // The files read (tables and keys): a change to any of them is a reason to load again.
  const std::vector<std::string>& files() const { return files_; }

 private:
  struct Rule {
    std::string pattern;  // Lower case.
    size_t key = 0;       // Index in keys_.
  };
  std::vector<DkimKey> keys_;
  std::vector<Rule> rules_;
  std::vector<std::string> files_;
};

// The DNS record to publish for `key`, in zone-file form, the p= value split into strings of at
// most 255 characters (RFC 1035 character-strings), e.g.
//   sel._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; p=MIIBIjANBgkq…" "…IDAQAB" )
// (k=ed25519 for an Ed25519 key).
std::string DnsRecord(const DkimKey& key);

// The address in a From: header's value: inside the last <…>, or the addr-spec with comments
// removed; lower-cased domain. "" when there is none.
std::string AuthorAddress(absl::string_view from_value);

}  // namespace postgate::gateway::dkim
