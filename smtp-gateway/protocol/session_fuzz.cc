// libFuzzer target: a whole client side of an SMTP session – bytes split into command lines by
// LineReader, each parsed and answered by SessionMachine with the real relay policy of the
// reference configuration (client outside mynetworks). Every queue step "succeeds" or fails as the
// input's first byte says. Checks that every command gets a well-formed reply and that nothing
// crashes, leaks or overflows (ASan/UBSan).
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "core/addressing/local_domain.h"
#include "core/config/aliases.h"
#include "core/config/main_cf.h"
#include "core/smtp/line_reader.h"
#include "smtp-gateway/policy/relay_policy.h"
#include "smtp-gateway/protocol/session_machine.h"

namespace {

using namespace postgate;

struct Fixture {
  Fixture() {
    absl::StatusOr<config::MainCf> cf = config::MainCf::Parse(
        "myhostname = mail169.com\nmydestination = $myhostname, localhost\nmynetworks = 127.0.0.0/8\n"
        "recipient_delimiter = +\npostgate_local_users = foo, bar\n",
        "fuzz.cf", "mail169.com");
    if (!cf.ok()) std::abort();
    config::AliasTable aliases;
    if (!aliases.Parse("postmaster: bar\nteam: foo, bar\n", "aliases").ok()) std::abort();
    domain = std::make_unique<addressing::LocalDomain>(*cf, std::move(aliases));
    auto networks = gateway::policy::NetworkList::Parse({"127.0.0.0/8"});
    if (!networks.ok()) std::abort();
    policy = std::make_unique<gateway::policy::RelayPolicy>(*domain, *std::move(networks),
                                                           std::vector<std::string>{"mail169.com"});
  }
  std::unique_ptr<addressing::LocalDomain> domain;
  std::unique_ptr<gateway::policy::RelayPolicy> policy;
};

void CheckReply(const gateway::protocol::Step& step) {
  if (!step.reply) return;
  const std::string text = step.reply->Format();
  // "ddd" then " " or "-", ending in CRLF; a code a client can act on.
  if (text.size() < 6 || (text[3] != ' ' && text[3] != '-') || text.substr(text.size() - 2) != "\r\n") std::abort();
  if (step.reply->code < 200 || step.reply->code > 599) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  if (size == 0) return 0;
  const bool queue_ok = data[0] & 1;
  const absl::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::unique_ptr<gateway::protocol::Decider> decider = fixture.policy->ForClient("192.0.2.7");
  gateway::protocol::ProtocolLimits limits{"mail169.com", "mail169.com ESMTP Postgate", 10240000, 50};
  limits.tls_available = true;
  gateway::protocol::SessionMachine machine(limits, *decider);
  smtp::LineReader reader(512);
  size_t offset = 0;
  for (int commands = 0; commands < 10000; ++commands) {
    size_t consumed = 0;
    std::optional<smtp::CommandLine> line = reader.Next(input.substr(offset), &consumed);
    offset += consumed;
    if (!line) break;
    gateway::protocol::Step step = machine.OnLine(*line);
    CheckReply(step);
    switch (step.action) {
      case gateway::protocol::Action::kOpenQueue:
        step = machine.QueueOpened(queue_ok, !queue_ok && (data[0] & 2));
        CheckReply(step);
        if (step.action == gateway::protocol::Action::kReadData) {
          CheckReply(machine.DataFinished(queue_ok ? gateway::protocol::DataOutcome::kQueued
                                                   : gateway::protocol::DataOutcome::kQueueError,
                                          "4F1A09C2B70"));
        }
        break;
      case gateway::protocol::Action::kReadChunk:
        CheckReply(machine.BdatChunkRead(
            machine.bdat_chunk().discard ? gateway::protocol::BdatOutcome::kDiscarded
            : machine.bdat_chunk().last  ? gateway::protocol::BdatOutcome::kQueued
                                         : gateway::protocol::BdatOutcome::kKept,
            machine.bdat_chunk().size, "4F1A09C2B70"));
        break;
      case gateway::protocol::Action::kStartTls:
        machine.TlsStarted();
        break;
      case gateway::protocol::Action::kFlushQueue:
        CheckReply(machine.EtrnFinished(queue_ok));
        break;
      case gateway::protocol::Action::kClose:
        return 0;
      default:
        break;
    }
  }
  return 0;
}
