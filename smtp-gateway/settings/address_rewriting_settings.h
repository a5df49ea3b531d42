// cleanup(8)'s address rewriting from main.cf: canonical_maps, sender_canonical_maps,
// recipient_canonical_maps, their *_classes, masquerade_domains/_exceptions/_classes and
// propagate_unmatched_extensions, with Postfix's names and defaults. Errors name the parameter
// (and a table's file:line).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "core/addressing/local_domain.h"
#include "core/config/main_cf.h"
#include "smtp-gateway/cleanup/address_rewriting.h"

namespace postgate::gateway {

// `local_domain` decides which domains bare "user" keys apply to; it must outlive the result.
absl::StatusOr<std::shared_ptr<const cleanup::AddressRewriting>> LoadAddressRewriting(
    const config::MainCf& cf, const addressing::LocalDomain& local_domain);

}  // namespace postgate::gateway
