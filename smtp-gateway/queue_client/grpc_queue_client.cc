#include "smtp-gateway/queue_client/grpc_queue_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <random>
#include <vector>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "asio/any_io_executor.hpp"
#include "asio/async_result.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "grpcpp/grpcpp.h"
#include "postgate/queue/v1/queue.grpc.pb.h"
#include "smtp-gateway/queue_client/enqueue_many_stream.h"

namespace postgate::gateway {
namespace {

namespace v1 = ::postgate::queue::v1;

void SetRecipientOptions(const protocol::RecipientDsn& dsn, v1::RecipientOptions& options) {
  options.set_notify_given(dsn.notify_given);
  options.set_notify_success(dsn.success);
  options.set_notify_failure(dsn.failure);
  options.set_notify_delay(dsn.delay);
  options.set_original_recipient(dsn.original_recipient);
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// One Enqueue call. Lives until gRPC reports OnDone (it holds itself until then), so a session
// may drop it at any time. The session's side runs on its executor; gRPC's reactions run on
// gRPC's threads and touch only what `mu_` guards. A reaction nobody waits for wakes nobody:
// writes are sent without waiting for them (one at a time), and a committed call ends on its
// own — per message the session waits only for the queue ID and for the commit's answer.
class EnqueueCall : public EnqueueLane,
                    public grpc::ClientBidiReactor<v1::EnqueueRequest, v1::EnqueueResponse>,
                    public std::enable_shared_from_this<EnqueueCall> {
 public:
  EnqueueCall(asio::any_io_executor executor, std::chrono::milliseconds timeout)
      : executor_(std::move(executor)), timeout_(timeout) {}

  // Opens the call with `first` on its way and its answer asked for: operations started before
  // StartCall go out in one batch with the call's headers.
  void Start(v1::QueueService::Stub& stub, v1::EnqueueRequest&& first) {
    {
      absl::MutexLock lock(&mu_);
      self_ = shared_from_this();
      done_.pending = true;
    }
    stub.async()->Enqueue(&context_, this);
    // Operations are started from the session, not from reactions: the hold keeps gRPC from
    // finishing the call (OnDone) under our feet until we release it in Finish() or Cancel().
    AddHold();
    Send(std::move(first), /*last=*/false);
    StartReceive();
    StartCall();
  }

  // Waits until the previous write is through (at once if it is); false if the call failed.
  // Then Send may start the next one. (Two steps: g++ 12 miscompiled them as one coroutine.)
  asio::awaitable<bool> ReadyToSend() override { return Await(write_); }

  // Starts sending `request`, without waiting for it; `last` also half-closes.
  void Send(v1::EnqueueRequest&& request, bool last) override {
    write_buffer_ = std::move(request);
    Begin(write_);
    if (last) {
      half_closed_ = true;
      StartWriteLast(&write_buffer_, grpc::WriteOptions());
    } else {
      StartWrite(&write_buffer_);
    }
  }

  // Asks for the next answer; Received waits for it.
  void StartReceive() override {
    Begin(read_);
    StartRead(&read_buffer_);
  }

  asio::awaitable<bool> Received(v1::EnqueueResponse* response) override {
    const bool ok = co_await Await(read_);
    if (ok) *response = std::move(read_buffer_);
    co_return ok;
  }

  // Ends the call: half-closes after success, cancels after a failure; returns gRPC's verdict.
  asio::awaitable<grpc::Status> Finish() override {
    if (!released_) {
      if (Failed()) {
        context_.TryCancel();
      } else if (!half_closed_) {
        half_closed_ = true;
        StartWritesDone();
      }
      Release();
    }
    co_await Await(done_);
    co_return FinalStatus();
  }

  grpc::Status FinalStatus() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

  // Lets a call whose answer is in end by itself; nothing waits for its last reaction.
  void Release() override {
    if (std::exchange(released_, true)) return;
    RemoveHold();
  }

  void Cancel() override {
    context_.TryCancel();
    Release();
  }

  // Caps every later wait at `limit` (besides each wait's own step timeout): a step made of
  // several waits (opening with retries, a commit with its replay) then stays within one budget.
  void Bound(std::chrono::steady_clock::time_point limit) override { limit_ = limit; }
  // A wait ran out of time (the call was cancelled for it, so gRPC says CANCELLED).
  bool timed_out() const override { return timed_out_.load(); }

  // The replica serving this call ("ipv4:10.1.2.3:50051"), once it has answered.
  std::string peer() override { return context_.peer(); }

  void OnWriteDone(bool ok) override { Complete(write_, ok); }
  void OnReadDone(bool ok) override { Complete(read_, ok); }
  void OnDone(const grpc::Status& status) override {
    std::shared_ptr<EnqueueCall> last_reference;
    {
      absl::MutexLock lock(&mu_);
      status_ = status;
      last_reference = std::move(self_);
    }
    // The last callback gRPC makes. Unless someone waits in Finish(), the call may end right
    // here, on gRPC's thread: it owns no asio object, so that is safe.
    Complete(done_, true);
  }

 private:
  // One kind of gRPC operation: whether one is under way, and who waits for it.
  struct Operation {
    bool pending = false;
    std::function<void(bool)> waiter;
  };

  void Begin(Operation& operation) {
    absl::MutexLock lock(&mu_);
    operation.pending = true;
  }

  bool Failed() {
    absl::MutexLock lock(&mu_);
    return failed_;
  }

  std::optional<bool> ResultIfDone(const Operation& operation) {
    absl::MutexLock lock(&mu_);
    if (operation.pending) return std::nullopt;
    return !failed_;
  }

  void Complete(Operation& operation, bool ok) {
    std::function<void(bool)> waiter;
    {
      absl::MutexLock lock(&mu_);
      operation.pending = false;
      failed_ |= !ok;
      waiter = std::exchange(operation.waiter, nullptr);
    }
    if (waiter) asio::post(executor_, [waiter = std::move(waiter), ok] { waiter(ok); });
  }

  // Waits until `operation` is through (at once if it is), bounded by the step timeout: at the
  // deadline the call is cancelled, which makes gRPC complete it with ok = false.
  asio::awaitable<bool> Await(Operation& operation) {
    if (std::optional<bool> result = ResultIfDone(operation)) co_return *result;
    asio::steady_timer deadline(executor_, std::min(std::chrono::steady_clock::now() + timeout_, limit_));
    deadline.async_wait([weak = weak_from_this()](std::error_code error) {
      if (error) return;
      if (auto call = weak.lock()) {
        call->timed_out_ = true;
        call->context_.TryCancel();
      }
    });
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(bool)>(
        [this, &operation](auto handler) {
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          std::function<void(bool)> resume = [shared](bool ok) { (*shared)(ok); };
          absl::MutexLock lock(&mu_);
          if (operation.pending) {
            operation.waiter = std::move(resume);
          } else {  // Completed since the check above.
            asio::post(executor_, [resume = std::move(resume), ok = !failed_] { resume(ok); });
          }
        },
        asio::use_awaitable);
  }

  asio::any_io_executor executor_;
  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point limit_ = std::chrono::steady_clock::time_point::max();
  std::atomic<bool> timed_out_{false};
  grpc::ClientContext context_;
  v1::EnqueueRequest write_buffer_;
  v1::EnqueueResponse read_buffer_;
  bool released_ = false;     // RemoveHold() was called. Session side only.
  bool half_closed_ = false;  // Session side only.
  absl::Mutex mu_;
  std::shared_ptr<EnqueueCall> self_ ABSL_GUARDED_BY(mu_);
  Operation write_ ABSL_GUARDED_BY(mu_);
  Operation read_ ABSL_GUARDED_BY(mu_);
  Operation done_ ABSL_GUARDED_BY(mu_);
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

constexpr int kOpenAttempts = 3;
// Messages a shared stream carries, and how long it is used, before a new one takes over (on
// the replica round_robin picks next): often enough that the replicas share the load within
// seconds, rarely enough that opening a stream costs next to nothing per message.
constexpr uint64_t kMessagesPerStream = 256;
constexpr std::chrono::milliseconds kStreamLifetime{500};

// "dns:///queue.ns.svc:50051" → "queue.ns.svc": the name the replicas' certificate carries.
std::string ServiceHostName(const std::string& address) {
  std::string host = address;
  if (size_t scheme = host.find(":///"); scheme != std::string::npos) host = host.substr(scheme + 4);
  if (size_t colon = host.rfind(':'); colon != std::string::npos && host.find(']') == std::string::npos) {
    host = host.substr(0, colon);
  }
  return host;
}

// Turns a failed step into the most telling status: gRPC's final one if it has one, and
// DEADLINE_EXCEEDED when our own timeout cancelled the call (gRPC then says CANCELLED).
asio::awaitable<absl::Status> FailedStep(EnqueueLane& call, absl::string_view step) {
  grpc::Status status = co_await call.Finish();
  if (call.timed_out()) {
    co_return absl::DeadlineExceededError(
        absl::StrCat("queue-service: no answer to the ", step, " within postgate_queue_timeout"));
  }
  if (!status.ok()) co_return FromGrpc(status);
  co_return absl::UnavailableError(absl::StrCat("queue-service: ", step, " failed"));
}

v1::BodyType ToProto(protocol::BodyType body) {
  switch (body) {
    case protocol::BodyType::k7Bit: return v1::BODY_TYPE_7BIT;
    case protocol::BodyType::k8BitMime: return v1::BODY_TYPE_8BITMIME;
    case protocol::BodyType::kUnspecified: break;
  }
  return v1::BODY_TYPE_UNSPECIFIED;
}

// One unary Flush call bridged to the caller's executor; gRPC's deadline bounds it.
struct FlushCall {
  grpc::ClientContext context;
  v1::FlushRequest request;
  v1::FlushResponse response;
};

}  // namespace

struct GrpcQueueClient::Impl {
  std::shared_ptr<grpc::Channel> channel;  // Every replica, round_robin.
  std::unique_ptr<v1::QueueService::Stub> stub;
  std::chrono::milliseconds timeout;
  size_t replay_limit = 0;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments peer_arguments;
  // Shared EnqueueMany streams for first attempts (none: a call per message). After `stub`:
  // destroyed first.
  std::unique_ptr<EnqueueManyStreams> streams;

  // A stub bound to one replica (a peer address from an earlier call), for retries that must
  // reach the replica that may already hold the message.
  v1::QueueService::Stub& StubFor(const std::string& peer) {
    absl::MutexLock lock(&mu);
    std::unique_ptr<v1::QueueService::Stub>& stub_for_peer = peer_stubs[peer];
    if (!stub_for_peer) {
      stub_for_peer = v1::QueueService::NewStub(grpc::CreateCustomChannel(peer, credentials, peer_arguments));
    }
    return *stub_for_peer;
  }
  absl::Mutex mu;
  absl::flat_hash_map<std::string, std::unique_ptr<v1::QueueService::Stub>> peer_stubs ABSL_GUARDED_BY(mu);
};

namespace {

// A fresh random key per message: 128 bits, hex.
std::string NewIdempotencyKey() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return absl::StrCat(absl::Hex(generator(), absl::kZeroPad16), absl::Hex(generator(), absl::kZeroPad16));
}

// Waits for the queue ID the envelope sent on `lane` is given (within the bound the caller set
// on it: the step's budget): the lane and the ID. The lane's later steps get their own timeout each.
asio::awaitable<absl::StatusOr<std::pair<std::shared_ptr<EnqueueLane>, std::string>>> AwaitQueueId(
    std::shared_ptr<EnqueueLane> lane) {
  v1::EnqueueResponse response;
  if (!co_await lane->Received(&response) || response.queue_id().empty()) {
    co_return co_await FailedStep(*lane, "queue ID");
  }
  lane->Bound(std::chrono::steady_clock::time_point::max());
  co_return std::make_pair(std::move(lane), response.queue_id());
}

// Opens an Enqueue call of its own on `stub` and sends the envelope.
asio::awaitable<absl::StatusOr<std::pair<std::shared_ptr<EnqueueLane>, std::string>>> StartEnqueue(
    v1::QueueService::Stub& stub, const v1::EnqueueRequest& envelope, std::chrono::milliseconds timeout,
    std::chrono::steady_clock::time_point limit) {
  auto call = std::make_shared<EnqueueCall>(co_await asio::this_coro::executor, timeout);
  call->Bound(limit);
  call->Start(stub, v1::EnqueueRequest(envelope));
  co_return co_await AwaitQueueId(std::move(call));
}

// Sends the envelope on a lane of a shared EnqueueMany stream, if one can take it.
asio::awaitable<std::optional<absl::StatusOr<std::pair<std::shared_ptr<EnqueueLane>, std::string>>>> StartOnStream(
    EnqueueManyStreams& streams, const v1::EnqueueRequest& envelope, std::chrono::milliseconds timeout,
    std::chrono::steady_clock::time_point limit) {
  std::shared_ptr<EnqueueLane> lane = streams.NewLane(co_await asio::this_coro::executor, timeout);
  if (!lane) co_return std::nullopt;
  lane->Bound(limit);
  lane->Send(v1::EnqueueRequest(envelope), /*last=*/false);
  co_return co_await AwaitQueueId(std::move(lane));
}

// Keeps what it sent (up to the replay limit) so that when the stream breaks it can send the
// message again – to the same replica, with the same idempotency key: if that replica stored it
// already it answers the ID and stores nothing; otherwise it stores it once, under the same ID.
class GrpcMessageUpload : public MessageUpload {
 public:
  GrpcMessageUpload(GrpcQueueClient::Impl& client, v1::EnqueueRequest envelope,
                    std::shared_ptr<EnqueueLane> call, std::string queue_id)
      : client_(client), envelope_(std::move(envelope)), call_(std::move(call)),
        queue_id_(std::move(queue_id)), peer_(call_->peer()) {}
  ~GrpcMessageUpload() override {
    if (!committed_) call_->Cancel();  // The queue discards what it received.
  }

  const std::string& queue_id() const override { return queue_id_; }

  asio::awaitable<absl::Status> Write(std::string chunk) override {
    Keep(chunk);
    v1::EnqueueRequest request;
    request.set_content(std::move(chunk));
    // This write, and the replay should the stream break, within one postgate_queue_timeout.
    step_limit_ = std::chrono::steady_clock::now() + client_.timeout;
    call_->Bound(step_limit_);
    if (co_await call_->ReadyToSend()) {
      call_->Send(std::move(request), /*last=*/false);
    } else {
      absl::Status failed = co_await FailedStep(*call_, "write");
      co_return co_await Replay(failed, /*commit_size=*/std::nullopt);
    }
    co_return absl::OkStatus();
  }

  asio::awaitable<absl::Status> Commit(std::string last_chunk, uint64_t size, const CommitExtras& extras) override {
    Keep(last_chunk);
    extras_ = extras;  // Sent again with a replayed commit.
    // The commit, and its replay if the stream broke, within one postgate_queue_timeout.
    step_limit_ = std::chrono::steady_clock::now() + client_.timeout;
    call_->Bound(step_limit_);
    absl::Status status = co_await CommitOn(*call_, size, std::move(last_chunk));
    if (status.ok() || absl::IsInternal(status)) co_return status;
    co_return co_await Replay(status, size);
  }

 private:
  void Keep(const std::string& chunk) {
    if (!replayable_) return;
    if (kept_bytes_ + chunk.size() > client_.replay_limit) {
      replayable_ = false;
      kept_.clear();
      return;
    }
    kept_bytes_ += chunk.size();
    kept_.push_back(chunk);
  }

  asio::awaitable<absl::Status> CommitOn(EnqueueLane& call, uint64_t size, std::string last_chunk) {
    v1::EnqueueRequest request;
    request.mutable_commit()->set_size(size);
    request.mutable_commit()->set_content(std::move(last_chunk));
    request.mutable_commit()->set_header_prefix(extras_.header_prefix);
    request.mutable_commit()->set_hold(extras_.hold);
    request.mutable_commit()->set_hold_reason(extras_.hold_reason);
    request.mutable_commit()->set_redirect_to(extras_.redirect_to);
    request.mutable_commit()->set_sender_changed(extras_.sender_changed);
    request.mutable_commit()->set_sender(extras_.sender);
    request.mutable_commit()->set_recipients_changed(extras_.recipients_changed);
    for (const std::string& recipient : extras_.recipients) request.mutable_commit()->add_recipients(recipient);
    for (const protocol::RecipientDsn& dsn : extras_.recipient_dsn) {
      SetRecipientOptions(dsn, *request.mutable_commit()->add_recipient_options());
    }
    // Half the step timeout: the queue must have committed well before we stop waiting.
    const auto deadline = std::chrono::system_clock::now() + client_.timeout / 2;
    const auto nanos =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    request.mutable_commit()->mutable_deadline()->set_seconds(nanos / 1000000000);
    request.mutable_commit()->mutable_deadline()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
    if (!co_await call.ReadyToSend()) co_return co_await FailedStep(call, "commit");
    call.Send(std::move(request), /*last=*/true);
    call.StartReceive();
    v1::EnqueueResponse response;
    if (!co_await call.Received(&response)) co_return co_await FailedStep(call, "commit");
    if (response.committed_queue_id() != queue_id_) {
      co_return absl::InternalError("queue-service confirmed another message");
    }
    committed_ = true;
    call.Release();  // Stored already: the call ends by itself, nobody waits for its status.
    co_return absl::OkStatus();
  }

  // Sends the envelope and everything kept again, the last chunk included (and commits, given
  // `commit_size`). One more attempt after a short pause: a broken stream, not a replica that is
  // gone, is what it is for.
  asio::awaitable<absl::Status> Replay(absl::Status failure, std::optional<uint64_t> commit_size) {
    if (!replayable_ || replayed_ || peer_.empty() || absl::IsDeadlineExceeded(failure)) co_return failure;
    if (std::chrono::steady_clock::now() >= step_limit_) co_return failure;
    replayed_ = true;
    asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
    co_await pause.async_wait(asio::use_awaitable);
    envelope_.mutable_envelope()->set_requested_queue_id(queue_id_);
    auto started = co_await StartEnqueue(client_.StubFor(peer_), envelope_, client_.timeout, step_limit_);
    if (!started.ok()) co_return failure;
    call_->Cancel();
    call_ = started->first;
    call_->Bound(step_limit_);
    queue_id_ = started->second;  // The same unless the replica had to give a new one.
    for (const std::string& chunk : kept_) {
      v1::EnqueueRequest request;
      request.set_content(chunk);
      if (!co_await call_->ReadyToSend()) co_return co_await FailedStep(*call_, "write");
      call_->Send(std::move(request), /*last=*/false);
    }
    if (!commit_size) co_return absl::OkStatus();
    co_return co_await CommitOn(*call_, *commit_size, std::string());
  }

  GrpcQueueClient::Impl& client_;
  v1::EnqueueRequest envelope_;
  std::shared_ptr<EnqueueLane> call_;  // A call of its own, or a lane of a shared stream.
  std::string queue_id_;
  const std::string peer_;
  std::vector<std::string> kept_;
  CommitExtras extras_;
  uint64_t kept_bytes_ = 0;
  bool replayable_ = true;
  bool replayed_ = false;
  // Budget of the step under way (a write's replay, or the commit with its replay).
  std::chrono::steady_clock::time_point step_limit_ = std::chrono::steady_clock::time_point::max();
  bool committed_ = false;
};

}  // namespace

GrpcQueueClient::GrpcQueueClient(const std::string& address, std::chrono::milliseconds step_timeout,
                                 const QueueChannelTls& tls, size_t replay_limit, size_t streams)
    : impl_(std::make_unique<Impl>()) {
  grpc::ChannelArguments arguments;
  // Reconnect quickly after queue-service restarts, so clients see 451 for as short as possible.
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  impl_->peer_arguments = arguments;
  // Several replicas ("dns:///postgate-queue-headless:50051" or "ipv4:a:p,b:p"): every message
  // goes to the next ready one; one that is down or draining is skipped.
  arguments.SetLoadBalancingPolicyName("round_robin");
  impl_->credentials = grpc::InsecureChannelCredentials();
  if (!tls.ca_pem.empty()) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = tls.ca_pem;
    options.pem_cert_chain = tls.cert_pem;
    options.pem_private_key = tls.key_pem;
    impl_->credentials = grpc::SslCredentials(options);
    // A retry addresses a replica by IP: its certificate still names the service.
    impl_->peer_arguments.SetSslTargetNameOverride(ServiceHostName(address));
  }
  impl_->channel = grpc::CreateCustomChannel(address, impl_->credentials, arguments);
  impl_->stub = v1::QueueService::NewStub(impl_->channel);
  impl_->timeout = step_timeout;
  impl_->replay_limit = replay_limit;
  if (streams > 0) {
    impl_->streams = std::make_unique<EnqueueManyStreams>(*impl_->stub, streams, kMessagesPerStream,
                                                          kStreamLifetime);
  }
}

GrpcQueueClient::~GrpcQueueClient() = default;

asio::awaitable<absl::StatusOr<std::unique_ptr<MessageUpload>>> GrpcQueueClient::Open(
    const OutgoingEnvelope& envelope) {
  v1::EnqueueRequest request;
  v1::Envelope& out = *request.mutable_envelope();
  out.set_sender(envelope.transaction.sender);
  for (const std::string& recipient : envelope.transaction.recipients) out.add_recipients(recipient);
  out.set_body_type(ToProto(envelope.transaction.body_type));
  out.set_declared_size(envelope.transaction.declared_size);
  out.set_smtputf8(envelope.transaction.smtputf8);
  switch (envelope.transaction.dsn_return) {
    case protocol::DsnReturn::kFull: out.set_dsn_return(v1::DSN_RETURN_FULL); break;
    case protocol::DsnReturn::kHeaders: out.set_dsn_return(v1::DSN_RETURN_HEADERS); break;
    case protocol::DsnReturn::kUnspecified: break;
  }
  out.set_envid(envelope.transaction.envid);
  for (const protocol::RecipientDsn& dsn : envelope.transaction.recipient_dsn) {
    SetRecipientOptions(dsn, *out.add_recipient_options());
  }
  out.mutable_client()->set_address(envelope.client_address);
  out.mutable_client()->set_hostname(envelope.client_hostname);
  out.mutable_client()->set_helo(envelope.helo);
  out.mutable_client()->set_protocol(envelope.protocol);
  out.set_idempotency_key(NewIdempotencyKey());
  // Nothing is stored before the envelope is answered: a replica that fails here is simply
  // replaced by the next one.
  // The attempts share one postgate_queue_timeout: a queue that accepts the call and stalls
  // costs the client that long, not once per attempt.
  absl::Status failure;
  const auto limit = std::chrono::steady_clock::now() + impl_->timeout;
  for (int attempt = 0; attempt < kOpenAttempts && std::chrono::steady_clock::now() < limit; ++attempt) {
    // The first attempt on a shared stream when there is one; retries with calls of their own.
    std::optional<absl::StatusOr<std::pair<std::shared_ptr<EnqueueLane>, std::string>>> on_stream;
    if (attempt == 0 && impl_->streams) {
      on_stream = co_await StartOnStream(*impl_->streams, request, impl_->timeout, limit);
    }
    if (!on_stream) on_stream = co_await StartEnqueue(*impl_->stub, request, impl_->timeout, limit);
    absl::StatusOr<std::pair<std::shared_ptr<EnqueueLane>, std::string>> started = *std::move(on_stream);
    if (started.ok()) {
      co_return std::make_unique<GrpcMessageUpload>(*impl_, std::move(request), std::move(started->first),
                                                    std::move(started->second));
    }
    failure = started.status();
    if (absl::IsDeadlineExceeded(failure)) break;  // The whole step budget is spent.
  }
  co_return failure;
}

}  // namespace postgate::gateway

namespace postgate::gateway {

asio::awaitable<absl::StatusOr<uint32_t>> GrpcQueueClient::Flush(const std::string& domain,
                                                                 bool include_subdomains) {
  auto call = std::make_shared<FlushCall>();
  call->request.set_domain(domain);
  call->request.set_include_subdomains(include_subdomains);
  call->context.set_deadline(std::chrono::system_clock::now() + impl_->timeout);
  auto executor = co_await asio::this_coro::executor;
  grpc::Status status = co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(grpc::Status)>(
      [&](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        impl_->stub->async()->Flush(&call->context, &call->request, &call->response,
                                    [executor, shared, call](grpc::Status result) {
                                      asio::post(executor, [shared, result] { (*shared)(result); });
                                    });
      },
      asio::use_awaitable);
  if (!status.ok()) co_return FromGrpc(status);
  co_return call->response.messages();
}

}  // namespace postgate::gateway

namespace postgate::gateway {

std::optional<bool> GrpcQueueClient::Connected() {
  switch (impl_->channel->GetState(/*try_to_connect=*/true)) {
    case GRPC_CHANNEL_READY: return true;
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
    case GRPC_CHANNEL_SHUTDOWN: return false;
    default: return std::nullopt;  // IDLE or CONNECTING.
  }
}

}  // namespace postgate::gateway
