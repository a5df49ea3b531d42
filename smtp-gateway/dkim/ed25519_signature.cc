#include "smtp-gateway/dkim/ed25519_signature.h"

#include <openssl/evp.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "smtp-gateway/cleanup/message_cleanup.h"

namespace postgate::gateway::dkim {

struct Ed25519Signature::Digest {
  Digest() : context(EVP_MD_CTX_new()) { EVP_DigestInit_ex(context, EVP_sha256(), nullptr); }
  ~Digest() { EVP_MD_CTX_free(context); }
  void Update(absl::string_view data) { EVP_DigestUpdate(context, data.data(), data.size()); }
  std::string Final() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context, out, &length);
    return std::string(reinterpret_cast<const char*>(out), length);
  }
  EVP_MD_CTX* context;
};

Ed25519Signature::Ed25519Signature(const DkimKey& key, const Ed25519Options& options)
    : key_(key), options_(options), body_(options.relaxed_body), body_hash_(std::make_unique<Digest>()) {}

Ed25519Signature::~Ed25519Signature() = default;

absl::StatusOr<std::unique_ptr<Ed25519Signature>> Ed25519Signature::Start(const DkimKey& key,
                                                                         const Ed25519Options& options,
                                                                         const std::vector<std::string>& fields,
                                                                         absl::Time now) {
  if (key.type != DkimKey::Type::kEd25519) return absl::InvalidArgumentError("not an Ed25519 key");
  std::unique_ptr<Ed25519Signature> signature(new Ed25519Signature(key, options));
  signature->timestamp_ = absl::ToUnixSeconds(now);
  // h= names each field once, bottom-up per name as RFC 6376 §5.4.2 selects instances: the
  // fields are hashed in that order. Oversigned names come once more and select nothing.
  std::vector<std::string> names;
  std::vector<bool> used(fields.size(), false);
  for (size_t i = 0; i < fields.size(); ++i) names.push_back(absl::AsciiStrToLower(cleanup::HeaderFieldName(fields[i])));
  std::vector<std::string> listed;
  for (size_t i = 0; i < fields.size(); ++i) {
    // The next name in message order; its hashed instance is the last one not yet used.
    const std::string& name = names[i];
    for (size_t j = fields.size(); j-- > 0;) {
      if (!used[j] && names[j] == name) {
        used[j] = true;
        absl::StrAppend(&signature->hashed_headers_, CanonicalHeader(fields[j], options.relaxed_header));
        break;
      }
    }
    listed.push_back(name);
  }
  for (const std::string& name : options.oversigned_headers) listed.push_back(name);
  signature->header_names_ = absl::StrJoin(listed, ":");
  return signature;
}

void Ed25519Signature::Body(absl::string_view piece) {
  scratch_.clear();
  body_.Feed(piece, &scratch_);
  body_hash_->Update(scratch_);
}

absl::StatusOr<std::string> Ed25519Signature::Finish() {
  scratch_.clear();
  body_.Finish(&scratch_);
  body_hash_->Update(scratch_);
  const std::string body_hash = absl::Base64Escape(body_hash_->Final());
  // Folded before hashing, so that "simple" header canonicalisation sees what is stored.
  std::string names_folded;
  size_t line = 0;
  for (absl::string_view name : absl::StrSplit(header_names_, ':')) {
    if (!names_folded.empty()) {
      names_folded.push_back(':');
      if (line + name.size() > 64) {
        names_folded.append("\n\t ");
        line = 0;
      }
    }
    absl::StrAppend(&names_folded, name);
    line += name.size() + 1;
  }
  const std::string unsigned_field = absl::StrCat(
      "DKIM-Signature: v=1; a=ed25519-sha256; c=", options_.relaxed_header ? "relaxed" : "simple", "/",
      options_.relaxed_body ? "relaxed" : "simple", ";\n\td=", key_.domain, "; s=", key_.selector, "; t=", timestamp_,
      ";\n\th=", names_folded, ";\n\tbh=", body_hash, ";\n\tb=");
  // RFC 6376 §3.7: the signature field itself, canonicalised, without its final CRLF.
  std::string signature_field = CanonicalHeader(unsigned_field, options_.relaxed_header);
  signature_field.resize(signature_field.size() - 2);
  Digest header_hash;
  header_hash.Update(hashed_headers_);
  header_hash.Update(signature_field);
  const std::string digest = header_hash.Final();

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char signature[64];
  size_t length = sizeof signature;
  if (!key_.ed25519_key || !context ||
      EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, key_.ed25519_key.get()) != 1 ||
      EVP_DigestSign(context.get(), signature, &length, reinterpret_cast<const unsigned char*>(digest.data()),
                     digest.size()) != 1) {
    return absl::InternalError(absl::StrCat("DKIM ed25519 signing with key ", key_.name, " failed"));
  }
  return absl::StrCat(unsigned_field,
                      absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(signature), length)), "\n");
}

}  // namespace postgate::gateway::dkim
