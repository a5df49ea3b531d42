// Turns the CRLF line ends of BDAT content (RFC 3030: bytes exactly as sent, no dot-stuffing)
// into the LF line ends the queue stores, across arbitrary chunk boundaries. Bare CR and bare LF
// are kept, as the DATA decoder keeps them; a bare LF is noted (smtpd_forbid_bare_newline = reject
// refuses such a message). Pure; state is one pending CR.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace postgate::smtp {

class CrlfToLf {
 public:
  // Appends the converted form of `input` to *out.
  void Convert(absl::string_view input, std::string* out);
  // End of content: emits a pending CR, and a final LF if the content did not end with one.
  void Finish(std::string* out);
  // Bytes appended so far (including by Finish).
  uint64_t output_size() const { return output_size_; }
  // An LF without a CR before it was seen (RFC 3030 §3: text content is canonical, CRLF only).
  bool saw_bare_lf() const { return saw_bare_lf_; }

 private:
  bool pending_cr_ = false;
  bool ends_with_newline_ = true;  // An empty message needs nothing added.
  bool empty_ = true;
  bool saw_bare_lf_ = false;
  uint64_t output_size_ = 0;
};

}  // namespace postgate::smtp
