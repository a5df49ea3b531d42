#include "smtp-gateway/dkim/dkim_signer.h"

#include "smtp-gateway/dkim/opendkim_api.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"

namespace postgate::gateway::dkim {
namespace {

constexpr absl::string_view kSignatureName = "DKIM-Signature: ";

// A NULL-terminated array of C strings, as dkim_options wants header lists.
class CStringList {
 public:
  explicit CStringList(const std::vector<std::string>& words) {
    for (const std::string& word : words) pointers_.push_back(word.c_str());
    pointers_.push_back(nullptr);
  }
  const char** get() { return pointers_.data(); }

 private:
  std::vector<const char*> pointers_;
};

}  // namespace

DkimSigner::DkimSigner(SignerOptions options, DkimKeys keys) : options_(std::move(options)), keys_(std::move(keys)) {}

DkimSigner::~DkimSigner() {
  if (library_ != nullptr) dkim_close(library_);
}

absl::StatusOr<std::shared_ptr<const DkimSigner>> DkimSigner::Create(SignerOptions options, DkimKeys keys) {
  std::shared_ptr<DkimSigner> signer(new DkimSigner(std::move(options), std::move(keys)));
  for (std::string& name : signer->options_.signed_headers) name = absl::AsciiStrToLower(name);
  for (std::string& name : signer->options_.oversigned_headers) name = absl::AsciiStrToLower(name);
  const std::vector<std::string>& signed_headers = signer->options_.signed_headers;
  if (std::find(signed_headers.begin(), signed_headers.end(), "from") == signed_headers.end()) {
    return absl::InvalidArgumentError("must include From (RFC 6376 §5.4)");
  }
  for (const std::string& name : signer->options_.oversigned_headers) {
    if (std::find(signed_headers.begin(), signed_headers.end(), name) == signed_headers.end()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is oversigned but not signed"));
    }
  }
  signer->signed_lower_ = signed_headers;
  signer->library_ = dkim_init(nullptr, nullptr);
  if (signer->library_ == nullptr) return absl::ResourceExhaustedError("libopendkim: dkim_init failed");
  // The content is stored with LF line ends: libopendkim makes them CRLF for the hashes, as the
  // message is on the wire.
  unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;
  CStringList signed_list(signed_headers);
  CStringList oversigned_list(signer->options_.oversigned_headers);
  if (dkim_options(signer->library_, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK ||
      dkim_options(signer->library_, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, signed_list.get(), sizeof(char**)) !=
          DKIM_STAT_OK ||
      dkim_options(signer->library_, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, oversigned_list.get(),
                   sizeof(char**)) != DKIM_STAT_OK) {
    return absl::InvalidArgumentError("libopendkim refused the header lists");
  }
  return std::shared_ptr<const DkimSigner>(std::move(signer));
}

std::unique_ptr<MessageSignature> DkimSigner::Start(absl::string_view queue_id) const {
  return std::unique_ptr<MessageSignature>(new MessageSignature(*this, std::string(queue_id)));
}

MessageSignature::MessageSignature(const DkimSigner& signer, std::string queue_id)
    : signer_(signer), queue_id_(std::move(queue_id)) {}

MessageSignature::~MessageSignature() {
  for (Signing& signing : signings_) {
    if (signing.handle != nullptr) dkim_free(signing.handle);
  }
}

void MessageSignature::Fail(absl::string_view what, int status) {
  if (status_.ok()) {
    status_ = absl::InternalError(absl::StrCat("DKIM ", what, ": ", dkim_getresultstr(status)));
  }
}

void MessageSignature::HeaderField(absl::string_view field) {
  const std::string name = absl::AsciiStrToLower(cleanup::HeaderFieldName(field));
  if (name == "from" && author_.empty()) {
    std::string value(field.substr(field.find(':') + 1));
    value = absl::StrReplaceAll(value, {{"\n", ""}});
    author_ = AuthorAddress(value);
  }
  const std::vector<std::string>& wanted = signer_.signed_lower_;
  if (std::find(wanted.begin(), wanted.end(), name) == wanted.end()) return;
  if (absl::EndsWith(field, "\n")) field.remove_suffix(1);
  kept_fields_.emplace_back(field);
}

void MessageSignature::EndOfHeaders() {
  if (author_.empty()) return;  // Nobody to sign for: OpenDKIM too lets such mail pass unsigned.
  const Ed25519Options ed25519_options{.relaxed_header = signer_.options_.relaxed_header,
                                       .relaxed_body = signer_.options_.relaxed_body,
                                       .oversigned_headers = signer_.options_.oversigned_headers};
  for (const DkimKey* key : signer_.keys().KeysFor(author_)) {
    described_.push_back(absl::StrCat("s=", key->selector, ", d=", key->domain));
    Signing& signing = signings_.emplace_back();
    if (key->type == DkimKey::Type::kEd25519) {
      absl::StatusOr<std::unique_ptr<Ed25519Signature>> started =
          Ed25519Signature::Start(*key, ed25519_options, kept_fields_, absl::Now());
      if (!started.ok()) {
        if (status_.ok()) status_ = started.status();
        return;
      }
      signing.ed25519 = *std::move(started);
      continue;
    }
    DKIM_STAT status = DKIM_STAT_OK;
    signing.handle = dkim_sign(signer_.library_, reinterpret_cast<const unsigned char*>(queue_id_.c_str()), nullptr,
                               reinterpret_cast<dkim_sigkey_t>(const_cast<char*>(key->private_key_pem.c_str())),
                               reinterpret_cast<const unsigned char*>(key->selector.c_str()),
                               reinterpret_cast<const unsigned char*>(key->domain.c_str()),
                               signer_.options_.relaxed_header ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
                               signer_.options_.relaxed_body ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
                               DKIM_SIGN_RSASHA256, -1 /* no l= */, &status);
    if (signing.handle == nullptr) return Fail("dkim_sign", status);
    for (std::string& field : kept_fields_) {
      status = dkim_header(signing.handle, reinterpret_cast<unsigned char*>(field.data()), field.size());
      if (status != DKIM_STAT_OK) return Fail("dkim_header", status);
    }
    if (status = dkim_eoh(signing.handle); status != DKIM_STAT_OK) return Fail("dkim_eoh", status);
  }
  kept_fields_.clear();
  kept_fields_.shrink_to_fit();
}

void MessageSignature::Body(absl::string_view piece) {
  if (!status_.ok() || piece.empty()) return;
  for (Signing& signing : signings_) {
    if (signing.ed25519 != nullptr) {
      signing.ed25519->Body(piece);
      continue;
    }
    const DKIM_STAT status =
        dkim_body(signing.handle, reinterpret_cast<unsigned char*>(const_cast<char*>(piece.data())), piece.size());
    if (status != DKIM_STAT_OK) return Fail("dkim_body", status);
  }
}

absl::StatusOr<std::string> MessageSignature::Finish() {
  if (!status_.ok()) return status_;
  std::string fields;
  for (Signing& signing : signings_) {
    if (signing.ed25519 != nullptr) {
      absl::StatusOr<std::string> field = signing.ed25519->Finish();
      if (!field.ok()) {
        status_ = field.status();
        return status_;
      }
      absl::StrAppend(&fields, *field);
      continue;
    }
    if (const DKIM_STAT status = dkim_eom(signing.handle, nullptr); status != DKIM_STAT_OK) {
      Fail("dkim_eom", status);
      return status_;
    }
    unsigned char* value = nullptr;
    size_t length = 0;
    if (const DKIM_STAT status = dkim_getsighdr_d(signing.handle, kSignatureName.size(), &value, &length);
        status != DKIM_STAT_OK) {
      Fail("dkim_getsighdr_d", status);
      return status_;
    }
    // Folded with CRLF TAB for the wire; stored with LF like the rest of the message.
    absl::StrAppend(&fields, kSignatureName,
                    absl::StrReplaceAll(absl::string_view(reinterpret_cast<char*>(value), length), {{"\r\n", "\n"}}),
                    "\n");
  }
  return fields;
}

}  // namespace postgate::gateway::dkim
