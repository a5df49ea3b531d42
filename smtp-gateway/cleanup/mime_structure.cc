#include "smtp-gateway/cleanup/mime_structure.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "smtp-gateway/cleanup/message_cleanup.h"

namespace postgate::gateway::cleanup {

ContentType ParseContentType(absl::string_view value) {
  ContentType parsed;
  value = absl::StripAsciiWhitespace(value);
  const size_t semicolon = value.find(';');
  parsed.media_type = absl::AsciiStrToLower(absl::StripAsciiWhitespace(value.substr(0, semicolon)));
  if (semicolon == absl::string_view::npos) return parsed;
  absl::string_view rest = value.substr(semicolon + 1);
  while (!rest.empty()) {
    rest = absl::StripLeadingAsciiWhitespace(rest);
    const size_t equals = rest.find('=');
    if (equals == absl::string_view::npos) break;
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(rest.substr(0, equals)));
    rest = absl::StripLeadingAsciiWhitespace(rest.substr(equals + 1));
    std::string parameter;
    if (!rest.empty() && rest.front() == '"') {
      size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        parameter.push_back(rest[i]);
      }
      rest = rest.substr(std::min(rest.size(), i + 1));
    } else {
      const size_t end = rest.find(';');
      parameter = std::string(absl::StripTrailingAsciiWhitespace(rest.substr(0, end)));
      rest = end == absl::string_view::npos ? absl::string_view() : rest.substr(end);
    }
    if (name == "boundary") parsed.boundary = parameter;
    const size_t next = rest.find(';');
    if (next == absl::string_view::npos) break;
    rest = rest.substr(next + 1);
  }
  return parsed;
}

void MimeStructure::Enter(absl::string_view content_type, bool digest_default) {
  in_headers_ = false;
  ContentType parsed = ParseContentType(content_type);
  if (parsed.media_type.empty()) parsed.media_type = digest_default ? "message/rfc822" : "text/plain";
  if (absl::StartsWith(parsed.media_type, "multipart/") && !parsed.boundary.empty()) {
    if (levels_.size() < kMaxNesting) levels_.push_back({parsed.boundary, parsed.media_type == "multipart/digest"});
  } else if (parsed.media_type == "message/rfc822") {
    in_headers_ = true;
    class_ = HeaderClass::kAttachedMessage;
    content_type_.clear();
    digest_default_ = false;
  }
}

bool MimeStructure::Start(absl::string_view content_type) {
  Enter(content_type, false);
  return in_headers_ || !levels_.empty();
}

void MimeStructure::HeaderField(absl::string_view field) {
  if (!absl::EqualsIgnoreCase(HeaderFieldName(field), "Content-Type")) return;
  content_type_.clear();
  for (char c : field.substr(field.find(':') + 1)) {
    if (c != '\n') content_type_.push_back(c);  // Unfolded.
  }
}

void MimeStructure::EndOfHeaders() {
  if (!in_headers_) return;
  const std::string content_type = std::move(content_type_);
  content_type_.clear();
  Enter(content_type, digest_default_);
}

int MimeStructure::BoundaryLevel(absl::string_view line, bool* closing) const {
  if (!absl::ConsumePrefix(&line, "--")) return -1;
  line = absl::StripTrailingAsciiWhitespace(line);  // RFC 2046: transport padding.
  for (int i = static_cast<int>(levels_.size()) - 1; i >= 0; --i) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, levels_[i].boundary)) continue;
    if (rest.empty() || rest == "--") {
      *closing = !rest.empty();
      return i;
    }
  }
  return -1;
}

bool MimeStructure::IsBoundary(absl::string_view line) const {
  bool closing = false;
  return BoundaryLevel(line, &closing) >= 0;
}

void MimeStructure::BodyLine(absl::string_view line) {
  bool closing = false;
  const int level = BoundaryLevel(line, &closing);
  if (level < 0) return;
  if (closing) {
    levels_.resize(static_cast<size_t>(level));  // Its epilogue follows: body text.
    in_headers_ = false;
    return;
  }
  levels_.resize(static_cast<size_t>(level) + 1);
  in_headers_ = true;
  class_ = HeaderClass::kPart;
  content_type_.clear();
  digest_default_ = levels_.back().digest;
}

}  // namespace postgate::gateway::cleanup
