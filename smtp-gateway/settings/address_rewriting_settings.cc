#include "smtp-gateway/settings/address_rewriting_settings.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace postgate::gateway {

absl::StatusOr<std::shared_ptr<const cleanup::AddressRewriting>> LoadAddressRewriting(
    const config::MainCf& cf, const addressing::LocalDomain& local_domain) {
  const std::string delimiters = cf.Get("recipient_delimiter");
  const char delimiter = delimiters.empty() ? '\0' : delimiters.front();
  cleanup::AddressRewritingOptions options;
  struct TableParameter {
    const char* maps;
    const char* classes;
    addressing::AddressMaps* table;
    uint32_t* class_bits;
  };
  for (const TableParameter& parameter :
       {TableParameter{"canonical_maps", "canonical_classes", &options.canonical, &options.canonical_classes},
        TableParameter{"sender_canonical_maps", "sender_canonical_classes", &options.sender_canonical,
                       &options.sender_canonical_classes},
        TableParameter{"recipient_canonical_maps", "recipient_canonical_classes", &options.recipient_canonical,
                       &options.recipient_canonical_classes}}) {
    absl::StatusOr<addressing::AddressMaps> maps =
        addressing::AddressMaps::Load(cf.GetList(parameter.maps), delimiter);
    if (!maps.ok()) return cf.Error(parameter.maps, maps.status().message());
    *parameter.table = *std::move(maps);
    absl::StatusOr<uint32_t> classes = cleanup::ParseAddressClasses(cf.GetList(parameter.classes));
    if (!classes.ok()) return cf.Error(parameter.classes, classes.status().message());
    *parameter.class_bits = *classes;
  }
  absl::StatusOr<uint32_t> masquerade_classes = cleanup::ParseAddressClasses(cf.GetList("masquerade_classes"));
  if (!masquerade_classes.ok()) return cf.Error("masquerade_classes", masquerade_classes.status().message());
  options.masquerade_classes = *masquerade_classes;
  for (const std::string& domain : cf.GetList("masquerade_domains")) {
    if (domain.find(':') != std::string::npos) {
      return cf.Error("masquerade_domains", absl::StrCat("\"", domain, "\": a domain name is needed (tables are not supported here)"));
    }
    options.masquerade_domains.push_back(absl::AsciiStrToLower(domain));
  }
  for (const std::string& user : cf.GetList("masquerade_exceptions")) {
    if (user.find(':') != std::string::npos) {
      return cf.Error("masquerade_exceptions", absl::StrCat("\"", user, "\": a user name is needed (tables are not supported here)"));
    }
    options.masquerade_exceptions.push_back(absl::AsciiStrToLower(user));
  }
  absl::StatusOr<bool> propagate = addressing::PropagatesUnmatchedExtensions(cf, "canonical");
  if (!propagate.ok()) return propagate.status();
  options.propagate_extensions = *propagate;
  options.local_domain = &local_domain;
  return std::make_shared<const cleanup::AddressRewriting>(std::move(options));
}

}  // namespace postgate::gateway
