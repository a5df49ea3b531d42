// DKIM canonicalisation (RFC 6376 §3.4) for Postgate's own Ed25519 signer (rsa-sha256 signatures
// are libopendkim's): header fields "simple" or "relaxed", and the body, streamed, in either form.
// Input is content as the queue stores it (LF line ends); output is what is hashed (CRLF).
// Pure.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace postgate::gateway::dkim {

// One header field (folded lines joined by LF, no final LF) as it is hashed, ending in CRLF.
std::string CanonicalHeader(absl::string_view field, bool relaxed);

// The body, piece by piece (pieces may split lines anywhere): each call appends to *out what is
// known to be part of the canonical body; trailing empty lines are held back until text follows
// them, and dropped at Finish, as both forms require.
class BodyCanonicalizer {
 public:
  explicit BodyCanonicalizer(bool relaxed) : relaxed_(relaxed) {}
  void Feed(absl::string_view piece, std::string* out);
  void Finish(std::string* out);

 private:
  void StartText(std::string* out);  // Text follows: the held-back empty lines are not trailing.

  bool relaxed_;
  bool line_has_text_ = false;  // The current line has a character (relaxed: other than WSP).
  bool pending_space_ = false;  // Relaxed: WSP seen since the last text on this line.
  size_t empty_lines_ = 0;      // Held back.
  bool anything_ = false;       // Any line written.
};

}  // namespace postgate::gateway::dkim
