// queuectl: the queue status API from a shell. Human tables by default (list follows mailq's
// layout), the API's own JSON with --json. Exit codes: 0 ok, 1 the server failed or is
// unreachable, 2 no such message or bad argument, 64 bad usage.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "postgate/queue/v1/queue.grpc.pb.h"

namespace {

namespace v1 = ::postgate::queue::v1;

constexpr int kExitOk = 0;
constexpr int kExitServer = 1;
constexpr int kExitNotFound = 2;
constexpr int kExitUsage = 64;

struct Options {
  std::string server = "127.0.0.1:50051";
  bool json = false;
  int timeout_seconds = 10;
};

int Report(const grpc::Status& status) {
  std::cerr << "queuectl: " << status.error_message() << " (" << status.error_code() << ")\n";
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::INVALID_ARGUMENT:
      return kExitNotFound;
    default:
      return kExitServer;
  }
}

std::unique_ptr<grpc::ClientContext> Context(const Options& options) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(options.timeout_seconds));
  return context;
}

void PrintJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, print);
  std::cout << json << "\n";
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

std::string StateName(v1::MessageState state) {
  switch (state) {
    case v1::MESSAGE_STATE_ACTIVE: return "active";
    case v1::MESSAGE_STATE_DEFERRED: return "deferred";
    case v1::MESSAGE_STATE_DONE: return "done";
    default: return "unknown";
  }
}

std::string RecipientStateName(v1::RecipientState state) {
  switch (state) {
    case v1::RECIPIENT_STATE_QUEUED: return "queued";
    case v1::RECIPIENT_STATE_DELIVERED: return "delivered";
    case v1::RECIPIENT_STATE_DEFERRED: return "deferred";
    case v1::RECIPIENT_STATE_BOUNCED: return "bounced";
    default: return "unknown";
  }
}

int Status(v1::QueueService::Stub& stub, const Options& options) {
  v1::QueueStatus status;
  grpc::Status rpc = stub.GetQueueStatus(Context(options).get(), {}, &status);
  if (!rpc.ok()) return Report(rpc);
  if (options.json) {
    PrintJson(status);
    return kExitOk;
  }
  std::cout << absl::StrFormat("%-10s %10s %12s\n", "STATE", "MESSAGES", "BYTES");
  for (const v1::StateCount& count : status.by_state()) {
    std::cout << absl::StrFormat("%-10s %10d %12d\n", StateName(count.state()), count.messages(),
                                 count.bytes());
  }
  std::cout << absl::StrFormat("pending: %d messages, %d bytes; oldest %ds\n", status.total_messages(),
                               status.total_bytes(), status.oldest_message_age_seconds());
  return kExitOk;
}

// mailq's layout: ID (with * while active), size, arrival, sender; then each waiting recipient
// under its reason; then "-- N Kbytes in M Requests."
void PrintMailq(const v1::Message& message) {
  std::string id = message.queue_id() + (message.state() == v1::MESSAGE_STATE_ACTIVE ? "*" : "");
  std::cout << absl::StrFormat(
      "%-14s %8d %s  %s\n", id, message.size(),
      absl::FormatTime("%a %b %e %H:%M:%S", ToTime(message.arrival_time()), absl::LocalTimeZone()),
      message.envelope().sender().empty() ? "MAILER-DAEMON" : message.envelope().sender());
  std::string last_reason;
  for (const v1::RecipientStatus& recipient : message.recipients()) {
    if (recipient.state() != v1::RECIPIENT_STATE_QUEUED &&
        recipient.state() != v1::RECIPIENT_STATE_DEFERRED) {
      continue;
    }
    if (!recipient.reason().empty() && recipient.reason() != last_reason) {
      std::cout << absl::StrFormat("%46s(%s)\n", "", recipient.reason());
      last_reason = recipient.reason();
    }
    std::cout << absl::StrFormat("%50s%s\n", "", recipient.address());
  }
  std::cout << "\n";
}

int List(v1::QueueService::Stub& stub, const Options& options, const std::string& state_name,
         bool all_pages) {
  v1::ListMessagesRequest request;
  if (state_name == "active") request.set_state(v1::MESSAGE_STATE_ACTIVE);
  else if (state_name == "deferred") request.set_state(v1::MESSAGE_STATE_DEFERRED);
  else if (state_name == "done") request.set_state(v1::MESSAGE_STATE_DONE);
  else if (!state_name.empty()) {
    std::cerr << "queuectl: --state: use active, deferred or done\n";
    return kExitUsage;
  }
  uint64_t bytes = 0, count = 0;
  bool header = false;
  do {
    v1::ListMessagesResponse response;
    grpc::Status rpc = stub.ListMessages(Context(options).get(), request, &response);
    if (!rpc.ok()) return Report(rpc);
    for (const v1::Message& message : response.messages()) {
      ++count;
      bytes += message.size();
      if (options.json) {
        PrintJson(message);
        continue;
      }
      if (!header) {
        std::cout << "-Queue ID-      --Size-- ----Arrival Time---- -Sender/Recipient-------\n";
        header = true;
      }
      PrintMailq(message);
    }
    request.set_page_token(response.next_page_token());
  } while (all_pages && !request.page_token().empty());
  if (!options.json) {
    if (count == 0) {
      std::cout << "Mail queue is empty\n";
    } else {
      std::cout << absl::StrFormat("-- %d Kbytes in %d Request%s.\n", (bytes + 1023) / 1024, count,
                                   count == 1 ? "" : "s");
    }
  }
  return kExitOk;
}

int Show(v1::QueueService::Stub& stub, const Options& options, const std::string& id) {
  v1::GetMessageRequest request;
  request.set_queue_id(id);
  v1::Message message;
  grpc::Status rpc = stub.GetMessage(Context(options).get(), request, &message);
  if (!rpc.ok()) return Report(rpc);
  if (options.json) {
    PrintJson(message);
    return kExitOk;
  }
  const v1::Envelope& envelope = message.envelope();
  auto when = [](const google::protobuf::Timestamp& t) {
    return t.seconds() == 0 ? std::string("-")
                            : absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", ToTime(t), absl::LocalTimeZone());
  };
  std::cout << "Queue ID:   " << message.queue_id() << "\n"
            << "State:      " << StateName(message.state()) << "\n"
            << "Arrival:    " << when(message.arrival_time()) << "\n"
            << "Completed:  " << when(message.completion_time()) << "\n"
            << "Size:       " << message.size() << " bytes\n"
            << "Sender:     <" << envelope.sender() << ">\n"
            << "Client:     " << envelope.client().hostname() << "[" << envelope.client().address()
            << "] helo=" << envelope.client().helo() << " proto=" << envelope.client().protocol() << "\n"
            << "Recipients:\n";
  for (const v1::RecipientStatus& r : message.recipients()) {
    std::cout << absl::StrFormat("  %-32s %-9s %3d %-6s relay=%-6s attempts=%d  %s\n", r.address(),
                                 RecipientStateName(r.state()), r.smtp_code(), r.dsn_status(),
                                 r.relay().empty() ? "-" : r.relay(), r.attempts(), r.reason());
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"queuectl: ask Postgate's queue-service what it holds"};
  app.require_subcommand(1);
  app.add_option("--server", options.server, "queue-service gRPC address")->capture_default_str();
  app.add_flag("--json", options.json, "print the API's JSON instead of a table");
  app.add_option("--timeout", options.timeout_seconds, "seconds to wait for an answer")->capture_default_str();

  CLI::App* status = app.add_subcommand("status", "counts and bytes by state, oldest message age");
  std::string state;
  bool all = false;
  CLI::App* list = app.add_subcommand("list", "messages in the queue, in mailq's layout");
  list->add_option("--state", state, "active, deferred or done (default: all but done)");
  list->add_flag("--all", all, "follow every page, not only the first 100 messages");
  std::string id;
  CLI::App* show = app.add_subcommand("show", "one message: envelope and every recipient's state");
  show->add_option("id", id, "queue ID")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    int code = app.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }

  auto channel = grpc::CreateChannel(options.server, grpc::InsecureChannelCredentials());
  auto stub = v1::QueueService::NewStub(channel);
  if (*status) return Status(*stub, options);
  if (*list) return List(*stub, options, state, all);
  if (*show) return Show(*stub, options, id);
  return kExitUsage;
}
