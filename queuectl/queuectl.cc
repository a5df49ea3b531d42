// queuectl: the queue API from a shell – mailq, postqueue, postcat and postsuper in one tool.
// Human output by default (list follows mailq's layout), JSON with --json (list: postqueue -j's
// fields; streams: one object per line). Exit codes: 0 ok, 1 the server failed or is unreachable,
// 2 no such message, bad argument or wrong state, 64 bad usage.
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <algorithm>
#include <set>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "queuectl/api_names.h"
#include "queuectl/queue_connection.h"
#include "queuectl/replica_choice.h"
#include "postgate/queue/v1/queue.grpc.pb.h"

namespace {

namespace v1 = ::postgate::queue::v1;
using postgate::queuectl::EventKindName;
using postgate::queuectl::MessageStateName;
using postgate::queuectl::RecipientStateName;

constexpr int kExitOk = 0;
constexpr int kExitServer = 1;
constexpr int kExitNotFound = 2;
constexpr int kExitUsage = 64;

struct Options {
  std::string server = "127.0.0.1:50051";
  bool json = false;
  int timeout_seconds = 10;
  std::string token_file;  // Bearer token for admin commands.
  std::string token;       // Read from token_file.
  std::string tls_ca;      // TLS to the queue: CA file (turns TLS on), client cert and key.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;  // Name to expect in the server certificate, if not the host.
};

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "ERROR";
  }
}

int Report(const grpc::Status& status, const std::string& where = "") {
  std::cerr << "queuectl: " << (where.empty() ? "" : where + ": ") << status.error_message() << " ("
            << CodeName(status.error_code()) << ")\n";
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return kExitNotFound;
    default:
      return kExitServer;
  }
}

std::unique_ptr<grpc::ClientContext> Context(const Options& options) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(options.timeout_seconds));
  if (!options.token.empty()) context->AddMetadata("authorization", "Bearer " + options.token);
  return context;
}

// One queue-service replica --server (or move --to) names.
struct Replica {
  std::string address;
  std::unique_ptr<v1::QueueService::Stub> stub;
};

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

// One message as `postqueue -j` prints it, so scripts written for Postfix keep working.
void PrintPostqueueJson(const v1::Message& message) {
  google::protobuf::Struct entry;
  auto& fields = *entry.mutable_fields();
  fields["queue_name"].set_string_value(MessageStateName(message.state()));
  fields["queue_id"].set_string_value(message.queue_id());
  fields["arrival_time"].set_number_value(static_cast<double>(message.arrival_time().seconds()));
  fields["message_size"].set_number_value(static_cast<double>(message.size()));
  fields["forced_expire"].set_bool_value(false);
  fields["sender"].set_string_value(message.envelope().sender());
  auto* recipients = fields["recipients"].mutable_list_value();
  for (const v1::RecipientStatus& r : message.recipients()) {
    if (r.state() != v1::RECIPIENT_STATE_QUEUED && r.state() != v1::RECIPIENT_STATE_DEFERRED) continue;
    auto& recipient = *recipients->add_values()->mutable_struct_value()->mutable_fields();
    recipient["address"].set_string_value(r.address());
    if (!r.reason().empty()) recipient["delay_reason"].set_string_value(r.reason());
  }
  PrintJson(entry);
}

int Status(std::vector<Replica>& replicas, const Options& options) {
  v1::QueueStatus total;
  std::vector<std::string> lines;
  for (Replica& replica : replicas) {
    v1::QueueStatus status;
    grpc::Status rpc = replica.stub->GetQueueStatus(Context(options).get(), {}, &status);
    if (!rpc.ok()) return Report(rpc, replica.address);
    if (options.json) {
      PrintJson(status);
      continue;
    }
    if (total.by_state_size() == 0) total.mutable_by_state()->CopyFrom(status.by_state());
    else for (int i = 0; i < status.by_state_size() && i < total.by_state_size(); ++i) {
      total.mutable_by_state(i)->set_messages(total.by_state(i).messages() + status.by_state(i).messages());
      total.mutable_by_state(i)->set_bytes(total.by_state(i).bytes() + status.by_state(i).bytes());
    }
    total.set_total_messages(total.total_messages() + status.total_messages());
    total.set_total_bytes(total.total_bytes() + status.total_bytes());
    total.set_oldest_message_age_seconds(std::max(total.oldest_message_age_seconds(), status.oldest_message_age_seconds()));
    lines.push_back(absl::StrFormat("replica %d (%s): %d messages, %s", status.replica(), replica.address,
                                    status.total_messages(), status.accepting() ? "accepting" : "not accepting (draining)"));
  }
  if (options.json) return kExitOk;
  std::cout << absl::StrFormat("%-10s %10s %12s\n", "STATE", "MESSAGES", "BYTES");
  for (const v1::StateCount& count : total.by_state()) {
    std::cout << absl::StrFormat("%-10s %10d %12d\n", MessageStateName(count.state()), count.messages(),
                                 count.bytes());
  }
  std::cout << absl::StrFormat("pending: %d messages, %d bytes; oldest %ds\n", total.total_messages(),
                               total.total_bytes(), total.oldest_message_age_seconds());
  if (replicas.size() > 1) for (const std::string& line : lines) std::cout << line << "\n";
  return kExitOk;
}

// mailq's layout: ID (with "*" while being delivered, "!" when held), size, arrival, sender;
// then each waiting recipient under the sender column, preceded by its reason in parentheses
// at the start of a line; messages separated by an empty line.
void PrintMailq(const v1::Message& message) {
  const std::string mark = message.state() == v1::MESSAGE_STATE_ACTIVE ? "*"
                           : message.state() == v1::MESSAGE_STATE_HOLD ? "!"
                                                                       : "";
  const std::string head = absl::StrFormat(
      "%-14s %8d %s  ", message.queue_id() + mark, message.size(),
      absl::FormatTime("%a %b %e %H:%M:%S", ToTime(message.arrival_time()), absl::LocalTimeZone()));
  std::cout << head
            << (message.envelope().sender().empty() ? "MAILER-DAEMON" : message.envelope().sender()) << "\n";
  if (message.state() == v1::MESSAGE_STATE_DEFERRED && message.has_next_attempt_time()) {
    std::cout << "(next attempt "
              << absl::FormatTime("%a %b %e %H:%M:%S", ToTime(message.next_attempt_time()), absl::LocalTimeZone())
              << ")\n";
  }
  const std::string indent(head.size(), ' ');
  std::string last_reason;
  for (const v1::RecipientStatus& recipient : message.recipients()) {
    if (recipient.state() != v1::RECIPIENT_STATE_QUEUED &&
        recipient.state() != v1::RECIPIENT_STATE_DEFERRED) {
      continue;
    }
    if (!recipient.reason().empty() && recipient.reason() != last_reason) {
      std::cout << "(" << recipient.reason() << ")\n";
      last_reason = recipient.reason();
    }
    std::cout << indent << recipient.address() << "\n";
  }
  std::cout << "\n";
}

struct ListOptions {
  std::string state;
  bool all_pages = false;
  std::string sender;
  std::string recipient;
  uint64_t min_age = 0;
  uint64_t max_age = 0;
  bool newest_first = false;
};

int List(std::vector<Replica>& replicas, const Options& options, const ListOptions& list) {
  v1::ListMessagesRequest request;
  std::optional<v1::MessageState> state = postgate::queuectl::ParseMessageState(list.state);
  if (!state) {
    std::cerr << "queuectl: --state: use active, deferred, hold or done\n";
    return kExitUsage;
  }
  request.set_state(*state);
  request.set_sender_contains(list.sender);
  request.set_recipient_contains(list.recipient);
  request.set_min_age_seconds(list.min_age);
  request.set_max_age_seconds(list.max_age);
  request.set_newest_first(list.newest_first);
  // Every replica's messages, merged: IDs begin with the arrival time, so ID order is arrival
  // order across replicas too.
  std::vector<v1::Message> messages;
  for (Replica& replica : replicas) {
    v1::ListMessagesRequest page_request = request;
    do {
      v1::ListMessagesResponse response;
      grpc::Status rpc = replica.stub->ListMessages(Context(options).get(), page_request, &response);
      if (!rpc.ok()) return Report(rpc, replicas.size() > 1 ? replica.address : "");
      for (v1::Message& message : *response.mutable_messages()) messages.push_back(std::move(message));
      page_request.set_page_token(response.next_page_token());
    } while (list.all_pages && !page_request.page_token().empty());
  }
  std::sort(messages.begin(), messages.end(), [&](const v1::Message& a, const v1::Message& b) {
    return list.newest_first ? a.queue_id() > b.queue_id() : a.queue_id() < b.queue_id();
  });
  uint64_t bytes = 0;
  for (const v1::Message& message : messages) {
    bytes += message.size();
    if (options.json) {
      PrintPostqueueJson(message);
      continue;
    }
    if (&message == &messages.front()) {
      std::cout << "-Queue ID-     --Size-- ----Arrival Time---- -Sender/Recipient-------\n";
    }
    PrintMailq(message);
  }
  if (!options.json) {
    if (messages.empty()) {
      std::cout << "Mail queue is empty\n";
    } else {
      std::cout << absl::StrFormat("-- %d Kbytes in %d Request%s.\n", (bytes + 1023) / 1024, messages.size(),
                                   messages.size() == 1 ? "" : "s");
    }
  }
  return kExitOk;
}

// The replica holding message `id`: the one that knows it (NOT_FOUND from all: the first's answer).
v1::QueueService::Stub* FindHolder(std::vector<Replica>& replicas, const Options& options, const std::string& id) {
  if (replicas.size() == 1) return replicas.front().stub.get();
  v1::GetMessageRequest request;
  request.set_queue_id(id);
  for (Replica& replica : replicas) {
    v1::Message message;
    grpc::Status status = replica.stub->GetMessage(Context(options).get(), request, &message);
    if (status.error_code() != grpc::StatusCode::NOT_FOUND) return replica.stub.get();
  }
  return replicas.front().stub.get();
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
            << "State:      " << MessageStateName(message.state())
            << (message.hold_reason().empty() ? "" : " (" + message.hold_reason() + ")") << "\n"
            << "Arrival:    " << when(message.arrival_time()) << "\n"
            << "Completed:  " << when(message.completion_time()) << "\n"
            << "Next try:   " << when(message.next_attempt_time()) << "\n"
            << "Size:       " << message.size() << " bytes\n"
            << "Sender:     <" << envelope.sender() << ">\n"
            << "Client:     " << envelope.client().hostname() << "[" << envelope.client().address()
            << "] helo=" << envelope.client().helo() << " proto=" << envelope.client().protocol() << "\n"
            << "Recipients:\n";
  for (const v1::RecipientStatus& r : message.recipients()) {
    std::cout << absl::StrFormat("  %-32s %-9s %3d %-6s relay=%-6s attempts=%d  %s\n", r.address(),
                                 RecipientStateName(r.state()), r.smtp_code(), r.dsn_status(),
                                 r.relay().empty() ? "-" : r.relay(), r.attempts(), r.reason());
    if (r.history_size() > 1) {
      for (const v1::DeliveryAttempt& attempt : r.history()) {
        std::cout << "      " << when(attempt.time()) << "  " << attempt.smtp_code() << " "
                  << attempt.dsn_status() << " " << attempt.reason() << "\n";
      }
    }
  }
  return kExitOk;
}

int Cat(v1::QueueService::Stub& stub, const Options& options, const std::string& id) {
  v1::GetMessageContentRequest request;
  request.set_queue_id(id);
  auto context = Context(options);
  auto reader = stub.GetMessageContent(context.get(), request);
  v1::MessageContentChunk chunk;
  while (reader->Read(&chunk)) std::cout.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
  grpc::Status status = reader->Finish();
  std::cout.flush();
  return status.ok() ? kExitOk : Report(status);
}

int Flush(std::vector<Replica>& replicas, const Options& options, const std::string& domain, const std::string& id) {
  v1::FlushRequest request;
  if (!id.empty()) {  // Only the replica that holds it.
    v1::QueueService::Stub* holder = FindHolder(replicas, options, id);
    request.set_queue_id(id);
    v1::FlushResponse response;
    grpc::Status status = holder->Flush(Context(options).get(), request, &response);
    if (!status.ok()) return Report(status);
    if (options.json) {
      PrintJson(response);
    } else {
      std::cout << id << ": scheduled for delivery now\n";
    }
    return kExitOk;
  }
  std::string target = domain;
  if (!target.empty() && target.front() == '@') {
    request.set_include_subdomains(true);
    target.erase(0, 1);
  }
  request.set_domain(target);
  v1::FlushResponse response;
  for (Replica& replica : replicas) {
    v1::FlushResponse one;
    grpc::Status status = replica.stub->Flush(Context(options).get(), request, &one);
    if (!status.ok()) return Report(status, replicas.size() > 1 ? replica.address : "");
    response.set_messages(response.messages() + one.messages());
  }
  if (options.json) {
    PrintJson(response);
  } else {
    std::cout << response.messages() << " message" << (response.messages() == 1 ? "" : "s")
              << " scheduled for delivery now\n";
  }
  return kExitOk;
}

// hold | release | delete | requeue for each ID; "ALL" (with --yes) means every message in the
// queue that the action applies to.
int Act(v1::QueueService::Stub& stub, const Options& options, const std::string& action,
        std::vector<std::string> ids, bool confirmed) {
  if (ids.size() == 1 && ids[0] == "ALL") {
    if (!confirmed) {
      std::cerr << "queuectl: " << action << " ALL changes every message; add --yes to confirm\n";
      return kExitUsage;
    }
    ids.clear();
    v1::ListMessagesRequest request;
    request.set_state(action == "release" ? v1::MESSAGE_STATE_HOLD : v1::MESSAGE_STATE_UNSPECIFIED);
    request.set_page_size(1000);
    do {
      v1::ListMessagesResponse page;
      grpc::Status status = stub.ListMessages(Context(options).get(), request, &page);
      if (!status.ok()) return Report(status);
      for (const v1::Message& m : page.messages()) ids.push_back(m.queue_id());
      request.set_page_token(page.next_page_token());
    } while (!request.page_token().empty());
  }
  int exit_code = kExitOk;
  for (const std::string& id : ids) {
    v1::MessageRequest request;
    request.set_queue_id(id);
    v1::Message message;
    v1::DeleteResponse deleted;
    grpc::Status status;
    if (action == "hold") status = stub.Hold(Context(options).get(), request, &message);
    else if (action == "release") status = stub.Release(Context(options).get(), request, &message);
    else if (action == "requeue") status = stub.Requeue(Context(options).get(), request, &message);
    else status = stub.Delete(Context(options).get(), request, &deleted);
    if (!status.ok()) {
      exit_code = std::max(exit_code, Report(status));
      continue;
    }
    if (options.json) {
      google::protobuf::Struct done;
      (*done.mutable_fields())["queue_id"].set_string_value(id);
      (*done.mutable_fields())["action"].set_string_value(action);
      PrintJson(done);
    } else {
      std::cout << id << ": " << (action == "hold" ? "placed on hold" : action == "release" ? "released"
                                  : action == "requeue" ? "requeued" : "deleted") << "\n";
    }
  }
  return exit_code;
}

// Follows the queue live until interrupted (or `count` events). One line per event.
int Watch(v1::QueueService::Stub& stub, const Options& options, const std::string& domain,
          const std::string& id, int count) {
  v1::WatchEventsRequest request;
  request.set_domain(domain);
  request.set_queue_id(id);
  grpc::ClientContext context;  // No deadline: a watch lasts as long as the operator wants.
  auto reader = stub.WatchEvents(&context, request);
  // The server sends its headers once the watch is registered: say so, for scripts waiting on it.
  reader->WaitForInitialMetadata();
  std::cerr << "queuectl: watching" << (id.empty() ? "" : " " + id)
            << (domain.empty() ? "" : " domain " + domain) << "\n";
  v1::QueueEvent event;
  int seen = 0;
  while (reader->Read(&event)) {
    if (event.missed() > 0) std::cerr << "queuectl: missed " << event.missed() << " events\n";
    if (options.json) {
      PrintJson(event);
    } else {
      std::cout << absl::FormatTime("%H:%M:%E3S", ToTime(event.time()), absl::LocalTimeZone()) << " "
                << event.queue_id() << " " << EventKindName(event.kind());
      if (!event.recipient().empty()) {
        std::cout << " to=<" << event.recipient() << "> relay=" << event.relay() << " dsn="
                  << event.dsn_status() << " (" << event.reason() << ")";
      } else if (event.kind() == v1::EVENT_KIND_RECEIVED) {
        std::cout << " from=<" << event.sender() << "> size=" << event.size();
      }
      std::cout << "\n";
    }
    std::cout.flush();
    if (count > 0 && ++seen >= count) {
      context.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) return Report(status);
  return kExitOk;
}

// Empties one replica into others before it is scaled away: stops it taking new mail, then for
// each message holds it there (so its delivery stops), copies envelope, waiting recipients and
// content to a target replica (idempotency key "move:<ID>", so a rerun after an interruption
// never stores a message twice), holds the copy again if it was held, and deletes the original.
// The reason `move` gives the holds it makes (MessageRequest.reason).
constexpr absl::string_view kMoveHold = "queuectl move";

int Move(Replica& source, std::vector<Replica>& targets, const Options& options, bool keep_accepting) {
  if (!keep_accepting) {
    v1::SetAcceptingRequest stop;
    stop.set_accepting(false);
    v1::QueueStatus status;
    grpc::Status rpc = source.stub->SetAccepting(Context(options).get(), stop, &status);
    if (!rpc.ok()) return Report(rpc, source.address);
    std::cerr << "queuectl: replica " << status.replica() << " (" << source.address
              << ") no longer accepts new messages\n";
  }
  size_t moved = 0;
  std::vector<std::string> target_addresses;
  for (const Replica& target : targets) target_addresses.push_back(target.address);
  for (int round = 0; round < 100; ++round) {  // Until a listing comes back empty.
    v1::ListMessagesRequest list;
    list.set_page_size(1000);
    v1::ListMessagesResponse page;
    grpc::Status rpc = source.stub->ListMessages(Context(options).get(), list, &page);
    if (!rpc.ok()) return Report(rpc, source.address);
    if (page.messages().empty()) {
      std::cout << "moved " << moved << " message" << (moved == 1 ? "" : "s") << "; " << source.address
                << " holds no pending mail\n";
      return kExitOk;
    }
    for (const v1::Message& listed : page.messages()) {
      const std::string& id = listed.queue_id();
      v1::MessageRequest by_id;
      by_id.set_queue_id(id);
      v1::Message message;
      // Held by an operator, the copy is held too. A hold of our own (kMoveHold: a run that was
      // interrupted after it held the message) is not the operator's.
      bool was_held = false;
      if (listed.state() == v1::MESSAGE_STATE_HOLD) {
        v1::GetMessageRequest get;
        get.set_queue_id(id);
        rpc = source.stub->GetMessage(Context(options).get(), get, &message);
        was_held = rpc.ok() && message.hold_reason() != kMoveHold;
      } else {
        v1::MessageRequest hold = by_id;
        hold.set_reason(std::string(kMoveHold));
        rpc = source.stub->Hold(Context(options).get(), hold, &message);  // Stops its delivery here.
      }
      if (rpc.error_code() == grpc::StatusCode::FAILED_PRECONDITION || rpc.error_code() == grpc::StatusCode::NOT_FOUND) {
        continue;  // Finished (or gone) meanwhile: nothing to move.
      }
      if (!rpc.ok()) return Report(rpc, source.address + " " + id);
      // On a failure below, the original goes back to how it was, and a rerun picks it up.
      auto give_up = [&](const grpc::Status& status, const std::string& where) {
        if (!was_held) {
          v1::Message released;
          (void)source.stub->Release(Context(options).get(), by_id, &released);
        }
        return Report(status, where);
      };

      v1::EnqueueRequest first;
      v1::Envelope& envelope = *first.mutable_envelope();
      envelope = message.envelope();
      envelope.clear_recipients();
      envelope.clear_recipient_options();
      envelope.set_idempotency_key("move:" + id);
      envelope.clear_requested_queue_id();
      for (int i = 0; i < message.recipients_size(); ++i) {
        const v1::RecipientStatus& recipient = message.recipients(i);
        if (recipient.state() != v1::RECIPIENT_STATE_QUEUED && recipient.state() != v1::RECIPIENT_STATE_DEFERRED) continue;
        envelope.add_recipients(recipient.address());
        if (i < message.envelope().recipient_options_size()) {
          *envelope.add_recipient_options() = message.envelope().recipient_options(i);
        } else if (message.envelope().recipient_options_size() > 0) {
          envelope.add_recipient_options();
        }
      }
      if (envelope.recipients().empty()) continue;

      // The same replica on every run, however the list is ordered (see replica_choice.h).
      Replica& target = targets[postgate::queuectl::ChooseReplica(id, target_addresses)];
      auto copy_context = Context(options);
      auto upload = target.stub->Enqueue(copy_context.get());
      v1::EnqueueResponse answer;
      bool ok = upload->Write(first) && upload->Read(&answer);
      v1::GetMessageContentRequest content_request;
      content_request.set_queue_id(id);
      auto read_context = Context(options);
      auto content = source.stub->GetMessageContent(read_context.get(), content_request);
      v1::MessageContentChunk chunk;
      uint64_t size = 0;
      while (ok && content->Read(&chunk)) {
        v1::EnqueueRequest part;
        size += chunk.data().size();
        part.set_content(std::move(*chunk.mutable_data()));
        ok = upload->Write(part);
      }
      grpc::Status read_status = content->Finish();
      if (!read_status.ok()) return give_up(read_status, source.address + " " + id);
      v1::EnqueueRequest commit;
      commit.mutable_commit()->set_size(size);
      ok = ok && upload->Write(commit) && upload->Read(&answer);
      upload->WritesDone();
      grpc::Status upload_status = upload->Finish();
      if (!ok || !upload_status.ok() || answer.committed_queue_id().empty()) {
        return give_up(upload_status.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, "no commit") : upload_status,
                       target.address + " (copy of " + id + ")");
      }
      const std::string new_id = answer.committed_queue_id();
      if (was_held) {
        v1::MessageRequest hold;
        hold.set_queue_id(new_id);
        hold.set_reason(message.hold_reason());
        v1::Message held;
        grpc::Status status = target.stub->Hold(Context(options).get(), hold, &held);
        if (!status.ok() && status.error_code() != grpc::StatusCode::FAILED_PRECONDITION) {
          return Report(status, target.address + " " + new_id);
        }
      }
      v1::DeleteResponse deleted;
      rpc = source.stub->Delete(Context(options).get(), by_id, &deleted);
      if (!rpc.ok() && rpc.error_code() != grpc::StatusCode::NOT_FOUND) return Report(rpc, source.address + " " + id);
      ++moved;
      if (options.json) {
        google::protobuf::Struct done;
        (*done.mutable_fields())["queue_id"].set_string_value(id);
        (*done.mutable_fields())["new_queue_id"].set_string_value(new_id);
        (*done.mutable_fields())["replica"].set_string_value(target.address);
        PrintJson(done);
      } else {
        std::cout << id << " -> " << new_id << " (" << target.address << ")\n";
      }
    }
  }
  std::cerr << "queuectl: " << source.address << " keeps receiving messages; run move again\n";
  return kExitServer;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"queuectl: ask Postgate's queue-service what it holds"};
  app.require_subcommand(1);
  // Global options also after the subcommand ("queuectl list --json", as the README shows): a
  // subcommand hands an option it does not know to this parent. Set before the subcommands are
  // added, which inherit it.
  app.fallthrough();
  app.add_option("--server", options.server, "queue-service gRPC address; several: a:p,b:p or dns:///name:port (every address of a headless Service)")->capture_default_str();
  app.add_flag("--json", options.json, "print the API's JSON instead of a table");
  app.add_option("--timeout", options.timeout_seconds, "seconds to wait for an answer")->capture_default_str();
  app.add_option("--token-file", options.token_file,
                 "file with the admin bearer token (hold, release, delete, requeue, cat)")
      ->envname("POSTGATE_TOKEN_FILE");
  app.add_option("--tls-ca", options.tls_ca, "CA certificate file: talk TLS and verify the server");
  app.add_option("--tls-cert", options.tls_cert, "client certificate file (mutual TLS)");
  app.add_option("--tls-key", options.tls_key, "client key file (mutual TLS)");
  app.add_option("--tls-server-name", options.tls_server_name, "name the server certificate must carry");

  CLI::App* status = app.add_subcommand("status", "counts and bytes by state, oldest message age");
  ListOptions list_options;
  CLI::App* list = app.add_subcommand("list", "messages in the queue, in mailq's layout (--json: postqueue -j)");
  list->add_option("--state", list_options.state, "active, deferred, hold or done (default: all but done)");
  list->add_flag("--all", list_options.all_pages, "follow every page, not only the first 100 messages");
  list->add_option("--sender", list_options.sender, "sender contains this (case-insensitive)");
  list->add_option("--recipient", list_options.recipient, "a recipient contains this; @domain for a domain");
  list->add_option("--min-age", list_options.min_age, "arrived at least this many seconds ago");
  list->add_option("--max-age", list_options.max_age, "arrived less than this many seconds ago");
  list->add_flag("--newest-first", list_options.newest_first, "newest messages first");
  std::string id;
  CLI::App* show = app.add_subcommand("show", "one message: envelope and every recipient's state");
  show->add_option("id", id, "queue ID")->required();
  CLI::App* cat = app.add_subcommand("cat", "print a queued message as stored (like postcat -q)");
  cat->add_option("id", id, "queue ID")->required();
  std::string flush_domain, flush_id;
  CLI::App* flush = app.add_subcommand(
      "flush", "attempt deferred mail now (all, for DOMAIN, @DOMAIN with subdomains, or -i one message)");
  flush->add_option("domain", flush_domain, "recipient domain");
  flush->add_option("-i,--id", flush_id, "only this queue ID (like postqueue -i)")->excludes("domain");
  std::vector<std::string> ids;
  bool confirmed = false;
  std::vector<std::pair<std::string, CLI::App*>> actions;
  for (const char* action : {"hold", "release", "delete", "requeue"}) {
    CLI::App* command = app.add_subcommand(action, std::string(action) + " messages by queue ID (ALL with --yes)");
    command->add_option("ids", ids, "queue IDs, or ALL")->required();
    command->add_flag("--yes", confirmed, "confirm an action on ALL messages");
    actions.emplace_back(action, command);
  }
  std::string watch_domain, watch_id;
  int watch_count = 0;
  CLI::App* watch = app.add_subcommand("watch", "follow queue events live (Ctrl-C stops)");
  watch->add_option("--domain", watch_domain, "only recipients at this domain and its subdomains");
  watch->add_option("--id", watch_id, "only this message");
  watch->add_option("--count", watch_count, "stop after this many events");
  std::string move_to;
  bool keep_accepting = false;
  CLI::App* move = app.add_subcommand(
      "move", "empty this replica into others before it is scaled away (it stops accepting new mail)");
  move->add_option("--to", move_to, "replicas to move to: a:p,b:p or dns:///name:port")->required();
  move->add_flag("--keep-accepting", keep_accepting, "let the replica go on taking new messages");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    int code = app.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }

  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> token = postgate::queuectl::ReadTokenFile(options.token_file);
    if (!token.ok()) {
      std::cerr << "queuectl: " << token.status().message() << "\n";
      return kExitUsage;
    }
    options.token = *token;
  }
  grpc::ChannelArguments arguments;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls_credentials = postgate::queuectl::QueueCredentials(
      {options.tls_ca, options.tls_cert, options.tls_key, options.tls_server_name}, &arguments);
  if (!tls_credentials.ok()) {
    std::cerr << "queuectl: " << tls_credentials.status().message() << "\n";
    return kExitUsage;
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = *tls_credentials;
  auto connect = [&](const std::string& server, std::vector<Replica>* replicas) -> bool {
    absl::StatusOr<std::vector<std::string>> addresses = postgate::queuectl::ReplicaAddresses(server);
    if (!addresses.ok()) {
      std::cerr << "queuectl: " << addresses.status().message() << "\n";
      return false;
    }
    for (const std::string& address : *addresses) {
      replicas->push_back({address, v1::QueueService::NewStub(grpc::CreateCustomChannel(address, credentials, arguments))});
    }
    return true;
  };
  // --server may name several replicas (a:p,b:p or dns:///headless-service:port): status, list
  // and flush then cover all of them, and commands on a queue ID find the replica that holds it.
  std::vector<Replica> replicas;
  if (!connect(options.server, &replicas)) return kExitUsage;
  if (*status) return Status(replicas, options);
  if (*list) return List(replicas, options, list_options);
  if (*flush) return Flush(replicas, options, flush_domain, flush_id);
  if (*show) return Show(*FindHolder(replicas, options, id), options, id);
  if (*cat) return Cat(*FindHolder(replicas, options, id), options, id);
  if (*watch) {
    if (replicas.size() > 1) {
      std::cerr << "queuectl: watch follows one replica; name one with --server\n";
      return kExitUsage;
    }
    return Watch(*replicas.front().stub, options, watch_domain, watch_id, watch_count);
  }
  if (*move) {
    std::vector<Replica> targets;
    if (replicas.size() != 1) {
      std::cerr << "queuectl: move empties one replica; name it with --server\n";
      return kExitUsage;
    }
    if (!connect(move_to, &targets)) return kExitUsage;
    std::erase_if(targets, [&](const Replica& r) { return r.address == replicas.front().address; });
    if (targets.empty()) {
      std::cerr << "queuectl: move --to names no other replica\n";
      return kExitUsage;
    }
    return Move(replicas.front(), targets, options, keep_accepting);
  }
  for (const auto& [action, command] : actions) {
    if (!*command) continue;
    if (ids.size() == 1 && ids[0] == "ALL") {
      int exit_code = kExitOk;
      for (Replica& replica : replicas) exit_code = std::max(exit_code, Act(*replica.stub, options, action, ids, confirmed));
      return exit_code;
    }
    int exit_code = kExitOk;
    for (const std::string& one : ids) {
      exit_code = std::max(exit_code, Act(*FindHolder(replicas, options, one), options, action, {one}, confirmed));
    }
    return exit_code;
  }
  return kExitUsage;
}
