// What Postfix's cleanup(8) does to a message's header section on its way into the queue, as a
// pure, incremental filter over the content (LF line ends, the gateway's Received: header first):
//  - the empty line between header and body where it is missing (smtp::HeaderBodySeparator);
//  - hop counting: with hopcount_limit Received: headers or more (ours included) the message is
//    refused at the end ("554 5.4.0 Error: too many hops"), as Postfix 3.7 does;
//  - header completion for clients in local_header_rewrite_clients (or always_add_missing_headers):
//    a missing Message-Id:, Date: and From: – or, once any Resent- header is present, the missing
//    Resent-Message-Id:, Resent-Date: and Resent-From: – appended at the end of the header section
//    in Postfix's formats, and undisclosed_recipients_header when no To:/Cc: is present;
//  - one header field longer than header_size_limit keeps its first header_size_limit bytes;
//  - for local_header_rewrite_clients, the addresses in From:, To:… rewritten (AddressRewriting);
//  - header_checks with Postfix's actions REJECT, WARN, INFO, IGNORE, STRIP, REPLACE, PREPEND, HOLD,
//    DISCARD, REDIRECT, PASS, DUNNO/OK, each recorded for the log line cleanup writes; MIME headers
//    (Content-*, MIME-Version) go to mime_header_checks instead, and so does every header of a
//    multipart body's parts; an attached message's (message/rfc822) other headers go to
//    nested_header_checks. The body is followed line by line (MimeStructure) only when one of
//    those two tables is set and the message is multipart or an attached message.
// Header fields, the end of the header section and the body are also shown to an optional
// ContentObserver (the DKIM signer), exactly as they are stored. Memory: one header field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/config/regexp_table.h"
#include "core/smtp/header_body_separator.h"
#include "smtp-gateway/cleanup/address_rewriting.h"
#include "smtp-gateway/cleanup/mime_structure.h"

namespace postgate::gateway::cleanup {

// Sees the message as it is stored: each header field (folded lines, each ending in LF), then the
// end of the header section, then the body in pieces.
class ContentObserver {
 public:
  virtual ~ContentObserver() = default;
  virtual void HeaderField(absl::string_view field) = 0;
  virtual void EndOfHeaders() = 0;
  virtual void Body(absl::string_view piece) = 0;
};

struct CleanupOptions {
  bool add_missing_headers = false;  // The client is in local_header_rewrite_clients, or always_add_missing_headers.
  std::string myhostname;            // Message-Id: <time.queueid@myhostname>
  std::string queue_id;
  absl::Time arrival;                // Message-Id: in UTC; Date: in local time.
  absl::TimeZone local_zone = absl::LocalTimeZone();
  std::string sender;                // Envelope sender; "" for <> (From: MAILER-DAEMON).
  int hopcount_limit = 50;
  size_t header_size_limit = 102400;
  std::string undisclosed_recipients_header{};  // Postfix ≥ 2.8's default: "" (add nothing).
  const config::RegexpTable* header_checks = nullptr;       // Null: none.
  const config::RegexpTable* mime_header_checks = nullptr;  // MIME-Version, Content-*; null: none.
  const config::RegexpTable* nested_header_checks = nullptr;  // An attached message's headers; null: none.
  // Header address rewriting (after header_checks, as Postfix): set for local_header_rewrite_clients.
  const AddressRewriting* header_rewriting = nullptr;
};

// A header_checks action taken, for Postfix's log line "<action>: header <header> from …: <text>".
struct HeaderAction {
  std::string action;  // "reject", "warning", "info", "replace", "prepend", "hold", "discard", "redirect", "strip"
  std::string header;  // The header it matched (its first 200 bytes, folds as spaces).
  std::string text;
};

// Postfix's is_header(): `text` starts "name:" – printable characters other than ':', optional
// blanks, then ':' (header_checks' PREPEND/REPLACE text, undisclosed_recipients_header).
bool IsHeaderText(absl::string_view text);
// A header field's name: up to ':', trailing blanks dropped ("" when there is no ':').
absl::string_view HeaderFieldName(absl::string_view field);

// The first word of a header_checks result that Postgate does not act on (BCC, FILTER…), or
// nullopt when it is one it does; for checking a table when it is loaded.
std::optional<std::string> UnsupportedHeaderAction(absl::string_view result);

class MessageCleanup {
 public:
  // `observer` may be null; it must outlive this object.
  MessageCleanup(CleanupOptions options, ContentObserver* observer);

  // Appends the cleaned-up form of `content` to *out.
  void Feed(absl::string_view content, std::string* out);
  // While body_passes_through(), the caller may append content to the output itself and only
  // show it to the observer with this: no copy.
  void ObserveBody(absl::string_view stored) {
    if (observer_ != nullptr) observer_->Body(stored);
  }
  // The content ended: the header section (if the content ended in it) is completed.
  void Finish(std::string* out);

  bool too_many_hops() const { return hops_ >= options_.hopcount_limit; }
  int hops() const { return hops_; }
  // The Message-Id: as Postfix logs it ("<…>", or "<>" when there is none); known after Finish or
  // once the body began.
  const std::string& message_id() const { return message_id_; }
  // In the body, and the body is not followed (no MIME part headers to check): content passes as is.
  bool body_passes_through() const { return state_ == State::kBody && !follow_mime_; }

  // header_checks' outcome, known once the header section ended.
  const std::vector<HeaderAction>& actions() const { return actions_; }
  // REJECT: the reply's code ("550", or "451" for a 4.x.x text), enhanced code and text.
  struct Rejection {
    int code = 550;
    std::string enhanced;
    std::string text;
  };
  const std::optional<Rejection>& rejection() const { return rejection_; }
  bool discard() const { return discard_; }
  const std::optional<std::string>& hold() const { return hold_; }  // The reason ("" for none).
  const std::string& redirect() const { return redirect_; }         // "" unless REDIRECT.
  // Header address rewriting's warnings (canonical map loops…), for cleanup's log.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  enum class State { kHeaders, kBody };
  // Bits for the headers whose presence decides what is added.
  enum Seen : uint32_t {
    kMessageId = 1 << 0,
    kDate = 1 << 1,
    kFrom = 1 << 2,
    kResentMessageId = 1 << 3,
    kResentDate = 1 << 4,
    kResentFrom = 1 << 5,
    kVisibleRecipient = 1 << 6,  // To, Cc, Resent-To, Resent-Cc
    kResent = 1 << 7,            // Any Resent- header Postfix knows.
  };

  void ParseHeaders(absl::string_view text, std::string* out);
  void EndField(std::string* out);
  void EndHeaders(bool empty_line_follows, std::string* out);
  void Emit(absl::string_view field, std::string* out);
  // Applies header_checks to field_; false when the field is dropped. May emit a PREPEND.
  bool CheckHeader(std::string* out);
  // The header_checks-style table's verdict on `field_text` (ending in LF): false to drop it; it
  // may be replaced in place; a PREPEND's field goes to *prepend.
  bool ApplyHeaderChecks(const config::RegexpTable* table, std::string& field_text, std::string* prepend);
  // The body, followed through its MIME structure.
  void FeedStructuredBody(absl::string_view content, std::string* out);
  void BodyLine(absl::string_view line, std::string* out);  // A complete line, LF included.
  void EndPartField(std::string* out);
  void EmitBody(absl::string_view text, std::string* out);
  std::string FromAddress() const;

  CleanupOptions options_;
  ContentObserver* observer_;
  smtp::HeaderBodySeparator separator_;
  State state_ = State::kHeaders;
  std::string field_;       // The header field being read (complete lines only are checked).
  bool field_truncated_ = false;
  bool at_line_start_ = true;
  uint32_t seen_ = 0;
  int hops_ = 0;
  std::string message_id_ = "<>";
  std::string separated_;   // Scratch: the separator's output while in the header section.
  bool filtering_ = true;   // REJECT, DISCARD, REDIRECT and PASS end header_checks.
  std::vector<HeaderAction> actions_;
  std::optional<Rejection> rejection_;
  bool discard_ = false;
  std::optional<std::string> hold_;
  std::string redirect_;
  std::vector<std::string> warnings_;
  std::string content_type_;    // The top-level Content-Type value, as received.
  bool follow_mime_ = false;    // The body is read through mime_.
  MimeStructure mime_;
  std::string body_line_;       // A body line held back until it is known not to be a boundary.
  bool line_streaming_ = false; // The current body line is plain text, passed on as it comes.
  std::string part_field_;      // A part's header field being read.
};

// Postfix's quote_822_local: the address with its local part quoted when it is not a dot-atom,
// e.g. `a b@example.com` → `"a b"@example.com`. `address` may have its local part quoted already.
std::string QuoteLocalPart(absl::string_view address);

}  // namespace postgate::gateway::cleanup
