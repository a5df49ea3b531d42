// The Sendmail milter protocol (version 6, as Postfix's milter8 client speaks it), the wire
// format only: packets the MTA sends (a 4-byte big-endian length, a command byte, its data) and
// the milter's replies, read from a byte stream that may split them anywhere. No I/O, no policy:
// what to do with a reply is the caller's. // Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace postgate::gateway::milter {

inline constexpr uint32_t kProtocolVersion = 6;
// The largest packet either side may send: libmilter's MILTER_MAX_DATA_SIZE default.
inline constexpr size_t kMaxPacketData = 65535;
// Body chunks are at most this long (MILTER_CHUNK_SIZE).
inline constexpr size_t kBodyChunk = 65535;

// SMFIF_*: what a milter may ask of the MTA at the end of a message.
enum Action : uint32_t {
  kAddHeaders = 1u << 0,
  kChangeBody = 1u << 1,
  kAddRecipient = 1u << 2,
  kDeleteRecipient = 1u << 3,
  kChangeHeaders = 1u << 4,
  kQuarantine = 1u << 5,
  kChangeSender = 1u << 6,
  kAddRecipientWithArgs = 1u << 7,
  kSetMacroList = 1u << 8,
};
// SMFIP_*: what the milter does not want sent, or will not reply to.
enum ProtocolFlag : uint32_t {
  kNoConnect = 1u << 0,
  kNoHelo = 1u << 1,
  kNoMail = 1u << 2,
  kNoRecipient = 1u << 3,
  kNoBody = 1u << 4,
  kNoHeaders = 1u << 5,
  kNoEndOfHeaders = 1u << 6,
  kNoHeaderReply = 1u << 7,
  kNoUnknown = 1u << 8,
  kNoData = 1u << 9,
  kSkip = 1u << 10,
  kRejectedRecipients = 1u << 11,
  kNoConnectReply = 1u << 12,
  kNoHeloReply = 1u << 13,
  kNoMailReply = 1u << 14,
  kNoRecipientReply = 1u << 15,
  kNoDataReply = 1u << 16,
  kNoUnknownReply = 1u << 17,
  kNoEndOfHeadersReply = 1u << 18,
  kNoBodyReply = 1u << 19,
  kHeaderLeadingSpace = 1u << 20,
};
// SMFIM_*: the stages macros are sent for.
enum class MacroStage : uint32_t { kConnect = 0, kHelo = 1, kMail = 2, kRecipient = 3, kData = 4, kEndOfMessage = 5, kEndOfHeaders = 6 };

// One packet from the MTA: length, command, data.
std::string Packet(char command, absl::string_view data);

std::string OptionNegotiation(uint32_t actions, uint32_t protocol, uint32_t version = kProtocolVersion);
// SMFIC_MACRO for the command `for_command` ('C', 'H', 'M', 'R', 'T', 'N', 'E'): name, value pairs.
std::string Macros(char for_command, const std::vector<std::pair<std::string, std::string>>& macros);
enum class Family : char { kUnknown = 'U', kUnix = 'L', kInet = '4', kInet6 = '6' };
std::string Connect(absl::string_view hostname, Family family, uint16_t port, absl::string_view address);
std::string Helo(absl::string_view name);
// MAIL / RCPT: "<address>" first, then the ESMTP parameters, each NUL-terminated.
std::string Mail(absl::string_view address, const std::vector<std::string>& parameters);
std::string Recipient(absl::string_view address, const std::vector<std::string>& parameters);
std::string Data();
std::string Header(absl::string_view name, absl::string_view value);
std::string EndOfHeaders();
std::string Body(absl::string_view chunk);  // At most kBodyChunk bytes.
std::string EndOfMessage();
std::string Abort();
std::string Quit();
std::string QuitNewConnection();  // SMFIC_QUIT_NC: end the session, keep the connection.

// A milter's reply, decoded.
struct Reply {
  enum class Kind {
    kOptionNegotiation,  // version, actions, protocol, macro_lists
    kAccept,
    kContinue,
    kReject,
    kTempfail,
    kDiscard,
    kConnectionFailure,
    kReplyCode,       // text: "550 5.7.1 text" (multi-line with "550-…\r\n")
    kQuarantine,      // text: the reason
    kAddHeader,       // name, value
    kInsertHeader,    // index, name, value
    kChangeHeader,    // index (1-based among same-name fields), name, value ("" deletes)
    kAddRecipient,    // address, text: ESMTP arguments (kAddRecipientWithArgs)
    kDeleteRecipient, // address
    kReplaceBody,     // text: a chunk of the new body
    kChangeSender,    // address, text: ESMTP arguments
    kProgress,
    kSkip,
  };
  Kind kind = Kind::kContinue;
  uint32_t version = 0, actions = 0, protocol = 0;
  std::vector<std::pair<MacroStage, std::string>> macro_lists;  // SMFIR_SETSYMLIST data in OPTNEG.
  uint32_t index = 0;
  std::string name, value, address, text;
};

// Reads replies from the bytes a milter sends, however they are split.
class ReplyReader {
 public:
  void Feed(absl::string_view bytes) { buffer_.append(bytes.data(), bytes.size()); }
  // The next complete reply; nullopt until one is complete; an error for a malformed or
  // oversized packet (the connection is then unusable).
  std::optional<absl::StatusOr<Reply>> Next();

 private:
  std::string buffer_;
};

// Decodes one packet's command and data.
absl::StatusOr<Reply> DecodeReply(char command, absl::string_view data);

// What the MTA offers in its option negotiation: every action, and every protocol flag of version 6.
inline constexpr uint32_t kAllActions = 0x1ff;
inline constexpr uint32_t kAllProtocolFlags = 0x1fffff;
// The protocol flags the MTA offers for milter_protocol `version` (2, 3, 4 or 6), as Postfix's
// milter8: version 6 offers them all; 0 for a version Postfix does not speak.
uint32_t OfferedProtocolFlags(uint32_t version);

// The outcome of option negotiation: what the milter may do and which events it gets.
struct Negotiated {
  uint32_t version = 0;
  uint32_t actions = 0;  // Action bits the milter may use at the end of a message.
  uint32_t events = 0;   // ProtocolFlag bits: events not to send, replies not to wait for.
  std::vector<std::pair<MacroStage, std::string>> macro_lists;
  // Whether an event is sent (`no_send`: its kNo… flag) and whether its reply is awaited
  // (`no_reply`: its kNo…Reply flag, 0 when it always has one).
  bool Sends(uint32_t no_send) const { return (events & no_send) == 0; }
  bool AwaitsReply(uint32_t no_reply) const { return no_reply == 0 || (events & no_reply) == 0; }
};
// Checks the milter's answer to OptionNegotiation(offered_actions, offered_protocol), as Postfix's
// milter8 does: an older version than 2, actions or protocol flags that were not offered, or a
// reply that is no negotiation, is an error naming what was asked (the milter is then not used).
absl::StatusOr<Negotiated> Negotiate(const Reply& reply, uint32_t offered_actions, uint32_t offered_protocol);

}  // namespace postgate::gateway::milter
