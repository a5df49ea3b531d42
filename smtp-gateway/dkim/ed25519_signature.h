// One ed25519-sha256 DKIM signature (RFC 8463) of one message, made by Postgate itself: Debian's
// libopendkim 2.11.0~beta2 can sign with Ed25519 but never frees the key it loads for each such
// signature (its dkim_free frees RSA keys only; LeakSanitizer: 2,222 bytes for three signatures,
// one run on 2026-11-30), which a gateway signing for months cannot afford. Canonicalisation is
// canonicalization.h; hashing and signing are OpenSSL's (SHA-256, then PureEdDSA over the hash,
// as RFC 8463 §3 specifies). Verified by dkimpy in tests, as the RSA signatures are.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "smtp-gateway/dkim/canonicalization.h"
#include "smtp-gateway/dkim/dkim_keys.h"

namespace postgate::gateway::dkim {

struct Ed25519Options {
  bool relaxed_header = true;
  bool relaxed_body = true;
  std::vector<std::string> oversigned_headers{};  // Lower case: named once more than present.
};

class Ed25519Signature {
 public:
  // `fields`: the message's header fields in the signed list, in order (folded lines joined by
  // LF, no final LF). Fails when the key cannot be used.
  static absl::StatusOr<std::unique_ptr<Ed25519Signature>> Start(const DkimKey& key, const Ed25519Options& options,
                                                                 const std::vector<std::string>& fields,
                                                                 absl::Time now);
  ~Ed25519Signature();

  void Body(absl::string_view piece);
  // The DKIM-Signature header field, folded with LF TAB, ending in LF.
  absl::StatusOr<std::string> Finish();

 private:
  Ed25519Signature(const DkimKey& key, const Ed25519Options& options);

  const DkimKey& key_;
  Ed25519Options options_;
  std::string header_names_;     // The h= value.
  std::string hashed_headers_;   // The canonical signed header fields, in h= order.
  int64_t timestamp_ = 0;
  BodyCanonicalizer body_;
  std::string scratch_;
  struct Digest;
  std::unique_ptr<Digest> body_hash_;
};

}  // namespace postgate::gateway::dkim
