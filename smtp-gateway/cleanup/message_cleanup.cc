#include "smtp-gateway/cleanup/message_cleanup.h"

#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/smtp/address.h"

namespace postgate::gateway::cleanup {
namespace {

// The value as Postfix logs it: after the colon and leading blanks, folding undone.
std::string UnfoldedValue(absl::string_view field) {
  absl::string_view value = field.substr(field.find(':') + 1);
  value = absl::StripAsciiWhitespace(value);
  std::string unfolded;
  unfolded.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\n') continue;  // A fold: the blank that follows stays.
    unfolded.push_back(value[i]);
  }
  return unfolded;
}

bool IsAtext(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr ||
         static_cast<unsigned char>(c) >= 0x80;  // UTF-8 (RFC 6532).
}

bool IsDotAtom(absl::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '.') {
      if (text[i + 1] == '.') return false;
    } else if (!IsAtext(text[i])) {
      return false;
    }
  }
  return true;
}

// The headers Postfix hands to mime_header_checks instead of header_checks.
bool IsMimeHeader(absl::string_view name) {
  for (absl::string_view mime : {"Content-Description", "Content-Disposition", "Content-ID",
                                 "Content-Transfer-Encoding", "Content-Type", "MIME-Version"}) {
    if (absl::EqualsIgnoreCase(name, mime)) return true;
  }
  return false;
}

bool IsEnhancedCode(absl::string_view word) {
  if (word.size() < 5 || (word[0] != '4' && word[0] != '5') || word[1] != '.') return false;
  int dots = 0;
  for (char c : word) {
    if (c == '.') ++dots;
    else if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return dots == 2;
}

constexpr absl::string_view kSupportedActions[] = {"REJECT", "WARN", "INFO", "IGNORE", "STRIP", "REPLACE", "PREPEND",
                                                   "HOLD", "DISCARD", "REDIRECT", "PASS", "DUNNO", "OK"};

}  // namespace

bool IsHeaderText(absl::string_view text) {
  size_t i = 0;
  while (i < text.size() && text[i] > 32 && text[i] < 127 && text[i] != ':') ++i;
  if (i == 0) return false;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  return i < text.size() && text[i] == ':';
}

absl::string_view HeaderFieldName(absl::string_view field) {
  const size_t colon = field.find(':');
  if (colon == absl::string_view::npos) return {};
  return absl::StripTrailingAsciiWhitespace(field.substr(0, colon));
}

std::optional<std::string> UnsupportedHeaderAction(absl::string_view result) {
  const absl::string_view word = result.substr(0, result.find_first_of(" \t"));
  for (absl::string_view supported : kSupportedActions) {
    if (absl::EqualsIgnoreCase(word, supported)) return std::nullopt;
  }
  return std::string(word);
}

std::string QuoteLocalPart(absl::string_view address) {
  const smtp::MailboxParts parts = smtp::SplitMailbox(address);
  std::string local;
  absl::string_view quoted = parts.local_part;
  if (quoted.size() >= 2 && quoted.front() == '"' && quoted.back() == '"') {
    quoted = quoted.substr(1, quoted.size() - 2);
    for (size_t i = 0; i < quoted.size(); ++i) {
      if (quoted[i] == '\\' && i + 1 < quoted.size()) ++i;
      local.push_back(quoted[i]);
    }
  } else {
    local = std::string(quoted);
  }
  std::string result;
  if (IsDotAtom(local)) {
    result = local;
  } else {
    result.reserve(local.size() + 2);
    result.push_back('"');
    for (char c : local) {
      if (c == '"' || c == '\\') result.push_back('\\');
      result.push_back(c);
    }
    result.push_back('"');
  }
  if (!parts.domain.empty()) absl::StrAppend(&result, "@", parts.domain);
  return result;
}

MessageCleanup::MessageCleanup(CleanupOptions options, ContentObserver* observer)
    : options_(std::move(options)), observer_(observer) {}

void MessageCleanup::Feed(absl::string_view content, std::string* out) {
  if (state_ == State::kBody) {
    if (follow_mime_) return FeedStructuredBody(content, out);
    out->append(content.data(), content.size());
    if (observer_ != nullptr) observer_->Body(content);
    return;
  }
  separated_.clear();
  separator_.Feed(content, &separated_);
  ParseHeaders(separated_, out);
}

void MessageCleanup::Finish(std::string* out) {
  if (state_ == State::kBody) {
    if (!follow_mime_) return;
    if (!body_line_.empty()) BodyLine(std::exchange(body_line_, std::string()), out);
    EndPartField(out);
    return;
  }
  separated_.clear();
  separator_.Finish(&separated_);
  ParseHeaders(separated_, out);
  if (state_ == State::kBody) return;
  EndField(out);
  EndHeaders(/*empty_line_follows=*/false, out);
}

void MessageCleanup::ParseHeaders(absl::string_view text, std::string* out) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (state_ == State::kBody) {
      Feed(text.substr(pos), out);
      return;
    }
    if (at_line_start_) {
      const char c = text[pos];
      if (c == '\n') {  // The empty line: the header section is complete.
        EndField(out);
        EndHeaders(/*empty_line_follows=*/true, out);
        ++pos;
        continue;
      }
      if (c != ' ' && c != '\t') EndField(out);  // Not a continuation: a new field begins.
    }
    const size_t newline = text.find('\n', pos);
    const size_t stop = newline == absl::string_view::npos ? text.size() : newline + 1;
    const size_t room = options_.header_size_limit > field_.size() ? options_.header_size_limit - field_.size() : 0;
    const size_t take = std::min(room, stop - pos);
    field_.append(text.data() + pos, take);
    field_truncated_ |= take < stop - pos;
    at_line_start_ = newline != absl::string_view::npos;
    pos = stop;
  }
}

bool MessageCleanup::CheckHeader(std::string* out) {
  const absl::string_view name = HeaderFieldName(field_);
  std::string prepend;
  const bool keep =
      ApplyHeaderChecks(IsMimeHeader(name) ? options_.mime_header_checks : options_.header_checks, field_, &prepend);
  if (!prepend.empty()) Emit(prepend, out);
  return keep;
}

bool MessageCleanup::ApplyHeaderChecks(const config::RegexpTable* table, std::string& field_text, std::string* prepend) {
  if (!filtering_ || table == nullptr) return true;
  const absl::string_view field = absl::string_view(field_text).substr(0, field_text.size() - 1);  // Without its LF.
  const std::optional<std::string> result = table->Match(field);
  if (!result) return true;
  const absl::string_view value = *result;
  const size_t space = value.find_first_of(" \t");
  const absl::string_view word = value.substr(0, space);
  const std::string text(space == absl::string_view::npos ? "" : absl::StripLeadingAsciiWhitespace(value.substr(space)));
  std::string header(field.substr(0, 200));
  for (char& c : header) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  auto record = [&](absl::string_view action, std::string action_text) {
    actions_.push_back({std::string(action), header, std::move(action_text)});
  };
  const auto is = [&word](absl::string_view action) { return absl::EqualsIgnoreCase(word, action); };
  if (is("REJECT")) {
    Rejection rejection;
    const absl::string_view first = absl::string_view(text).substr(0, text.find(' '));
    if (text.empty()) {
      rejection.enhanced = "5.7.1";
      rejection.text = "message content rejected";
    } else if (IsEnhancedCode(first)) {
      rejection.enhanced = std::string(first);
      rejection.text = std::string(absl::StripLeadingAsciiWhitespace(absl::string_view(text).substr(first.size())));
    } else {
      rejection.enhanced = "5.7.1";
      rejection.text = text;
    }
    rejection.code = rejection.enhanced[0] == '4' ? 451 : 550;
    record("reject", absl::StrCat(rejection.enhanced, " ", rejection.text));
    rejection_ = std::move(rejection);
    filtering_ = false;
  } else if (is("WARN")) {
    record("warning", text);
  } else if (is("INFO")) {
    record("info", text);
  } else if (is("IGNORE")) {
    return false;
  } else if (is("STRIP")) {
    record("strip", text);
    return false;
  } else if (is("REPLACE") && IsHeaderText(text)) {
    record("replace", text);
    field_text = absl::StrCat(text, "\n");
  } else if (is("PREPEND") && IsHeaderText(text)) {
    record("prepend", text);
    *prepend = absl::StrCat(text, "\n");
  } else if (is("HOLD")) {
    if (!hold_ && !discard_) {
      record("hold", text);
      hold_ = text;
    }
  } else if (is("DISCARD")) {
    record("discard", text);
    discard_ = true;
    filtering_ = false;
  } else if (is("REDIRECT") && text.find('@') != std::string::npos) {
    record("redirect", text);
    redirect_ = text;
    filtering_ = false;
  } else if (is("PASS")) {
    record("pass", text);
    filtering_ = false;
  }
  // DUNNO, OK, and a REPLACE/PREPEND/REDIRECT without proper text (Postfix warns and goes on).
  return true;
}

void MessageCleanup::EndField(std::string* out) {
  if (field_.empty()) return;
  if (field_.back() != '\n') field_.push_back('\n');  // Truncated, or the content's last line.
  if (absl::EqualsIgnoreCase(HeaderFieldName(field_), "Content-Type")) content_type_ = UnfoldedValue(field_);
  if (!CheckHeader(out)) {
    field_.clear();
    field_truncated_ = false;
    return;
  }
  if (options_.header_rewriting != nullptr) {
    if (std::optional<std::string> rewritten = options_.header_rewriting->RewriteHeader(field_, &warnings_)) {
      field_ = *std::move(rewritten);
    }
  }
  const absl::string_view name = HeaderFieldName(field_);
  const auto is = [&name](absl::string_view known) { return absl::EqualsIgnoreCase(name, known); };
  if (is("Received")) {
    ++hops_;
  } else if (is("Message-Id")) {
    seen_ |= kMessageId;
    if (message_id_ == "<>") message_id_ = UnfoldedValue(field_);
  } else if (is("Date")) {
    seen_ |= kDate;
  } else if (is("From")) {
    seen_ |= kFrom;
  } else if (is("To") || is("Cc")) {
    seen_ |= kVisibleRecipient;
  } else if (absl::StartsWithIgnoreCase(name, "Resent-")) {
    if (is("Resent-Message-Id")) {
      seen_ |= kResent | kResentMessageId;
    } else if (is("Resent-Date")) {
      seen_ |= kResent | kResentDate;
    } else if (is("Resent-From")) {
      seen_ |= kResent | kResentFrom;
    } else if (is("Resent-To") || is("Resent-Cc")) {
      seen_ |= kResent | kVisibleRecipient;
    } else if (is("Resent-Bcc") || is("Resent-Reply-To") || is("Resent-Sender")) {
      seen_ |= kResent;
    }
  }
  Emit(field_, out);
  field_.clear();
  field_truncated_ = false;
}

void MessageCleanup::EmitBody(absl::string_view text, std::string* out) {
  out->append(text.data(), text.size());
  if (observer_ != nullptr) observer_->Body(text);
}

// Lines that may be a boundary ("--" then at most 70 characters, RFC 2046, and some padding) are
// held until their end; other body lines pass on as they come, so a long line is never held.
void MessageCleanup::FeedStructuredBody(absl::string_view content, std::string* out) {
  constexpr size_t kLongestBoundaryLine = 2 + 70 + 2 + 64;
  while (!content.empty()) {
    const size_t newline = content.find('\n');
    const absl::string_view piece = content.substr(0, newline == absl::string_view::npos ? content.size() : newline + 1);
    content.remove_prefix(piece.size());
    const bool line_ends = piece.back() == '\n';
    if (line_streaming_) {
      EmitBody(piece, out);
      line_streaming_ = !line_ends;
      continue;
    }
    body_line_.append(piece.data(), piece.size());
    if (line_ends) {
      BodyLine(std::exchange(body_line_, std::string()), out);
      continue;
    }
    // Still open: keep holding it only while it may be a boundary or a part's header line.
    const bool may_be_boundary = absl::StartsWith(body_line_, "--") || body_line_ == "-";
    if (!mime_.in_headers() && (!may_be_boundary || body_line_.size() > kLongestBoundaryLine)) {
      EmitBody(body_line_, out);
      body_line_.clear();
      line_streaming_ = true;
    } else if (mime_.in_headers() && body_line_.size() > options_.header_size_limit) {
      body_line_.resize(options_.header_size_limit);  // As the top-level header: the rest is dropped.
    }
  }
}

void MessageCleanup::BodyLine(absl::string_view line, std::string* out) {
  absl::string_view text = line;
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (mime_.in_headers()) {
    if (text.empty()) {  // The end of the part's header section.
      EndPartField(out);
      mime_.EndOfHeaders();
      EmitBody(line, out);
      return;
    }
    if ((text.front() == ' ' || text.front() == '\t') && !part_field_.empty()) {
      if (part_field_.size() < options_.header_size_limit) absl::StrAppend(&part_field_, line);
      return;
    }
    if (!mime_.IsBoundary(text)) {
      EndPartField(out);
      part_field_ = std::string(line);
      if (part_field_.back() != '\n') part_field_.push_back('\n');
      return;
    }
    // A boundary where headers were expected: the header section ends there.
    EndPartField(out);
    mime_.EndOfHeaders();
  }
  mime_.BodyLine(text);
  EmitBody(line, out);
}

void MessageCleanup::EndPartField(std::string* out) {
  if (part_field_.empty()) return;
  mime_.HeaderField(part_field_);
  const bool mime_header = IsMimeHeader(HeaderFieldName(part_field_));
  const config::RegexpTable* table =
      mime_header || mime_.header_class() == MimeStructure::HeaderClass::kPart ? options_.mime_header_checks
                                                                               : options_.nested_header_checks;
  std::string prepend;
  const bool keep = ApplyHeaderChecks(table, part_field_, &prepend);
  if (!prepend.empty()) EmitBody(prepend, out);
  if (keep) EmitBody(part_field_, out);
  part_field_.clear();
}

void MessageCleanup::Emit(absl::string_view field, std::string* out) {
  out->append(field.data(), field.size());
  if (observer_ != nullptr) observer_->HeaderField(field);
}

std::string MessageCleanup::FromAddress() const {
  return options_.sender.empty() ? "MAILER-DAEMON" : QuoteLocalPart(options_.sender);
}

void MessageCleanup::EndHeaders(bool empty_line_follows, std::string* out) {
  if (options_.add_missing_headers) {
    const bool resent = (seen_ & kResent) != 0;
    const absl::string_view prefix = resent ? "Resent-" : "";
    if ((seen_ & (resent ? kResentMessageId : kMessageId)) == 0) {
      // The time in UTC and the queue ID keep it unique, as Postfix's short queue IDs do.
      const std::string id = absl::StrCat(absl::FormatTime("%Y%m%d%H%M%S", options_.arrival, absl::UTCTimeZone()),
                                          ".", options_.queue_id, "@", options_.myhostname);
      Emit(absl::StrCat(prefix, "Message-Id: <", id, ">\n"), out);
      if (!resent && message_id_ == "<>") message_id_ = absl::StrCat("<", id, ">");
    }
    if ((seen_ & (resent ? kResentDate : kDate)) == 0) {
      Emit(absl::StrCat(prefix, "Date: ",
                        absl::FormatTime("%a, %d %b %Y %H:%M:%S %z (%Z)", options_.arrival, options_.local_zone), "\n"),
           out);
    }
    if ((seen_ & (resent ? kResentFrom : kFrom)) == 0) Emit(absl::StrCat(prefix, "From: ", FromAddress(), "\n"), out);
    if ((seen_ & kVisibleRecipient) == 0 && !options_.undisclosed_recipients_header.empty()) {
      Emit(absl::StrCat(options_.undisclosed_recipients_header, "\n"), out);
    }
  }
  if (empty_line_follows) out->push_back('\n');
  if (observer_ != nullptr) observer_->EndOfHeaders();
  state_ = State::kBody;
  // Part headers are checked only where there are parts, and tables to check them with.
  follow_mime_ = (options_.mime_header_checks != nullptr || options_.nested_header_checks != nullptr) &&
                 mime_.Start(content_type_);
}

}  // namespace postgate::gateway::cleanup
