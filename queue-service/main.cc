// queue-service: flags → main.cf → store, index, delivery, gRPC API, metrics → run until SIGINT or
// SIGTERM. The only place concrete classes are chosen.
#include <malloc.h>

#include <condition_variable>
#include <csignal>
#include <mutex>
#include <stop_token>
#include <thread>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/statvfs.h>
#include <iostream>
#include <memory>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "core/addressing/local_domain.h"
#include "core/config/aliases.h"
#include "core/config/main_cf.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "queue-service/api/queue_api_service.h"
#include "queue-service/delivery/delivery_agent.h"
#include "queue-service/delivery/local_delivery.h"
#include "queue-service/metrics/queue_metrics.h"
#include "queue-service/store/rocksdb_message_store.h"
#include "core/base/logging.h"
#include "spdlog/spdlog.h"

namespace {

using namespace postgate;

// Exits with "queue-service: fatal: <why>" like Postfix's daemons.
[[noreturn]] void Fatal(const absl::Status& status) {
  std::cerr << "queue-service: fatal: " << status.message() << std::endl;
  std::exit(1);
}

// notify_classes and the addresses its notices go to and come from ("postmaster" becomes
// postmaster@$myorigin, as Postfix appends $myorigin).
void ApplyNotifyClasses(const config::MainCf& cf, queue::DeliveryAgentOptions& options) {
  std::vector<std::string> not_sent;
  for (const std::string& name : cf.GetList("notify_classes")) {
    const std::string notice = absl::AsciiStrToLower(name);
    if (notice == "bounce") {
      options.notify_bounce = options.notify_2bounce = true;  // bounce implies 2bounce.
    } else if (notice == "2bounce") {
      options.notify_2bounce = true;
    } else if (notice == "delay") {
      options.notify_delay = true;
    } else if (notice == "resource" || notice == "software" || notice == "policy" || notice == "protocol" ||
               notice == "data") {
      not_sent.push_back(notice);  // Postfix's SMTP session transcripts: not produced by Postgate.
    } else {
      Fatal(cf.Error("notify_classes", absl::StrCat("\"", name, "\": use bounce, 2bounce or delay")));
    }
  }
  if (!not_sent.empty()) {
    spdlog::info("notify_classes: {}: Postgate sends no session transcripts to the postmaster (only bounce, "
                 "2bounce and delay notices)", absl::StrJoin(not_sent, ", "));
  }
  auto qualified = [&cf](const std::string& parameter) {
    std::string address = cf.Get(parameter);
    if (address.empty()) Fatal(cf.Error(parameter, "must not be empty"));
    if (address.find('@') == std::string::npos) absl::StrAppend(&address, "@", cf.Get("myorigin"));
    return address;
  };
  options.bounce_notice_recipient = qualified("bounce_notice_recipient");
  options.double_bounce_recipient = qualified("2bounce_notice_recipient");
  options.delay_notice_recipient = qualified("delay_notice_recipient");
  options.double_bounce_sender = qualified("double_bounce_sender");
}

struct Flags {
  std::string config = "/etc/postgate/main.cf";
  std::string data_dir;
  std::string listen;
  std::string metrics;
  std::vector<std::string> overrides;  // -o name=value
};

void Override(config::MainCf& cf, const std::string& value, const char* name, const char* flag) {
  if (value.empty()) return;
  if (absl::Status status = cf.Override(name, value, flag); !status.ok()) Fatal(status);
}

std::string ReadFileOrDie(const config::MainCf& cf, const char* parameter) {
  absl::StatusOr<std::string> text = config::ReadFileParameter(cf, parameter);
  if (!text.ok()) Fatal(text.status());
  return *std::move(text);
}

// Plain gRPC, TLS, or mutual TLS on the queue's port, from postgate_queue_tls_*.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const config::MainCf& cf) {
  if (cf.Get("postgate_queue_tls_cert_file").empty()) {
    if (!cf.Get("postgate_queue_tls_client_ca_file").empty()) {
      Fatal(cf.Error("postgate_queue_tls_client_ca_file", "needs postgate_queue_tls_cert_file"));
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({ReadFileOrDie(cf, "postgate_queue_tls_key_file"),
                                        ReadFileOrDie(cf, "postgate_queue_tls_cert_file")});
  if (!cf.Get("postgate_queue_tls_client_ca_file").empty()) {
    options.pem_root_certs = ReadFileOrDie(cf, "postgate_queue_tls_client_ca_file");
    options.client_certificate_request =
        cf.GetBool("postgate_queue_tls_require_client_cert")
            ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  } else if (cf.GetBool("postgate_queue_tls_require_client_cert")) {
    Fatal(cf.Error("postgate_queue_tls_require_client_cert", "needs postgate_queue_tls_client_ca_file"));
  }
  return grpc::SslServerCredentials(options);
}

int Run(const Flags& flags) {
  absl::StatusOr<config::MainCf> loaded = config::LoadMainCf(flags.config);
  if (!loaded.ok()) Fatal(loaded.status());
  config::MainCf& cf = *loaded;
  Override(cf, flags.data_dir, "postgate_data_directory", "--data-dir");
  Override(cf, flags.listen, "postgate_queue_listen", "--listen");
  Override(cf, flags.metrics, "postgate_queue_metrics_listen", "--metrics");
  if (absl::Status applied = config::ApplyOverrides(cf, flags.overrides); !applied.ok()) Fatal(applied);
  if (absl::Status logging = base::InitLogging(cf.Get("myhostname"), absl::StrCat(cf.Get("syslog_name"), "/queue"),
                                                cf.Get("postgate_log_format"));
      !logging.ok()) {
    Fatal(cf.Error("postgate_log_format", logging.message()));
  }

  absl::StatusOr<config::AliasTable> aliases = config::LoadAliasMaps(cf);
  if (!aliases.ok()) Fatal(aliases.status());
  addressing::LocalDomain domain(cf, *std::move(aliases));

  queue::MailboxFormat format = queue::MailboxFormat::kMaildir;
  if (cf.Get("postgate_mailbox_format") == "mbox") {
    format = queue::MailboxFormat::kMbox;
  } else if (cf.Get("postgate_mailbox_format") != "maildir") {
    Fatal(cf.Error("postgate_mailbox_format", "use maildir or mbox"));
  }

  const std::string data_dir = cf.Get("postgate_data_directory");
  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error) Fatal(cf.Error("postgate_data_directory", absl::StrCat(data_dir, ": ", error.message())));
  absl::StatusOr<std::unique_ptr<queue::RocksDbMessageStore>> store =
      queue::RocksDbMessageStore::Open(data_dir + "/queue");
  if (!store.ok()) Fatal(store.status());
  if (const uint64_t indexed = (*store)->upgraded_records(); indexed > 0) {
    spdlog::info("queue layout upgraded: {} records indexed (pending, done by completion, idempotency keys)", indexed);
  }

  auto registry = std::make_shared<prometheus::Registry>();
  queue::QueueIndex index;
  queue::QueueMetrics metrics(*registry);
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(cf.Get("postgate_queue_metrics_listen"));
  } catch (const std::exception& e) {
    Fatal(cf.Error("postgate_queue_metrics_listen", absl::StrCat("cannot listen: ", e.what())));
  }
  exposer->RegisterCollectable(registry);
  // The exposer holds collectables weakly: this one must live as long as it.
  std::shared_ptr<prometheus::Collectable> depth = queue::QueueMetrics::QueueDepthCollector(index);
  exposer->RegisterCollectable(depth);
  std::shared_ptr<prometheus::Collectable> memory = queue::QueueMetrics::MemoryCollector([&store = **store] {
    const queue::RocksDbMessageStore::MemoryUsage usage = store.Memory();
    return queue::QueueMetrics::NamedBytes{{"store_memtables", usage.memtables},
                                           {"store_table_readers", usage.table_readers},
                                           {"store_block_cache", usage.block_cache}};
  });
  exposer->RegisterCollectable(memory);

  queue::LocalDelivery local(domain, {data_dir + "/mail", format,
                                      static_cast<uint64_t>(cf.GetInteger("mailbox_size_limit")),
                                      cf.Get("myhostname")});
  absl::StatusOr<queue::Router> router = queue::Router::Create(cf);
  if (!router.ok()) Fatal(router.status());
  queue::DeliveryAgentOptions options;
  options.workers = static_cast<int>(cf.GetInteger("local_destination_concurrency_limit"));
  options.queue_run_delay = cf.GetTime("queue_run_delay");
  options.done_retention = cf.GetTime("postgate_done_retention");
  options.router = &*router;
  options.smtp.helo_name = cf.Get("smtp_helo_name");
  options.smtp.myhostname = cf.Get("myhostname");
  const std::string smtp_tls = cf.Get("smtp_tls_security_level");
  if (smtp_tls == "" || smtp_tls == "none") options.smtp.tls_level = queue::SmtpTlsLevel::kNone;
  else if (smtp_tls == "may") options.smtp.tls_level = queue::SmtpTlsLevel::kMay;
  else if (smtp_tls == "encrypt") options.smtp.tls_level = queue::SmtpTlsLevel::kEncrypt;
  else if (smtp_tls == "verify" || smtp_tls == "secure") options.smtp.tls_level = queue::SmtpTlsLevel::kVerify;
  else Fatal(cf.Error("smtp_tls_security_level", absl::StrCat("\"", smtp_tls, "\": use none, may, encrypt or verify")));
  options.smtp.tls_ca_file = cf.Get("smtp_tls_CAfile");
  if (options.smtp.tls_level == queue::SmtpTlsLevel::kVerify && options.smtp.tls_ca_file.empty()) {
    Fatal(cf.Error("smtp_tls_security_level", "verify needs smtp_tls_CAfile"));
  }
  options.smtp.tls_wrappermode = cf.GetBool("smtp_tls_wrappermode");
  absl::StatusOr<queue::SmtpSaslOptions> sasl = queue::SmtpSaslOptionsFrom(cf);
  if (!sasl.ok()) Fatal(sasl.status());
  options.smtp.sasl = *std::move(sasl);
  if (const std::vector<std::string> generic = cf.GetList("smtp_generic_maps"); !generic.empty()) {
    const std::string delimiters = cf.Get("recipient_delimiter");
    absl::StatusOr<addressing::AddressMaps> maps =
        addressing::AddressMaps::Load(generic, delimiters.empty() ? '\0' : delimiters.front());
    if (!maps.ok()) Fatal(cf.Error("smtp_generic_maps", maps.status().message()));
    options.smtp.generic_maps = std::make_shared<const addressing::AddressMaps>(*std::move(maps));
    absl::StatusOr<bool> propagate = addressing::PropagatesUnmatchedExtensions(cf, "generic");
    if (!propagate.ok()) Fatal(propagate.status());
    options.smtp.generic_propagate = *propagate;
    options.smtp.generic_is_local = [&domain](absl::string_view name) { return domain.IsOriginOrLocal(name); };
  }
  options.smtp.connect_timeout = cf.GetTime("smtp_connect_timeout");
  options.smtp.helo_timeout = cf.GetTime("smtp_helo_timeout");
  options.smtp.mail_timeout = cf.GetTime("smtp_mail_timeout");
  options.smtp.rcpt_timeout = cf.GetTime("smtp_rcpt_timeout");
  options.smtp.data_init_timeout = cf.GetTime("smtp_data_init_timeout");
  options.smtp.data_xfer_timeout = cf.GetTime("smtp_data_xfer_timeout");
  options.smtp.data_done_timeout = cf.GetTime("smtp_data_done_timeout");
  options.minimal_backoff = cf.GetTime("minimal_backoff_time");
  options.smtp.plaintext_fallback_after = options.minimal_backoff;
  options.maximal_backoff = cf.GetTime("maximal_backoff_time");
  options.maximal_queue_lifetime = cf.GetTime("maximal_queue_lifetime");
  options.bounce_queue_lifetime = cf.GetTime("bounce_queue_lifetime");
  options.delay_warning_time = cf.GetTime("delay_warning_time");
  options.dns_servers = cf.Get("postgate_dns_servers");
  options.smtp_workers = static_cast<int>(cf.GetInteger("default_process_limit"));
  options.connection_cache.enabled = cf.GetBool("smtp_connection_cache_on_demand");
  options.connection_cache.idle_limit = cf.GetTime("smtp_connection_cache_time_limit");
  options.connection_cache.reuse_time_limit = cf.GetTime("smtp_connection_reuse_time_limit");
  options.connection_cache.reuse_count_limit = static_cast<int>(cf.GetInteger("smtp_connection_reuse_count_limit"));
  options.destination_concurrency_limit = static_cast<int>(cf.GetInteger("default_destination_concurrency_limit"));
  options.destination_recipient_limit = static_cast<int>(cf.GetInteger("default_destination_recipient_limit"));
  options.myhostname = cf.Get("myhostname");
  ApplyNotifyClasses(cf, options);
  const int64_t replica = cf.GetInteger("postgate_queue_replica_id");
  if (replica >= queue::kMaxReplicas) {
    Fatal(cf.Error("postgate_queue_replica_id", absl::StrCat(replica, ": use 0 to ", queue::kMaxReplicas - 1)));
  }
  queue::QueueIdGenerator ids("", static_cast<int>(replica));
  queue::ActivityHistory activity;
  queue::EventBus events([&activity](const queue::v1::QueueEvent& event) { activity.Record(event); });
  queue::DeliveryAgent agent(**store, index, ids, events, domain, local, metrics, options);
  if (absl::Status recovered = agent.Recover(); !recovered.ok()) Fatal(recovered);
  absl::StatusOr<std::string> newest = (*store)->LastId();
  if (!newest.ok()) Fatal(newest.status());
  ids.AtLeast(*newest);

  const uint64_t size_limit = static_cast<uint64_t>(cf.GetInteger("message_size_limit"));
  // Room for the trace header the gateway adds on top of the client's bytes.
  queue::AdminAuth admin(cf.Get("postgate_queue_admin_token_file"),
                         cf.GetList("postgate_queue_admin_client_names"), metrics.admin_denied);
  queue::QueueApiService service(**store, index, ids, agent, events, activity, metrics, admin,
                                 size_limit == 0 ? 0 : size_limit + 64 * 1024);
  const int64_t minfree_setting = cf.GetInteger("queue_minfree");
  const uint64_t minfree = minfree_setting > 0 ? static_cast<uint64_t>(minfree_setting) : size_limit / 2 * 3;
  service.SetStorageCheck([data_dir, minfree]() -> absl::Status {
    struct statvfs space {};
    // Unknown – no answer, or a file system that reports no size at all (FUSE ones such as
    // LazyFS): let the write decide.
    if (statvfs(data_dir.c_str(), &space) != 0 || space.f_blocks == 0) return absl::OkStatus();
    const uint64_t available = static_cast<uint64_t>(space.f_bavail) * space.f_frsize;
    if (available >= minfree) return absl::OkStatus();
    return absl::ResourceExhaustedError(absl::StrCat("insufficient system storage: ", available,
                                                     " bytes free in ", data_dir, ", queue_minfree ", minfree));
  });
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(cf.Get("postgate_queue_listen"), ServerCredentials(cf), &grpc_port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(4 << 20);
  // Flow control: each Enqueue stream keeps gRPC's fixed initial window. With BDP probing gRPC
  // widened the windows to what loopback could carry, and 100 concurrent 10 MB uploads then
  // waited in this process's receive buffers (peak RSS 423 MiB against 145 MiB without). Inside a
  // cluster the round trip is far below a millisecond, so a stream still moves >100 MB/s.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  // Gateways reconnect every few minutes, and re-resolve the headless Service as they do, so a
  // replica added by scaling up gets its share of new mail. Streams under way get a minute to end.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, 5 * 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 60 * 1000);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || grpc_port == 0) {
    Fatal(cf.Error("postgate_queue_listen", "cannot listen on " + cf.Get("postgate_queue_listen")));
  }
  // Probes: "" is liveness (the process serves), "readiness" also needs the replica to take new
  // messages (false while it is being emptied, and from SIGTERM on).
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus("readiness", true);
  service.OnAcceptingChange([health](bool accepting) { health->SetServingStatus("readiness", accepting); });
  agent.Start();
  // Free heap pages go back to the system every 10 seconds: glibc returns on its own only what is
  // free at the top of an arena, and the store's cache and the messages' buffers churn all through
  // it. Measured without this: the allocator's free bytes grew 2 → 11 MiB in a 10-minute steady run.
  std::jthread heap_trimmer([](std::stop_token stop) {
    std::mutex mu;
    std::condition_variable_any wake;
    std::unique_lock lock(mu);
    while (!stop.stop_requested()) {
      wake.wait_for(lock, stop, std::chrono::seconds(10), [] { return false; });
      if (!stop.stop_requested()) malloc_trim(0);
    }
  });

  std::string grpc_host = std::vector<std::string>(absl::StrSplit(cf.Get("postgate_queue_listen"), ':'))[0];
  spdlog::info("queue-service listening grpc={}:{} metrics=127.0.0.1:{} data={}", grpc_host, grpc_port,
               exposer->GetListeningPorts().front(), data_dir);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  int signal_number = 0;
  // main.cf is read at start only here (a restart is safe: every message is on disk); SIGHUP,
  // which reloads smtp-gateway, must not stop the queue.
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    spdlog::warn("queue-service: SIGHUP ignored: main.cf is read at start; restart queue-service to apply "
                 "changes (the Helm chart rolls the StatefulSet when its ConfigMap changes)");
  }
  spdlog::info("queue-service stopping on signal {}", signal_number);
  health->SetServingStatus("readiness", false);
  health->SetServingStatus("", false);
  service.StopStreams();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  agent.Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Large blocks (the store's memtable arenas: megabytes, freed at each flush) come from mmap and
  // go back to the system when freed. glibc's default raises this threshold after the first such
  // free, after which they come from the heap, and what a flush frees stays in the process:
  // measured, 15-45 MiB of free heap held and growing over a steady run. A fixed value turns that
  // adaptation off.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  // Fixing that threshold also fixes the trim threshold at its default, 128 KiB: a thread's arena
  // then hands back (madvise) any free top above it, and the next message's buffers fault the
  // pages in again. At 100 KiB that was 0.26 madvise calls per message, and the page faults a
  // third of queue-service's CPU. 4 MiB per arena keeps a few messages' worth (measured
  // 2026-12-02, tmpfs, 1,000 × 100 KiB, 2 A/B pairs: 1.77-1.89 ms of CPU per message instead of
  // 2.45-2.52, no madvise left; bench/README.md).
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
  // Debian builds Abseil without NDEBUG, which leaves its debug-only deadlock detector on: every
  // Mutex lock then updates one process-wide lock graph (gRPC locks included). Measured at
  // 2-4 % of each service's CPU under load; the locking itself is unchanged.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Signals are taken with sigwait; block them before any thread exists so all threads inherit it.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  Flags flags;
  CLI::App app{"Postgate queue-service: durable queue, local delivery and the queue status API"};
  app.add_option("--config", flags.config, "main.cf to read")->capture_default_str();
  app.add_option("--data-dir", flags.data_dir, "data directory (overrides postgate_data_directory)");
  app.add_option("--listen", flags.listen, "gRPC host:port (overrides postgate_queue_listen)");
  app.add_option("--metrics", flags.metrics,
                 "Prometheus host:port (overrides postgate_queue_metrics_listen)");
  app.add_option("-o", flags.overrides, "name=value: set a main.cf parameter (wins over the file)");
  CLI11_PARSE(app, argc, argv);
  return Run(flags);
}
