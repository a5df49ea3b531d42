// Remote delivery over SMTP to one next hop, like Postfix's smtp(8): connect (smtp_connect_timeout),
// greeting and EHLO (smtp_helo_timeout; HELO when EHLO is refused), MAIL FROM with SIZE=, BODY= and
// SMTPUTF8 as the server offers them, RCPT TO per recipient, DATA; with PIPELINING the envelope
// goes in one write; STARTTLS per smtp_tls_security_level. Each step has Postfix's timeout. Every recipient comes back with its own
// outcome: 2xx delivered, 4xx and network trouble deferred, 5xx bounced, with the server's reply
// quoted as Postfix does ("host x[1.2.3.4] said: 550 … (in reply to RCPT TO command)").
// Runs as Asio coroutines on a pool of threads shared by every conversation: a conversation is
// a coroutine, not a thread, so how many run at once is a count the scheduler keeps.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "core/addressing/address_maps.h"
#include "queue-service/model/record.h"
#include "queue-service/delivery/local_delivery.h"
#include "queue-service/delivery/smtp_sasl.h"
#include "queue-service/routing/router.h"

namespace postgate::queue {

// smtp_tls_security_level: none; may (STARTTLS when offered, certificate not checked); encrypt
// (TLS required, certificate not checked); verify (TLS required, certificate chain checked
// against smtp_tls_CAfile and the next hop's name).
enum class SmtpTlsLevel { kNone, kMay, kEncrypt, kVerify };

struct SmtpClientOptions {
  std::string helo_name = "localhost";        // smtp_helo_name
  // myhostname: a server that greets with it, or answers EHLO with it, is ourselves – a loop.
  std::string myhostname;
  SmtpTlsLevel tls_level = SmtpTlsLevel::kNone;
  std::string tls_ca_file;                    // smtp_tls_CAfile (verify)
  // At smtp_tls_security_level = may, a failed TLS handshake is followed at once by a plaintext
  // delivery on a new connection – as Postfix 3.7 does, once the message has waited this long
  // (minimal_backoff_time): its first attempt defers, so a passing fault does not cost TLS.
  absl::Duration plaintext_fallback_after = absl::Seconds(300);
  absl::Duration connect_timeout = absl::Seconds(30);
  absl::Duration helo_timeout = absl::Seconds(300);
  absl::Duration mail_timeout = absl::Seconds(300);
  absl::Duration rcpt_timeout = absl::Seconds(300);
  absl::Duration data_init_timeout = absl::Seconds(120);
  absl::Duration data_xfer_timeout = absl::Seconds(180);
  absl::Duration data_done_timeout = absl::Seconds(600);
  // smtp_tls_wrappermode: TLS from the first byte (port 465, "smtps") instead of STARTTLS. TLS is
  // then required whatever tls_level says; verify still checks the certificate.
  bool tls_wrappermode = false;
  SmtpSaslOptions sasl;  // smtp_sasl_*: logging in to the next hop.
  // smtp_generic_maps: the envelope sender, each recipient and the addresses in the top-level
  // header section's From:, To:… rewritten on the way out (one lookup each, as Postfix's smtp;
  // the queue, its logs and DSNs keep the addresses as stored). Null: none.
  std::shared_ptr<const addressing::AddressMaps> generic_maps;
  bool generic_propagate = false;  // propagate_unmatched_extensions has "generic"
  addressing::AddressMaps::LocalDomainTest generic_is_local{};  // Bare "user" keys for these domains.
};

// One reply from the server: code, enhanced status ("" if none) and the full text, lines joined.
struct ServerReply {
  int code = 0;
  std::string enhanced;
  std::string text;  // "250-a\n250 b" → "250 a / b"-like single line as Postfix logs it.
  std::vector<std::string> lines;  // Texts after the code, for EHLO keywords.
};

// Pure: parses complete reply lines ("250-x", "250 y"); nullopt until the last line has come.
std::optional<ServerReply> ParseServerReply(const std::vector<std::string>& lines);
// Pure: the message as it goes on the wire after DATA: LF → CRLF, dot-stuffed, ending CRLF.CRLF.
std::string ToWireData(absl::string_view stored);

// The same, one stored piece at a time (pieces may split lines anywhere), so a message is sent
// without ever being whole in memory: Encode each piece in order, then Finish.
class WireDataEncoder {
 public:
  std::string Encode(absl::string_view piece);
  std::string Finish();  // The CRLF a last line without LF needs, and the ending ".CRLF".

 private:
  bool line_start_ = true;
};

// Pulls stored content one piece at a time: piece `index` (0, 1, …), or nullopt after the last.
using ContentPieces = std::function<absl::StatusOr<std::optional<std::string>>(uint32_t index)>;

// One address to try for a next hop: the mail exchanger's name and one of its addresses.
struct SmtpCandidate {
  std::string host;
  std::string address;
};

// Postfix's SMTP connection cache: after a transaction the session stays open for
// smtp_connection_cache_time_limit, and the next message to the same next hop goes over it – no
// new connection, greeting, EHLO or TLS handshake – until smtp_connection_reuse_time_limit after
// it was opened or smtp_connection_reuse_count_limit transactions. Postfix keeps a session only
// when mail for that destination is backlogged; Postgate keeps every one that briefly.
struct SmtpConnectionCacheOptions {
  bool enabled = true;                                   // smtp_connection_cache_on_demand
  absl::Duration idle_limit = absl::Seconds(2);          // smtp_connection_cache_time_limit
  absl::Duration reuse_time_limit = absl::Seconds(300);  // smtp_connection_reuse_time_limit
  int reuse_count_limit = 0;                             // smtp_connection_reuse_count_limit (0: none)
};

class SmtpSession;  // One open SMTP connection, with what its server announced.

// Idle sessions by next hop. Thread-safe; a thread of its own finds sessions idle too long and
// has a coroutine on `executor` (the delivery pool's) say QUIT to them.
class SmtpConnectionCache {
 public:
  SmtpConnectionCache(SmtpConnectionCacheOptions options, asio::any_io_executor executor);
  ~SmtpConnectionCache();  // Closes what is still idle (after CloseAll: nothing).
  // Says QUIT on every idle session and waits until each has closed; the executor must still run.
  void CloseAll();
  SmtpConnectionCache(const SmtpConnectionCache&) = delete;
  SmtpConnectionCache& operator=(const SmtpConnectionCache&) = delete;

  // An idle session to `next_hop`, or null.
  std::unique_ptr<SmtpSession> Take(const std::string& next_hop);
  // Keeps `session` for `next_hop`, or closes it when caching is off or its reuse limits are reached.
  void Put(const std::string& next_hop, std::unique_ptr<SmtpSession> session);
  size_t IdleSessions();

 private:
  void CloseIdleLoop();

  const SmtpConnectionCacheOptions options_;
  const asio::any_io_executor executor_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<std::unique_ptr<SmtpSession>>> idle_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread closer_;
};

// Delivers `message` (its envelope; its content read from `content` piece by piece while it is
// sent, so memory stays bounded whatever the size) to `recipients` (indices into the
// message's recipients) at `next_hop`: over a session from `cache` when one is idle there (a
// session the server closed meanwhile is replaced transparently), else trying `candidates` in
// order until one answers. Afterwards the session goes back to `cache` (null: QUIT). One
// outcome per recipient, in the same order, each with the transaction's connection_use. Never
// throws: an exception on the way (Asio, TLS set-up, `content`) defers every recipient with 4.3.0
// "SMTP client error: …". Run it on a strand: a new session's socket takes its executor. Its
// arguments are references: they must outlive the coroutine (co_await it where they live).
asio::awaitable<std::vector<DeliveryOutcome>> DeliverOverSmtp(
    const NextHop& next_hop, const std::vector<SmtpCandidate>& candidates, const SmtpClientOptions& options,
    const rec::Message& message, const std::vector<int>& recipients, const ContentPieces& content,
    SmtpConnectionCache* cache);

}  // namespace postgate::queue
