// Text in and out of the console's HTTP: HTML and JSON escaping, URL encoding, form bodies, query
// strings and Cookie headers. Pure; every value that reaches a page goes through Html(), because
// addresses, subjects and remote replies are written by strangers.
#pragma once

#include <map>
#include <string>

#include "absl/strings/string_view.h"

namespace postgate::console {

// For element content and quoted attribute values: & < > " ' escaped.
std::string Html(absl::string_view text);

// A JSON string literal, quotes included. Also escapes < > & and U+2028/U+2029, so the text is
// inert wherever it lands; invalid UTF-8 bytes become U+FFFD.
std::string JsonString(absl::string_view text);

// Percent-encodes everything but unreserved characters (RFC 3986), for query values and paths.
std::string UrlEncode(absl::string_view text);
// application/x-www-form-urlencoded decoding: '+' is a space, %XX a byte; a bad escape stays as is.
std::string UrlDecode(absl::string_view text);

// "a=1&b=x+y" → {a: "1", b: "x y"}; a repeated name keeps its first value.
std::map<std::string, std::string> ParseForm(absl::string_view body);

// "a=1; b=2" → {a: "1", b: "2"}; a repeated name keeps its first value.
std::map<std::string, std::string> ParseCookies(absl::string_view header);

}  // namespace postgate::console
