#include "smtp-gateway/cleanup/address_rewriting.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "core/addressing/header_addresses.h"

namespace postgate::gateway::cleanup {
namespace {

// Postfix's cleanup_map11: a canonical result is looked up again, this many times at most.
constexpr int kMaxCanonicalRecursion = 10;

}  // namespace

absl::StatusOr<uint32_t> ParseAddressClasses(const std::vector<std::string>& words) {
  uint32_t classes = 0;
  for (const std::string& word : words) {
    const std::string lower = absl::AsciiStrToLower(word);
    if (lower == "envelope_sender") classes |= kEnvelopeSender;
    else if (lower == "envelope_recipient") classes |= kEnvelopeRecipient;
    else if (lower == "header_sender") classes |= kHeaderSender;
    else if (lower == "header_recipient") classes |= kHeaderRecipient;
    else {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", word, "\": unknown address class (envelope_sender, envelope_recipient, header_sender, header_recipient)"));
    }
  }
  return classes;
}

AddressRewriting::AddressRewriting(AddressRewritingOptions options) : options_(std::move(options)) {
  if (const addressing::LocalDomain* local = options_.local_domain; local != nullptr) {
    is_local_ = [local](absl::string_view domain) { return local->IsOriginOrLocal(domain); };
  }
}

std::string AddressRewriting::Qualified(std::string address) const {
  return options_.local_domain == nullptr ? address : options_.local_domain->Qualify(address);
}

std::string AddressRewriting::Canonical(const addressing::AddressMaps& maps, absl::string_view title,
                                        std::string address, std::vector<std::string>* warnings) const {
  const auto warn = [warnings](std::string text) {
    if (warnings != nullptr) warnings->push_back(std::move(text));
  };
  for (int count = 0; count < kMaxCanonicalRecursion; ++count) {
    std::optional<std::vector<std::string>> mapped =
        maps.Map(address, options_.propagate_extensions, is_local_);
    if (!mapped || mapped->empty()) return address;
    if (mapped->size() > 1) warn(absl::StrCat("multi-valued ", title, " entry for ", address));
    // One address: a canonical entry is 1:1. Without a domain it is local, as Postfix's
    // mail_addr_crunch makes it: "@$myorigin".
    std::string next = Qualified(std::move(mapped->front()));
    const bool itself = absl::EqualsIgnoreCase(next, address);
    address = std::move(next);
    if (itself) return address;
  }
  // Postfix's words, though its cleanup keeps the message (3.7 does; so does Postgate).
  warn(absl::StrCat("unreasonable ", title, " map nesting for ", address, " -- message not accepted, try again later"));
  return address;
}

std::string AddressRewriting::Masquerade(std::string address) const {
  const size_t at = address.rfind('@');
  if (at == std::string::npos) return address;
  const std::string user = absl::AsciiStrToLower(absl::string_view(address).substr(0, at));
  if (std::find(options_.masquerade_exceptions.begin(), options_.masquerade_exceptions.end(), user) !=
      options_.masquerade_exceptions.end()) {
    return address;
  }
  const std::string domain = absl::AsciiStrToLower(absl::string_view(address).substr(at + 1));
  // The first entry that is the domain or a parent of it decides; "!entry" keeps the domain.
  for (absl::string_view entry : options_.masquerade_domains) {
    bool truncate = true;
    while (absl::ConsumePrefix(&entry, "!")) truncate = !truncate;
    if (entry.empty()) continue;
    if (entry == domain) break;
    if (entry.size() < domain.size() && absl::EndsWith(domain, entry) && domain[domain.size() - entry.size() - 1] == '.') {
      if (truncate) address = absl::StrCat(absl::string_view(address).substr(0, at + 1), entry);
      break;
    }
  }
  return address;
}

std::string AddressRewriting::Rewrite(absl::string_view address, AddressClass address_class,
                                      std::vector<std::string>* warnings) const {
  std::string result(address);
  if (result.empty()) return result;
  const bool sender = address_class == kEnvelopeSender || address_class == kHeaderSender;
  if (sender && (options_.sender_canonical_classes & address_class) != 0 && !options_.sender_canonical.empty()) {
    result = Canonical(options_.sender_canonical, "sender_canonical_maps", std::move(result), warnings);
  }
  if (!sender && (options_.recipient_canonical_classes & address_class) != 0 &&
      !options_.recipient_canonical.empty()) {
    result = Canonical(options_.recipient_canonical, "recipient_canonical_maps", std::move(result), warnings);
  }
  if ((options_.canonical_classes & address_class) != 0 && !options_.canonical.empty()) {
    result = Canonical(options_.canonical, "canonical_maps", std::move(result), warnings);
  }
  if ((options_.masquerade_classes & address_class) != 0 && !options_.masquerade_domains.empty()) {
    result = Masquerade(std::move(result));
  }
  return result;
}

std::optional<std::string> AddressRewriting::RewriteHeader(absl::string_view field,
                                                          std::vector<std::string>* warnings) const {
  return addressing::RewriteAddressHeader(
      field, [&](absl::string_view address, addressing::HeaderAddressRole role) -> std::optional<std::string> {
        return Rewrite(Qualified(std::string(address)),
                       role == addressing::HeaderAddressRole::kSender ? kHeaderSender : kHeaderRecipient, warnings);
      });
}

bool AddressRewriting::MapsRecipient(absl::string_view address) const {
  return ((options_.recipient_canonical_classes & kEnvelopeRecipient) != 0 &&
          options_.recipient_canonical.Find(address, is_local_).has_value()) ||
         ((options_.canonical_classes & kEnvelopeRecipient) != 0 &&
          options_.canonical.Find(address, is_local_).has_value());
}

std::vector<std::string> AddressRewriting::files() const {
  std::vector<std::string> files;
  for (const addressing::AddressMaps* maps : {&options_.canonical, &options_.sender_canonical, &options_.recipient_canonical}) {
    files.insert(files.end(), maps->files().begin(), maps->files().end());
  }
  return files;
}

}  // namespace postgate::gateway::cleanup
