#include "queue-service/routing/router.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/status_macros.h"

namespace postgate::queue {

std::string NextHop::ToString() const {
  std::string text = mx_lookup ? host : absl::StrCat("[", host, "]");
  if (port != 25) absl::StrAppend(&text, ":", port);
  return text;
}

absl::StatusOr<NextHop> ParseNextHop(absl::string_view text) {
  NextHop hop;
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  if (absl::ConsumePrefix(&rest, "[")) {
    size_t close = rest.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": missing ]"));
    hop.host = std::string(rest.substr(0, close));
    hop.mx_lookup = false;
    rest.remove_prefix(close + 1);
  } else {
    size_t colon = rest.find(':');
    hop.host = std::string(rest.substr(0, colon));
    rest = colon == absl::string_view::npos ? absl::string_view() : rest.substr(colon);
  }
  if (hop.host.empty()) return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": no host"));
  if (absl::ConsumePrefix(&rest, ":")) {
    int port = 0;
    if (!absl::SimpleAtoi(rest, &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": bad port"));
    }
    hop.port = static_cast<uint16_t>(port);
  } else if (!rest.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": unexpected \"", rest, "\""));
  }
  hop.host = absl::AsciiStrToLower(hop.host);
  return hop;
}

absl::StatusOr<TransportMap> TransportMap::Parse(absl::string_view text, const std::string& filename) {
  TransportMap map;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto error = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(filename, ":", number, ": ", why));
    };
    if (fields.size() != 2) return error("expected \"domain transport:nexthop\"");
    absl::string_view target = fields[1];
    size_t colon = target.find(':');
    absl::string_view transport = target.substr(0, colon);
    if (transport != "smtp") return error(absl::StrCat("transport \"", transport, "\" is not supported (use smtp)"));
    std::string next_hop = colon == absl::string_view::npos ? "" : std::string(target.substr(colon + 1));
    if (!next_hop.empty()) {
      if (absl::StatusOr<NextHop> parsed = ParseNextHop(next_hop); !parsed.ok()) return error(parsed.status().message());
    }
    map.entries_.emplace_back(absl::AsciiStrToLower(fields[0]), next_hop);
  }
  return map;
}

const std::string* TransportMap::Find(absl::string_view domain) const {
  auto find = [&](absl::string_view pattern) -> const std::string* {
    for (const auto& [key, value] : entries_) {
      if (key == pattern) return &value;
    }
    return nullptr;
  };
  if (const std::string* exact = find(domain)) return exact;
  for (size_t dot = domain.find('.'); dot != absl::string_view::npos; dot = domain.find('.', dot + 1)) {
    if (const std::string* parent = find(domain.substr(dot))) return parent;
  }
  return find("*");
}

absl::StatusOr<Router> Router::Create(const config::MainCf& cf) {
  TransportMap map;
  for (const std::string& spec : cf.GetList("transport_maps")) {
    size_t colon = spec.find(':');
    std::string type = colon == std::string::npos ? "" : spec.substr(0, colon);
    if (type != "hash" && type != "texthash") {
      return cf.Error("transport_maps", absl::StrCat("\"", spec, "\": unsupported map type (use texthash:)"));
    }
    const std::string path = spec.substr(colon + 1);
    std::ifstream in(path, std::ios::binary);
    if (!in) return cf.Error("transport_maps", absl::StrCat(path, ": cannot open"));
    std::stringstream text;
    text << in.rdbuf();
    ASSIGN_OR_RETURN(map, TransportMap::Parse(text.str(), path));
    break;  // One map file (Postfix allows several; the first is what Postgate reads).
  }
  std::optional<NextHop> relayhost;
  if (!cf.Get("relayhost").empty()) {
    absl::StatusOr<NextHop> parsed = ParseNextHop(cf.Get("relayhost"));
    if (!parsed.ok()) return cf.Error("relayhost", parsed.status().message());
    relayhost = *parsed;
  }
  bool defer_smtp = false;
  for (const std::string& transport : cf.GetList("defer_transports")) defer_smtp |= transport == "smtp";
  return Router(std::move(map), std::move(relayhost), defer_smtp);
}

Route Router::Resolve(absl::string_view domain) const {
  Route route;
  if (defer_smtp_) {
    route.kind = Route::Kind::kDefer;
    route.reason = "deferred transport";
    return route;
  }
  route.kind = Route::Kind::kSmtp;
  if (const std::string* entry = map_.Find(domain)) {
    route.next_hop = entry->empty() ? NextHop{std::string(domain), 25, true} : *ParseNextHop(*entry);
  } else if (relayhost_) {
    route.next_hop = *relayhost_;
  } else {
    route.next_hop = NextHop{std::string(domain), 25, true};  // The domain's MX hosts, as Postfix.
  }
  return route;
}

}  // namespace postgate::queue
