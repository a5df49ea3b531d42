// The console's window on queue-service: every replica a --server value names (re-resolved, so a
// scaled StatefulSet is followed), their answers merged as `queuectl --server dns:///…` merges
// them, and the admin calls made with the console's own admin token. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "console/web/pages.h"
#include "grpcpp/grpcpp.h"
#include "postgate/queue/v1/queue.grpc.pb.h"

namespace postgate::console {

enum class Action { kHold, kRelease, kRequeue, kDelete, kFlush };

class QueueView {
 public:
  struct Options {
    std::string server;  // "host:port", "a:p,b:p" or "dns:///name:port".
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    grpc::ChannelArguments arguments;
    std::function<std::string()> admin_token;  // For admin calls and content; "" → they fail.
    absl::Duration timeout = absl::Seconds(10);
  };
  explicit QueueView(Options options) : options_(std::move(options)) {}

  absl::StatusOr<OverviewData> Overview(absl::Time now);
  ListData List(const ListQuery& query, size_t page_size, absl::Time now);

  struct Found {
    v1::Message message;
    std::string replica;
  };
  absl::StatusOr<Found> Find(const std::string& queue_id);

  struct Content {
    std::string headers;
    std::string body;
    bool truncated = false;
  };
  // The stored message split at its first empty line; the body cut after `limit` bytes.
  absl::StatusOr<Content> ReadContent(const std::string& replica, const std::string& queue_id, size_t limit);

  // Hold (with `reason`), release, requeue, delete or flush one message, on the replica holding it.
  absl::Status Act(Action action, const std::string& queue_id, const std::string& reason);
  // Flush deferred mail for `domain` ("" all) on every replica; how many messages were scheduled.
  absl::StatusOr<uint32_t> FlushDomain(const std::string& domain);

  // Follows WatchEvents on every replica and calls `deliver` for each event until `deliver`
  // returns false or `keep_going` does (asked at least every `tick`). `subscribed` runs once every
  // replica has registered the watch (so no later event can be missed). All callbacks run on the
  // calling thread. Returns why it stopped.
  absl::Status Watch(const std::string& domain, const std::function<bool(const v1::QueueEvent&)>& deliver,
                     const std::function<bool()>& keep_going, absl::Duration tick,
                     const std::function<bool()>& subscribed);

 private:
  struct Replica {
    std::string address;
    std::shared_ptr<v1::QueueService::Stub> stub;
  };
  absl::StatusOr<std::vector<Replica>> Replicas();
  std::unique_ptr<grpc::ClientContext> Context(bool admin) const;

  const Options options_;
  absl::Mutex mu_;
  std::vector<Replica> replicas_ ABSL_GUARDED_BY(mu_);
  absl::Time resolved_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace postgate::console
