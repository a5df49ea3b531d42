// Postfix cleanup(8)'s address rewriting on the way into the queue: canonical_maps,
// sender_canonical_maps, recipient_canonical_maps and masquerade_domains, each for the address
// classes its *_classes parameter names (envelope_sender, envelope_recipient, header_sender,
// header_recipient). An address goes through, in Postfix's order: the sender's or recipient's own
// canonical table, canonical_maps, then masquerading. A canonical lookup repeats on its result
// (at most 10 times, as Postfix) until the address maps to itself or is not found; more, or a
// result of several addresses, gives Postfix's warning (the first address is used, the mail kept).
// Header addresses are rewritten only for clients in local_header_rewrite_clients; an address
// without a domain there gets "@$myorigin" first (Postfix's "local" rewriting context).
// Pure; read-only and thread-safe once built.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/addressing/address_maps.h"
#include "core/addressing/local_domain.h"

namespace postgate::gateway::cleanup {

enum AddressClass : uint32_t {
  kEnvelopeSender = 1 << 0,
  kEnvelopeRecipient = 1 << 1,
  kHeaderSender = 1 << 2,
  kHeaderRecipient = 1 << 3,
};
// "envelope_sender, header_recipient…" → bits; an unknown word is an error naming it.
absl::StatusOr<uint32_t> ParseAddressClasses(const std::vector<std::string>& words);

struct AddressRewritingOptions {
  addressing::AddressMaps canonical;            // canonical_maps
  addressing::AddressMaps sender_canonical;     // sender_canonical_maps
  addressing::AddressMaps recipient_canonical;  // recipient_canonical_maps
  uint32_t canonical_classes = kEnvelopeSender | kEnvelopeRecipient | kHeaderSender | kHeaderRecipient;
  uint32_t sender_canonical_classes = kEnvelopeSender | kHeaderSender;
  uint32_t recipient_canonical_classes = kEnvelopeRecipient | kHeaderRecipient;
  bool propagate_extensions = true;  // propagate_unmatched_extensions has "canonical"
  // masquerade_domains, in order ("!sub.example.com" excludes a subdomain), lower case.
  std::vector<std::string> masquerade_domains{};
  std::vector<std::string> masquerade_exceptions{};  // Local parts never masqueraded, lower case.
  uint32_t masquerade_classes = kEnvelopeSender | kHeaderSender | kHeaderRecipient;
  // Qualifies addresses without a domain (@$myorigin) and says where bare "user" keys apply;
  // it must outlive the rewriting. Null: neither (tests).
  const addressing::LocalDomain* local_domain = nullptr;
};

class AddressRewriting {
 public:
  explicit AddressRewriting(AddressRewritingOptions options);

  // No table and no masquerading: envelope addresses stay as they are.
  bool empty() const {
    return options_.canonical.empty() && options_.sender_canonical.empty() && options_.recipient_canonical.empty() &&
           options_.masquerade_domains.empty();
  }
  // `address` as stored for `address_class`; "" (the null sender) stays "". Postfix's warnings
  // ("unreasonable canonical_maps map nesting for …") are appended to `warnings` if given.
  std::string Rewrite(absl::string_view address, AddressClass address_class,
                      std::vector<std::string>* warnings = nullptr) const;
  // A header field of a local client's message with its addresses rewritten, or nullopt when it
  // has none or none changed (headers that carry no sender or recipient address included).
  std::optional<std::string> RewriteHeader(absl::string_view field, std::vector<std::string>* warnings = nullptr) const;

  // recipient_canonical_maps or canonical_maps has an entry for this recipient (Postfix's smtpd
  // then accepts it without a mailbox of its own).
  bool MapsRecipient(absl::string_view address) const;

  // The tables' files, for reloading when one changes.
  std::vector<std::string> files() const;

 private:
  std::string Canonical(const addressing::AddressMaps& maps, absl::string_view title, std::string address,
                        std::vector<std::string>* warnings) const;
  std::string Masquerade(std::string address) const;
  std::string Qualified(std::string address) const;

  AddressRewritingOptions options_;
  addressing::AddressMaps::LocalDomainTest is_local_;  // From options_.local_domain.
};

}  // namespace postgate::gateway::cleanup
