#include "smtp-gateway/milter/milter_message.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace postgate::gateway::milter {
namespace {

absl::Status FileError(absl::string_view what, const std::string& directory) {
  return absl::InternalError(absl::StrCat("milter spool in ", directory, ": ", what, ": ", std::strerror(errno)));
}

// "Name:" with a field name of printable characters but ':' (RFC 5322 ftext); 0 when not a field.
size_t FieldNameLength(absl::string_view line) {
  size_t i = 0;
  while (i < line.size() && line[i] > ' ' && line[i] < 127 && line[i] != ':') ++i;
  size_t colon = i;
  while (colon < line.size() && (line[colon] == ' ' || line[colon] == '\t')) ++colon;  // "Name :" as Postfix.
  if (i == 0 || colon >= line.size() || line[colon] != ':') return 0;
  return i;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SpoolFile>> SpoolFile::Create(const std::string& directory) {
  const int fd = ::open(directory.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return FileError("cannot create a file", directory);
  return std::unique_ptr<SpoolFile>(new SpoolFile(fd, directory));
}

SpoolFile::~SpoolFile() { ::close(fd_); }

absl::Status SpoolFile::Append(absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(size_));
    if (written < 0) {
      if (errno == EINTR) continue;
      return FileError("write", directory_);
    }
    size_ += static_cast<uint64_t>(written);
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SpoolFile::ReadAt(uint64_t offset, size_t max) const {
  std::string bytes(static_cast<size_t>(std::min<uint64_t>(max, size_ > offset ? size_ - offset : 0)), '\0');
  size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t got = ::pread(fd_, bytes.data() + filled, bytes.size() - filled, static_cast<off_t>(offset + filled));
    if (got < 0) {
      if (errno == EINTR) continue;
      return FileError("read", directory_);
    }
    if (got == 0) return absl::DataLossError(absl::StrCat("milter spool in ", directory_, ": file shrank"));
    filled += static_cast<size_t>(got);
  }
  return bytes;
}

absl::StatusOr<std::unique_ptr<MilterMessage>> MilterMessage::Create(const std::string& spool_directory,
                                                                     size_t header_memory_limit) {
  std::unique_ptr<MilterMessage> message(new MilterMessage(spool_directory, header_memory_limit));
  absl::StatusOr<std::unique_ptr<SpoolFile>> body = SpoolFile::Create(spool_directory);
  if (!body.ok()) return body.status();
  message->body_ = *std::move(body);
  return message;
}

absl::Status MilterMessage::AppendBody(absl::string_view bytes) { return body_->Append(bytes); }

absl::Status MilterMessage::AppendHeaderLine(absl::string_view line) {
  const absl::string_view text = absl::StripSuffix(line, "\n");
  if (text.empty() && absl::EndsWith(line, "\n")) {  // The empty line: the body follows.
    in_headers_ = false;
    separator_ = true;
    return absl::OkStatus();
  }
  const bool continuation = !fields_.empty() && (text.front() == ' ' || text.front() == '\t');
  const size_t name_length = continuation ? 0 : FieldNameLength(text);
  if ((!continuation && name_length == 0) || header_bytes_ + line.size() > header_memory_limit_) {
    in_headers_ = false;  // Not a header field: the body starts here, as with Postfix's cleanup.
    return AppendBody(line);
  }
  header_bytes_ += line.size();
  if (continuation) {
    absl::StrAppend(&fields_.back().value, "\n", text);
    return absl::OkStatus();
  }
  const size_t colon = text.find(':', name_length);
  fields_.push_back(Field{std::string(text.substr(0, name_length)), std::string(text.substr(colon + 1))});
  return absl::OkStatus();
}

absl::Status MilterMessage::Append(absl::string_view piece) {
  while (!piece.empty()) {
    if (!in_headers_) return AppendBody(piece);
    const size_t newline = piece.find('\n');
    if (newline == absl::string_view::npos) {
      partial_line_.append(piece.data(), piece.size());
      if (partial_line_.size() > header_memory_limit_) {
        in_headers_ = false;
        return AppendBody(std::exchange(partial_line_, std::string()));
      }
      return absl::OkStatus();
    }
    partial_line_.append(piece.data(), newline + 1);
    piece.remove_prefix(newline + 1);
    if (absl::Status added = AppendHeaderLine(std::exchange(partial_line_, std::string())); !added.ok()) return added;
  }
  return absl::OkStatus();
}

absl::Status MilterMessage::Finish() {
  if (in_headers_ && !partial_line_.empty()) {
    if (absl::Status added = AppendHeaderLine(std::exchange(partial_line_, std::string())); !added.ok()) return added;
  }
  in_headers_ = false;
  own_received_ = !fields_.empty() && absl::EqualsIgnoreCase(fields_.front().name, "Received") ? 0 : kNone;
  return absl::OkStatus();
}

void MilterMessage::AddHeader(std::string name, std::string value) {
  fields_.push_back(Field{std::move(name), std::move(value)});
}

void MilterMessage::InsertHeader(uint32_t index, std::string name, std::string value) {
  // Relative to the message as delivered: 0 is before our own Received:, which from then on is a
  // header like any other (cleanup_milter.c).
  const size_t position = std::min<size_t>(index, fields_.size());
  if (own_received_ != kNone && position <= own_received_) {
    ++own_received_;
    own_received_counted_ = true;
  }
  fields_.insert(fields_.begin() + static_cast<std::ptrdiff_t>(position),
                 Field{std::move(name), std::move(value)});
}

void MilterMessage::ChangeHeader(uint32_t index, const std::string& name, std::string value) {
  if (index == 0) index = 1;  // Sendmail treats #0 as #1.
  uint32_t seen = 0;
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i == own_received_ && !own_received_counted_) continue;  // Counted as received: not there.
    if (!absl::EqualsIgnoreCase(fields_[i].name, name) || ++seen != index) continue;
    if (absl::StripAsciiWhitespace(value).empty()) {
      fields_.erase(fields_.begin() + static_cast<std::ptrdiff_t>(i));
      if (i == own_received_) {
        own_received_ = kNone;
      } else if (own_received_ != kNone && i < own_received_) {
        --own_received_;
      }
    } else {
      fields_[i].value = std::move(value);
    }
    return;
  }
  if (!absl::StripAsciiWhitespace(value).empty()) AddHeader(name, std::move(value));  // Not there: added, as Postfix does.
}

absl::Status MilterMessage::ReplaceBody(absl::string_view chunk) {
  if (!new_body_) {
    absl::StatusOr<std::unique_ptr<SpoolFile>> file = SpoolFile::Create(spool_directory_);
    if (!file.ok()) return file.status();
    new_body_ = *std::move(file);
    new_body_line_ends_ = smtp::CrlfToLf();
  }
  // CR LF → LF across chunks, as BDAT content is converted.
  std::string converted;
  new_body_line_ends_.Convert(chunk, &converted);
  return new_body_->Append(converted);
}

void MilterMessage::BeginEdits() { new_body_.reset(); }

void MilterMessage::EndOfEdits() {
  if (!new_body_) return;
  std::string rest;
  new_body_line_ends_.Finish(&rest);  // A pending CR; a last line without its end gets one.
  (void)new_body_->Append(rest);
  body_ = std::move(new_body_);
  separator_ = true;
}

absl::StatusOr<std::string> MilterMessage::BodyPieceForMilter(uint64_t* offset, size_t max) const {
  // At most max/2 bytes of the file, so that LF → CR LF stays within `max`.
  absl::StatusOr<std::string> bytes = body_->ReadAt(*offset, std::max<size_t>(max / 2, 1));
  if (!bytes.ok()) return bytes.status();
  *offset += bytes->size();
  std::string converted;
  converted.reserve(bytes->size() * 2);
  for (const char c : *bytes) {
    if (c == '\n') converted += '\r';
    converted += c;
  }
  return converted;
}

std::string MilterMessage::FormatField(const Field& field) { return absl::StrCat(field.name, ":", field.value, "\n"); }

std::string MilterMessage::HeaderSection() const {
  std::string headers;
  for (const Field& field : fields_) absl::StrAppend(&headers, FormatField(field));
  if (separator_) headers += '\n';
  return headers;
}

absl::StatusOr<std::string> MilterMessage::BodyPiece(uint64_t* offset, size_t max) const {
  absl::StatusOr<std::string> bytes = body_->ReadAt(*offset, max);
  if (bytes.ok()) *offset += bytes->size();
  return bytes;
}

}  // namespace postgate::gateway::milter
