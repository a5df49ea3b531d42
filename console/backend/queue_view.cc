#include "console/backend/queue_view.h"

#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "console/backend/list_merge.h"
#include "queuectl/queue_connection.h"

namespace postgate::console {
namespace {

constexpr v1::MessageState kStates[] = {v1::MESSAGE_STATE_ACTIVE, v1::MESSAGE_STATE_DEFERRED, v1::MESSAGE_STATE_HOLD,
                                        v1::MESSAGE_STATE_DONE};
// A replica list older than this is resolved again (replicas come and go with scaling).
constexpr absl::Duration kResolveEvery = absl::Seconds(10);

absl::Status ToAbsl(const grpc::Status& status, const std::string& where) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      where.empty() ? status.error_message() : absl::StrCat(where, ": ", status.error_message()));
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace

absl::StatusOr<std::vector<QueueView::Replica>> QueueView::Replicas() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (!replicas_.empty() && now - resolved_at_ < kResolveEvery) return replicas_;
  absl::StatusOr<std::vector<std::string>> addresses = queuectl::ReplicaAddresses(options_.server);
  if (!addresses.ok()) {
    if (!replicas_.empty()) return replicas_;  // Keep the last good list through a DNS hiccup.
    return addresses.status();
  }
  std::vector<Replica> next;
  for (const std::string& address : *addresses) {
    auto known = std::find_if(replicas_.begin(), replicas_.end(), [&](const Replica& r) { return r.address == address; });
    if (known != replicas_.end()) {
      next.push_back(*known);  // Its channel stays connected.
    } else {
      next.push_back({address, std::shared_ptr<v1::QueueService::Stub>(v1::QueueService::NewStub(
                                   grpc::CreateCustomChannel(address, options_.credentials, options_.arguments)))});
    }
  }
  replicas_ = std::move(next);
  resolved_at_ = now;
  return replicas_;
}

std::unique_ptr<grpc::ClientContext> QueueView::Context(bool admin) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  if (admin) {
    const std::string token = options_.admin_token ? options_.admin_token() : "";
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
  }
  return context;
}

absl::StatusOr<OverviewData> QueueView::Overview(absl::Time now) {
  absl::StatusOr<std::vector<Replica>> replicas = Replicas();
  if (!replicas.ok()) return replicas.status();
  OverviewData data;
  data.now = now;
  for (v1::MessageState state : kStates) data.states[state];
  for (const Replica& replica : *replicas) {
    ReplicaOverview overview{replica.address, "", {}};
    grpc::Status status = replica.stub->GetQueueStatus(Context(false).get(), {}, &overview.status);
    if (!status.ok()) {
      overview.error = status.error_message();
      data.replicas.push_back(std::move(overview));
      continue;
    }
    for (const v1::StateCount& count : overview.status.by_state()) {
      StateOverview& s = data.states[count.state()];
      s.messages += count.messages();
      s.bytes += count.bytes();
    }
    // The oldest of each waiting state: the first message of its list (oldest first).
    for (v1::MessageState state : {v1::MESSAGE_STATE_ACTIVE, v1::MESSAGE_STATE_DEFERRED, v1::MESSAGE_STATE_HOLD}) {
      v1::ListMessagesRequest request;
      request.set_state(state);
      request.set_page_size(1);
      v1::ListMessagesResponse oldest;
      if (!replica.stub->ListMessages(Context(false).get(), request, &oldest).ok() || oldest.messages_size() == 0) continue;
      const absl::Time arrival = ToTime(oldest.messages(0).arrival_time());
      std::optional<absl::Time>& known = data.states[state].oldest_arrival;
      if (!known || arrival < *known) known = arrival;
    }
    v1::Activity activity;
    if (replica.stub->GetActivity(Context(false).get(), {}, &activity).ok()) {
      if (data.activity.minutes_size() == 0) {
        data.activity = activity;
      } else {
        for (int i = 0; i < data.activity.minutes_size() && i < activity.minutes_size(); ++i) {
          v1::ActivityMinute* sum = data.activity.mutable_minutes(i);
          const v1::ActivityMinute& add = activity.minutes(i);
          sum->set_received(sum->received() + add.received());
          sum->set_delivered(sum->delivered() + add.delivered());
          sum->set_deferred(sum->deferred() + add.deferred());
          sum->set_bounced(sum->bounced() + add.bounced());
        }
      }
    }
    data.replicas.push_back(std::move(overview));
  }
  return data;
}

ListData QueueView::List(const ListQuery& query, size_t page_size, absl::Time now) {
  ListData data;
  data.query = query;
  data.now = now;
  absl::StatusOr<std::vector<Replica>> replicas = Replicas();
  if (!replicas.ok()) {
    data.errors.push_back(std::string(replicas.status().message()));
    return data;
  }
  v1::ListMessagesRequest request;
  request.set_state(query.state);
  request.set_page_size(static_cast<uint32_t>(page_size));
  request.set_page_token(query.after);
  request.set_sender_contains(query.sender);
  request.set_recipient_contains(query.recipient);
  request.set_min_age_seconds(query.min_age_seconds);
  request.set_max_age_seconds(query.max_age_seconds);
  request.set_newest_first(query.newest_first);
  std::vector<v1::ListMessagesResponse> pages;
  for (const Replica& replica : *replicas) {
    v1::ListMessagesResponse page;
    grpc::Status status = replica.stub->ListMessages(Context(false).get(), request, &page);
    if (!status.ok()) {
      data.errors.push_back(absl::StrCat(replica.address, ": ", status.error_message()));
      continue;
    }
    pages.push_back(std::move(page));
  }
  MergedPage merged = MergePages(std::move(pages), page_size, query.newest_first);
  data.messages = std::move(merged.messages);
  data.next_after = std::move(merged.next_after);
  return data;
}

absl::StatusOr<QueueView::Found> QueueView::Find(const std::string& queue_id) {
  absl::StatusOr<std::vector<Replica>> replicas = Replicas();
  if (!replicas.ok()) return replicas.status();
  v1::GetMessageRequest request;
  request.set_queue_id(queue_id);
  absl::Status first_error = absl::NotFoundError(absl::StrCat(queue_id, ": no such message"));
  for (const Replica& replica : *replicas) {
    Found found{{}, replica.address};
    grpc::Status status = replica.stub->GetMessage(Context(false).get(), request, &found.message);
    if (status.ok()) return found;
    if (status.error_code() != grpc::StatusCode::NOT_FOUND) first_error = ToAbsl(status, replica.address);
  }
  return first_error;
}

absl::StatusOr<QueueView::Content> QueueView::ReadContent(const std::string& replica_address, const std::string& queue_id,
                                                          size_t limit) {
  absl::StatusOr<std::vector<Replica>> replicas = Replicas();
  if (!replicas.ok()) return replicas.status();
  auto replica = std::find_if(replicas->begin(), replicas->end(), [&](const Replica& r) { return r.address == replica_address; });
  if (replica == replicas->end()) return absl::UnavailableError(absl::StrCat(replica_address, ": no longer a replica"));
  v1::GetMessageContentRequest request;
  request.set_queue_id(queue_id);
  std::unique_ptr<grpc::ClientContext> context = Context(true);
  std::unique_ptr<grpc::ClientReader<v1::MessageContentChunk>> reader = replica->stub->GetMessageContent(context.get(), request);
  std::string text;
  Content content;
  v1::MessageContentChunk chunk;
  size_t body_start = std::string::npos;
  while (reader->Read(&chunk)) {
    text += chunk.data();
    if (body_start == std::string::npos) {
      const size_t blank = text.find("\n\n");
      if (blank != std::string::npos) body_start = blank + 2;
    }
    // Enough: the headers and `limit` bytes of body (or of headers, if they never end).
    if ((body_start != std::string::npos && text.size() > body_start + limit) || text.size() > 4 * limit) {
      content.truncated = true;
      context->TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (!content.truncated && !status.ok()) return ToAbsl(status, "");
  if (body_start == std::string::npos) {
    content.headers = std::move(text);
  } else {
    content.headers = text.substr(0, body_start - 1);
    content.body = text.substr(body_start, limit);
  }
  return content;
}

absl::Status QueueView::Act(Action action, const std::string& queue_id, const std::string& reason) {
  absl::StatusOr<Found> found = Find(queue_id);
  if (!found.ok()) return found.status();
  absl::StatusOr<std::vector<Replica>> replicas = Replicas();
  if (!replicas.ok()) return replicas.status();
  auto replica = std::find_if(replicas->begin(), replicas->end(), [&](const Replica& r) { return r.address == found->replica; });
  if (replica == replicas->end()) return absl::UnavailableError(absl::StrCat(found->replica, ": no longer a replica"));
  v1::QueueService::Stub& stub = *replica->stub;
  v1::MessageRequest request;
  request.set_queue_id(queue_id);
  v1::Message message;
  switch (action) {
    case Action::kHold:
      request.set_reason(reason);
      return ToAbsl(stub.Hold(Context(true).get(), request, &message), "");
    case Action::kRelease:
      return ToAbsl(stub.Release(Context(true).get(), request, &message), "");
    case Action::kRequeue:
      return ToAbsl(stub.Requeue(Context(true).get(), request, &message), "");
    case Action::kDelete: {
      v1::DeleteResponse deleted;
      return ToAbsl(stub.Delete(Context(true).get(), request, &deleted), "");
    }
    case Action::kFlush: {
      v1::FlushRequest flush;
      flush.set_queue_id(queue_id);
      v1::FlushResponse flushed;
      return ToAbsl(stub.Flush(Context(true).get(), flush, &flushed), "");
    }
  }
  return absl::InvalidArgumentError("unknown action");
}

absl::StatusOr<uint32_t> QueueView::FlushDomain(const std::string& domain) {
  absl::StatusOr<std::vector<Replica>> replicas = Replicas();
  if (!replicas.ok()) return replicas.status();
  v1::FlushRequest request;
  request.set_domain(domain);
  uint32_t scheduled = 0;
  for (const Replica& replica : *replicas) {
    v1::FlushResponse response;
    grpc::Status status = replica.stub->Flush(Context(true).get(), request, &response);
    if (!status.ok()) return ToAbsl(status, replica.address);
    scheduled += response.messages();
  }
  return scheduled;
}

absl::Status QueueView::Watch(const std::string& domain, const std::function<bool(const v1::QueueEvent&)>& deliver,
                              const std::function<bool()>& keep_going, absl::Duration tick,
                              const std::function<bool()>& subscribed) {
  absl::StatusOr<std::vector<Replica>> replicas = Replicas();
  if (!replicas.ok()) return replicas.status();
  absl::Mutex mu;
  std::deque<v1::QueueEvent> pending;
  size_t streams_open = replicas->size();
  size_t streams_registered = 0;  // The replica sent its initial metadata: the watch is in place.
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::thread> readers;
  v1::WatchEventsRequest request;
  request.set_domain(domain);
  for (const Replica& replica : *replicas) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());  // No deadline: a feed stays open.
    grpc::ClientContext* context = contexts.back().get();
    readers.emplace_back([&, context, stub = replica.stub] {
      std::unique_ptr<grpc::ClientReader<v1::QueueEvent>> reader = stub->WatchEvents(context, request);
      reader->WaitForInitialMetadata();
      {
        absl::MutexLock lock(&mu);
        ++streams_registered;
      }
      v1::QueueEvent event;
      while (reader->Read(&event)) {
        absl::MutexLock lock(&mu);
        // A browser that cannot keep up loses the oldest events, as the service's own watchers do.
        if (pending.size() >= 10000) pending.pop_front();
        pending.push_back(event);
      }
      (void)reader->Finish();
      absl::MutexLock lock(&mu);
      --streams_open;
    });
  }
  absl::Status why = absl::OkStatus();
  bool announced = false;
  for (;;) {
    std::deque<v1::QueueEvent> batch;
    bool all_closed = false, all_registered = false;
    {
      absl::MutexLock lock(&mu);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return !pending.empty() || streams_open == 0 || (!announced && streams_registered == replicas->size());
      };
      mu.AwaitWithTimeout(absl::Condition(&ready), tick);
      batch.swap(pending);
      all_closed = streams_open == 0;
      all_registered = streams_registered == replicas->size();
    }
    bool stop = false;
    if (!announced && all_registered) {
      announced = true;
      stop = !subscribed();
    }
    for (const v1::QueueEvent& event : batch) {
      if (stop) break;
      if (!deliver(event)) {
        stop = true;
        break;
      }
    }
    if (stop || !keep_going()) break;
    if (all_closed) {
      why = absl::UnavailableError("every replica's event stream ended");
      break;
    }
  }
  for (auto& context : contexts) context->TryCancel();
  for (std::thread& reader : readers) reader.join();
  return why;
}

}  // namespace postgate::console
