// DKIM signing (RFC 6376): rsa-sha256 with Debian's libopendkim – the OpenDKIM project's library,
// so canonicalisation and signing are a well-kept implementation's, not ours – and ed25519-sha256
// (RFC 8463) with Postgate's own Ed25519Signature, where that library leaks. A MessageSignature
// is the cleanup's ContentObserver: it sees the header section as stored (after cleanup added
// what was missing), picks the keys for the author (the From: header's address) at its end,
// hashes the body as it streams past, and gives the DKIM-Signature header fields at the end, which
// the queue stores in front of the content: the message is signed once, before it is queued, so
// retries never sign again. Memory: the header fields in the signed list, until the header ends.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "smtp-gateway/cleanup/message_cleanup.h"
#include "smtp-gateway/dkim/dkim_keys.h"
#include "smtp-gateway/dkim/ed25519_signature.h"

struct dkim_lib;  // libopendkim's DKIM_LIB and DKIM.
struct dkim;

namespace postgate::gateway::dkim {

struct SignerOptions {
  // Header fields signed when present (postgate_dkim_signed_headers) and those signed once more
  // than present, so none can be added later (postgate_dkim_oversigned_headers; From at least).
  std::vector<std::string> signed_headers{};
  std::vector<std::string> oversigned_headers{};
  bool relaxed_header = true;  // postgate_dkim_canonicalization = relaxed/relaxed (header/body)
  bool relaxed_body = true;
};

class MessageSignature;

class DkimSigner {
 public:
  // Fails with a message naming what is wrong in the options (the keys are loaded already).
  static absl::StatusOr<std::shared_ptr<const DkimSigner>> Create(SignerOptions options, DkimKeys keys);
  ~DkimSigner();

  // The signature of one message, fed by cleanup. `queue_id` names it in libopendkim's errors.
  std::unique_ptr<MessageSignature> Start(absl::string_view queue_id) const;
  const DkimKeys& keys() const { return keys_; }

 private:
  DkimSigner(SignerOptions options, DkimKeys keys);
  friend class MessageSignature;

  SignerOptions options_;
  DkimKeys keys_;
  std::vector<std::string> signed_lower_;  // Lower-case names, for which fields to keep.
  ::dkim_lib* library_ = nullptr;
};

class MessageSignature : public cleanup::ContentObserver {
 public:
  ~MessageSignature() override;
  void HeaderField(absl::string_view field) override;
  void EndOfHeaders() override;
  void Body(absl::string_view piece) override;

  // After the content: the DKIM-Signature header fields to put in front of the message, each
  // ending in LF ("" when no key signs for this author), or the error that stopped signing.
  absl::StatusOr<std::string> Finish();
  // "s=SELECTOR, d=DOMAIN" of each signature made, for the log.
  const std::vector<std::string>& signatures() const { return described_; }
  const std::string& author() const { return author_; }

 private:
  friend class DkimSigner;
  MessageSignature(const DkimSigner& signer, std::string queue_id);
  void Fail(absl::string_view what, int status);

  const DkimSigner& signer_;
  std::string queue_id_;
  std::vector<std::string> kept_fields_;  // Fields in the signed list (no trailing LF), in order.
  std::string author_;
  // One per signing key, in the signing table's order: a libopendkim handle (RSA) or our own.
  struct Signing {
    ::dkim* handle = nullptr;
    std::unique_ptr<Ed25519Signature> ed25519;
  };
  std::vector<Signing> signings_;
  std::vector<std::string> described_;
  absl::Status status_;
};

}  // namespace postgate::gateway::dkim
