// A message while milters inspect and edit it (Postfix's cleanup keeps it in the queue file for
// this): the header fields in memory, the body in an unlinked spool file, so a 10 MB message is
// never held whole in memory. Edits follow Postfix's cleanup_milter: header changes count
// fields as received (our own Received: field, the first, is never shown to milters), inserts
// count them as delivered (position 0 is before our Received:), a change with an empty value
// deletes, a change of a field that is not there adds it. Content uses LF line ends, as the
// queue stores it; milters get and give CR LF.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/smtp/line_endings.h"

namespace postgate::gateway::milter {

// An unlinked file in a directory: written once, read from the start any number of times.
class SpoolFile {
 public:
  static absl::StatusOr<std::unique_ptr<SpoolFile>> Create(const std::string& directory);
  ~SpoolFile();
  absl::Status Append(absl::string_view bytes);
  // Up to `max` bytes from `offset` ("" at the end).
  absl::StatusOr<std::string> ReadAt(uint64_t offset, size_t max) const;
  uint64_t size() const { return size_; }

 private:
  SpoolFile(int fd, std::string directory) : fd_(fd), directory_(std::move(directory)) {}
  int fd_;
  std::string directory_;
  uint64_t size_ = 0;
};

class MilterMessage {
 public:
  struct Field {
    std::string name;
    std::string value;  // After the colon, lines joined by LF, without the last LF.
  };

  // Spools the body under `spool_directory`. The header section is kept in memory up to
  // `header_memory_limit` bytes; what follows counts as body, as a header section without end.
  static absl::StatusOr<std::unique_ptr<MilterMessage>> Create(const std::string& spool_directory,
                                                               size_t header_memory_limit = 1 << 20);

  // The content in pieces split anywhere (LF line ends), then Finish().
  absl::Status Append(absl::string_view piece);
  absl::Status Finish();

  const std::vector<Field>& fields() const { return fields_; }
  // Whether milters are shown field `index`: all but our own Received: (the first field as the
  // message came), wherever edits have moved it – as Postfix's milter8 never shows it.
  bool ShownToMilters(size_t index) const { return index != own_received_; }

  // Milter edits (SMFIR_ADDHEADER, INSHEADER, CHGHEADER; index as the milter sent it). `value`
  // is the field's text after the colon as it is to be stored (the caller adds the space
  // Sendmail puts after the colon unless the milter negotiated SMFIP_HDR_LEADSPC).
  void AddHeader(std::string name, std::string value);
  void InsertHeader(uint32_t index, std::string name, std::string value);
  void ChangeHeader(uint32_t index, const std::string& name, std::string value);
  // SMFIR_REPLBODY: the first chunk starts a new body; the rest follow. CR LF become LF.
  absl::Status ReplaceBody(absl::string_view chunk);
  // Starts a milter's edits: a replacement body a failed milter left unfinished is dropped.
  void BeginEdits();
  // Ends a milter's edits: a replaced body takes the old one's place.
  void EndOfEdits();

  // The body for a milter, one piece at a time: CR LF line ends, at most `max` bytes, read from
  // `*offset` in the spool (advanced); "" once all was read.
  absl::StatusOr<std::string> BodyPieceForMilter(uint64_t* offset, size_t max) const;
  // The header section as stored: each field, then the empty line when there is one.
  std::string HeaderSection() const;
  // The stored body, one piece at a time (at most `max` bytes from `*offset`, advanced); "" at the end.
  absl::StatusOr<std::string> BodyPiece(uint64_t* offset, size_t max) const;
  // A header field as stored: "Name:value\n" (the value keeps its leading space).
  static std::string FormatField(const Field& field);

 private:
  MilterMessage(std::string spool_directory, size_t header_memory_limit)
      : spool_directory_(std::move(spool_directory)), header_memory_limit_(header_memory_limit) {}
  absl::Status AppendHeaderLine(absl::string_view line);  // With its LF (or without at the end).
  absl::Status AppendBody(absl::string_view bytes);

  std::string spool_directory_;
  size_t header_memory_limit_;
  std::vector<Field> fields_;
  size_t header_bytes_ = 0;
  static constexpr size_t kNone = static_cast<size_t>(-1);
  size_t own_received_ = kNone;  // Index of our own Received: field, kNone when there is none.
  // Whether header changes count our own Received: – only once a milter inserted a field before
  // it (cleanup_milter.c: from then on it is a header like any other).
  bool own_received_counted_ = false;
  bool in_headers_ = true;
  bool separator_ = false;   // An empty line ended the header section.
  std::string partial_line_;  // A header-section line not yet ended.
  std::unique_ptr<SpoolFile> body_;
  std::unique_ptr<SpoolFile> new_body_;  // Being replaced.
  smtp::CrlfToLf new_body_line_ends_;
};

}  // namespace postgate::gateway::milter
