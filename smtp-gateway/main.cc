// smtp-gateway: flags → main.cf → policy, queue client, metrics → listeners → run until SIGINT or
// SIGTERM. The only place concrete classes are chosen.
#include <algorithm>
#include <atomic>
#include <functional>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include <sys/resource.h>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/ip/v6_only.hpp"
#include "asio/signal_set.hpp"
#include "asio/thread_pool.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "core/io/mx_resolver.h"
#include "core/config/main_cf.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "smtp-gateway/dkim/dkim_keys.h"
#include "smtp-gateway/metrics/gateway_metrics.h"
#include "smtp-gateway/queue_client/grpc_queue_client.h"
#include "smtp-gateway/session/smtp_server.h"
#include "smtp-gateway/session/tls_context.h"
#include "smtp-gateway/settings/gateway_settings.h"
#include "smtp-gateway/settings/smtp_services.h"
#include "core/base/status_macros.h"
#include "core/base/absl_fmt.h"
#include "core/base/logging.h"
#include "spdlog/spdlog.h"

// LeakSanitizer's interface, in builds with AddressSanitizer (g++ or clang).
#if defined(__SANITIZE_ADDRESS__)
#define POSTGATE_LEAK_CHECK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POSTGATE_LEAK_CHECK 1
#endif
#endif
#if POSTGATE_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif

namespace {

using namespace postgate;
using asio::ip::tcp;

[[noreturn]] void Fatal(const absl::Status& status) {
  std::cerr << "smtp-gateway: fatal: " << status.message() << std::endl;
  std::exit(1);
}

struct Flags {
  std::string config = "/etc/postgate/main.cf";
  std::string listen;
  std::string queue;
  std::string metrics;
  std::vector<std::string> overrides;  // -o name=value
  bool dkim_records = false;           // Print the DNS records of the DKIM keys and exit.
};

std::string ReadFileOrDie(const config::MainCf& cf, const char* parameter) {
  absl::StatusOr<std::string> text = config::ReadFileParameter(cf, parameter);
  if (!text.ok()) Fatal(text.status());
  return *std::move(text);
}

// main.cf with the command line's overrides (-o name=value wins, as with Postfix's daemons).
// postgate_smtpd_session_limit, kept inside the descriptors the process may open: the soft
// RLIMIT_NOFILE is raised to the hard one, and if that is still too low the limit shrinks (with a
// warning) so that accept() never fails for want of a descriptor.
size_t SessionLimit(const config::MainCf& cf) {
  const int64_t configured = cf.GetInteger("postgate_smtpd_session_limit");
  if (configured <= 0) Fatal(cf.Error("postgate_smtpd_session_limit", "must be at least 1"));
  size_t limit = static_cast<size_t>(configured);
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    if (files.rlim_cur < files.rlim_max) {
      files.rlim_cur = files.rlim_max;
      (void)setrlimit(RLIMIT_NOFILE, &files);
      (void)getrlimit(RLIMIT_NOFILE, &files);
    }
    constexpr rlim_t kReserved = 128;  // Listeners, gRPC, metrics, TLS files, logs.
    const rlim_t usable = files.rlim_cur > kReserved ? files.rlim_cur - kReserved : 1;
    if (files.rlim_cur != RLIM_INFINITY && usable < limit) {
      spdlog::warn("postgate_smtpd_session_limit {} lowered to {}: only {} file descriptors (ulimit -n)", limit,
                   usable, files.rlim_cur);
      limit = static_cast<size_t>(usable);
    }
  }
  return limit;
}

absl::StatusOr<config::MainCf> LoadConfig(const Flags& flags) {
  absl::StatusOr<config::MainCf> cf = config::LoadMainCf(flags.config);
  if (!cf.ok()) return cf.status();
  if (!flags.queue.empty()) RETURN_IF_ERROR(cf->Override("postgate_queue_address", flags.queue, "--queue"));
  if (!flags.metrics.empty()) {
    RETURN_IF_ERROR(cf->Override("postgate_smtpd_metrics_listen", flags.metrics, "--metrics"));
  }
  RETURN_IF_ERROR(config::ApplyOverrides(*cf, flags.overrides));
  return cf;
}

// --dkim-records: the TXT record to publish for each key of postgate_dkim_key_table.
int PrintDkimRecords(const config::MainCf& cf) {
  const std::string key_table = cf.Get("postgate_dkim_key_table");
  if (key_table.empty()) Fatal(cf.Error("postgate_dkim_key_table", "no DKIM key table configured"));
  absl::StatusOr<gateway::dkim::DkimKeys> keys =
      gateway::dkim::DkimKeys::Load(key_table, cf.Get("postgate_dkim_signing_table"));
  if (!keys.ok()) Fatal(cf.Error("postgate_dkim_key_table", keys.status().message()));
  for (const gateway::dkim::DkimKey& key : keys->keys()) {
    std::cout << "; " << key.name << ": "
              << (key.type == gateway::dkim::DkimKey::Type::kEd25519 ? "Ed25519" : absl::StrCat("RSA ", key.bits, " bits"))
              << ", " << key.path << "\n"
              << gateway::dkim::DnsRecord(key) << "\n";
  }
  return 0;
}

int Run(const Flags& flags) {
  absl::StatusOr<config::MainCf> loaded = LoadConfig(flags);
  if (!loaded.ok()) Fatal(loaded.status());
  config::MainCf& cf = *loaded;
  if (flags.dkim_records) return PrintDkimRecords(cf);

  if (absl::Status logging = base::InitLogging(cf.Get("myhostname"), absl::StrCat(cf.Get("syslog_name"), "/smtpd"),
                                                cf.Get("postgate_log_format"));
      !logging.ok()) {
    Fatal(cf.Error("postgate_log_format", logging.message()));
  }
  // The SMTP services: master.cf beside main.cf, or the one "smtp" service.
  const std::string master_cf = gateway::MasterCfPath(flags.config);
  absl::StatusOr<std::vector<gateway::SmtpServiceConfig>> service_configs =
      gateway::LoadSmtpServices(cf, master_cf, flags.listen);
  if (!service_configs.ok()) Fatal(service_configs.status());
  auto registry = std::make_shared<prometheus::Registry>();
  gateway::GatewayMetrics metrics(*registry);
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(cf.Get("postgate_smtpd_metrics_listen"));
  } catch (const std::exception& e) {
    Fatal(cf.Error("postgate_smtpd_metrics_listen", absl::StrCat("cannot listen: ", e.what())));
  }
  exposer->RegisterCollectable(registry);

  gateway::QueueChannelTls channel_tls;
  if (!cf.Get("postgate_queue_tls_ca_file").empty()) {
    channel_tls.ca_pem = ReadFileOrDie(cf, "postgate_queue_tls_ca_file");
    if (!cf.Get("postgate_queue_tls_client_cert_file").empty()) {
      channel_tls.cert_pem = ReadFileOrDie(cf, "postgate_queue_tls_client_cert_file");
      channel_tls.key_pem = ReadFileOrDie(cf, "postgate_queue_tls_client_key_file");
    }
  }
  const int64_t queue_streams = cf.GetInteger("postgate_queue_streams");
  if (queue_streams > 64) Fatal(cf.Error("postgate_queue_streams", "at most 64"));
  gateway::GrpcQueueClient queue(
      cf.Get("postgate_queue_address"),
      std::chrono::milliseconds(absl::ToInt64Milliseconds(cf.GetTime("postgate_queue_timeout"))),
      channel_tls, static_cast<size_t>(cf.GetInteger("postgate_queue_replay_limit")),
      static_cast<size_t>(queue_streams));

  gateway::DrainControl drain;
  gateway::policy::ClientLimiter client_limiter;
  // Client-name lookups block in the system resolver; a few at a time, off the session threads.
  // Intentionally never destroyed, like the io_contexts: a lookup may still be running at exit.
  auto* name_lookups = new asio::thread_pool(4);
  // SMTP AUTH password hashes (milliseconds each, by design): two at a time, off the I/O threads,
  // so a flood of logins queues up here instead of stalling sessions. Never destroyed, likewise.
  auto* password_checks = new asio::thread_pool(2);
  // DNS for reject_unknown_sender_domain: one c-ares channel, on a thread of its own. Never
  // destroyed, like the pools: a session may still wait on it at exit.
  auto* resolver = new io::MxResolver(cf.Get("postgate_dns_servers"));
  gateway::ClientNameCache client_names;
  gateway::GatewayServices services{.queue = &queue,
                                    .metrics = &metrics,
                                    .drain = &drain,
                                    .client_limiter = &client_limiter,
                                    .name_lookups = name_lookups,
                                    .client_names = &client_names,
                                    .password_checks = password_checks,
                                    .resolver = resolver};
  // Each service's settings, swapped whole at a reload; its sessions keep the ones they began with.
  struct Listener {
    std::string name;
    std::vector<tcp::endpoint> endpoints;
    std::unique_ptr<gateway::SettingsHolder> settings;
  };
  std::vector<Listener> listeners;
  for (const gateway::SmtpServiceConfig& service : *service_configs) {
    absl::StatusOr<std::shared_ptr<const gateway::GatewaySettings>> initial =
        gateway::GatewaySettings::Build(service.cf, services, service.service.name);
    if (!initial.ok()) Fatal(initial.status());
    listeners.push_back({service.service.name, service.endpoints,
                         std::make_unique<gateway::SettingsHolder>(*std::move(initial))});
  }
  config::MainCf running_cf = cf;

  size_t thread_count = static_cast<size_t>(cf.GetInteger("postgate_smtpd_threads"));
  if (thread_count == 0) thread_count = std::max(1u, std::thread::hardware_concurrency());
  // Intentionally never destroyed: gRPC completions may still be posted to them during exit.
  std::vector<asio::io_context*> contexts;
  for (size_t i = 0; i < thread_count; ++i) contexts.push_back(new asio::io_context(1));

  gateway::SessionSlots slots(*contexts[0], SessionLimit(cf));
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::string> bound;  // "smtp=127.0.0.1:2525,[::1]:2525", one entry per service.
  for (const Listener& listener : listeners) {
    std::vector<std::string> addresses;
    for (const tcp::endpoint& endpoint : listener.endpoints) {
      auto acceptor = std::make_unique<tcp::acceptor>(*contexts[0]);
      std::error_code error;
      acceptor->open(endpoint.protocol(), error);
      if (!error) acceptor->set_option(tcp::acceptor::reuse_address(true), error);
      if (!error && endpoint.address().is_v6()) acceptor->set_option(asio::ip::v6_only(true), error);
      if (!error) acceptor->bind(endpoint, error);
      if (!error) acceptor->listen(asio::socket_base::max_listen_connections, error);
      if (error) {
        Fatal(absl::UnavailableError(absl::StrCat("cannot listen on ", endpoint.address().to_string(), ":",
                                                  endpoint.port(), " (service ", listener.name, "): ",
                                                  error.message())));
      }
      tcp::endpoint local = acceptor->local_endpoint();
      addresses.push_back(absl::StrCat(local.address().to_string(), ":", local.port()));
      gateway::SettingsHolder* holder = listener.settings.get();
      asio::co_spawn(*contexts[0],
                     gateway::AcceptSmtpConnections(*acceptor, contexts, [holder] { return holder->Current(); }, slots),
                     asio::detached);
      acceptors.push_back(std::move(acceptor));
    }
    bound.push_back(absl::StrCat(listener.name, "=", absl::StrJoin(addresses, ",")));
  }

  // SIGHUP, or main.cf or master.cf replaced (a ConfigMap update swaps the files under the pod):
  // load them again. Files that do not load leave the running settings in force.
  auto reload = [&](const char* why) {
    absl::StatusOr<config::MainCf> next = LoadConfig(flags);
    absl::StatusOr<std::vector<gateway::SmtpServiceConfig>> next_services =
        next.ok() ? gateway::LoadSmtpServices(*next, master_cf, flags.listen)
                  : absl::StatusOr<std::vector<gateway::SmtpServiceConfig>>(next.status());
    std::vector<std::shared_ptr<const gateway::GatewaySettings>> built;
    std::vector<std::string> restart_only;
    absl::Status status = next_services.status();
    for (const Listener& listener : listeners) {
      if (!status.ok()) break;
      auto same = std::find_if(next_services->begin(), next_services->end(),
                               [&](const gateway::SmtpServiceConfig& s) { return s.service.name == listener.name; });
      if (same == next_services->end()) {  // Removed: it keeps running as it is until a restart.
        built.push_back(nullptr);
        restart_only.push_back(absl::StrCat("master.cf service ", listener.name, " removed"));
        continue;
      }
      if (same->endpoints != listener.endpoints) {
        restart_only.push_back(absl::StrCat("master.cf service ", listener.name, " addresses"));
      }
      absl::StatusOr<std::shared_ptr<const gateway::GatewaySettings>> settings =
          gateway::GatewaySettings::Build(same->cf, services, listener.name);
      if (!settings.ok()) status = settings.status();
      else built.push_back(*std::move(settings));
    }
    if (!status.ok()) {
      metrics.config_reloads_failed.Increment();
      spdlog::error("reload ({}) refused, the running configuration stays in force: {}", why, status.message());
      return;
    }
    for (const gateway::SmtpServiceConfig& service : *next_services) {
      if (std::none_of(listeners.begin(), listeners.end(), [&](const Listener& l) { return l.name == service.service.name; })) {
        restart_only.push_back(absl::StrCat("master.cf service ", service.service.name, " added"));
      }
    }
    for (size_t i = 0; i < listeners.size(); ++i) {
      if (built[i]) listeners[i].settings->Replace(std::move(built[i]));
    }
    metrics.config_reloads.Increment();
    for (std::string& name : gateway::RestartOnlyChanges(running_cf, *next)) restart_only.push_back(std::move(name));
    running_cf = *std::move(next);
    spdlog::info("reload ({}): {} and {} reloaded; new sessions use them, open ones keep theirs", why, flags.config,
                 master_cf);
    if (!restart_only.empty()) {
      spdlog::warn("reload: {} changed; that takes a restart", absl::StrJoin(restart_only, ", "));
    }
  };
  asio::signal_set hangup(*contexts[0], SIGHUP);
  std::function<void(std::error_code, int)> on_hangup = [&](std::error_code error, int) {
    if (error) return;
    reload("SIGHUP");
    hangup.async_wait(on_hangup);
  };
  hangup.async_wait(on_hangup);
  // The versions of the other files the running settings read (the DKIM tables and keys).
  auto watched_versions = [&listeners] {
    std::vector<gateway::FileStamp> versions;
    for (const Listener& listener : listeners) {
      for (const std::string& path : listener.settings->CurrentSettings()->watched_files()) {
        versions.push_back(config::StatFile(path));
      }
    }
    return versions;
  };
  asio::co_spawn(*contexts[0], [&]() -> asio::awaitable<void> {
    gateway::FileStamp seen = config::StatFile(flags.config);
    gateway::FileStamp seen_master = config::StatFile(master_cf);
    std::vector<gateway::FileStamp> seen_others = watched_versions();
    asio::steady_timer tick(*contexts[0]);
    for (;;) {
      tick.expires_after(std::chrono::seconds(1));
      co_await tick.async_wait(asio::use_awaitable);
      gateway::FileStamp now = config::StatFile(flags.config);
      gateway::FileStamp now_master = config::StatFile(master_cf);
      std::vector<gateway::FileStamp> now_others = watched_versions();
      if (now == seen && now_master == seen_master && now_others == seen_others) continue;
      const char* why = now != seen ? "main.cf changed" : now_master != seen_master ? "master.cf changed"
                                                                                   : "a table or key changed";
      seen = now;
      seen_master = now_master;
      reload(why);
      // What the settings now in force read: after a refused reload, the same files, so a broken
      // one is not tried again until it changes once more.
      seen_others = watched_versions();
    }
  }, asio::detached);

  // SIGTERM/SIGINT: drain (idle sessions get 421, messages in progress finish), then stop once no
  // session is left or postgate_drain_timeout has passed.
  asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
  const absl::Duration drain_timeout = cf.GetTime("postgate_drain_timeout");
  signals.async_wait([&](std::error_code, int signal_number) {
    spdlog::info("smtp-gateway draining on signal {} ({} sessions open)", signal_number,
                 drain.active_sessions());
    drain.Start();
    asio::co_spawn(*contexts[0], [&]() -> asio::awaitable<void> {
      const absl::Time deadline = absl::Now() + drain_timeout;
      asio::steady_timer tick(*contexts[0]);
      auto settled = [&] {
        return drain.active_sessions() == 0 &&
               absl::Now() - drain.last_session_start() >= absl::Milliseconds(200);
      };
      while (!settled() && absl::Now() < deadline) {
        tick.expires_after(std::chrono::milliseconds(20));
        co_await tick.async_wait(asio::use_awaitable);
      }
      spdlog::info("smtp-gateway stopping ({} sessions left)", drain.active_sessions());
      for (auto& acceptor : acceptors) acceptor->close();
      for (asio::io_context* context : contexts) context->stop();
    }, asio::detached);
  });

  // Probes (grpc.health.v1): service "" answers SERVING while the process runs (liveness – a
  // queue outage must not restart the gateway); service "readiness" is SERVING only while the
  // queue is reachable and the gateway is not draining.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder health_builder;
  // A server needs one service before gRPC adds its health service. gRPC's generic callback
  // service answers UNIMPLEMENTED to every other method, as a server without it does, and makes
  // this a callback-only server: no synchronous server's polling threads, which on gRPC's shared
  // poller took part in the queue stream's I/O (5.2 % of the gateway's context switches and 7 % of
  // its futex calls under load: one profile, 2026-12-02, bench/README.md).
  grpc::CallbackGenericService unimplemented;
  health_builder.RegisterCallbackGenericService(&unimplemented);
  int health_port = 0;
  health_builder.AddListeningPort(cf.Get("postgate_smtpd_health_listen"), grpc::InsecureServerCredentials(),
                                  &health_port);
  std::unique_ptr<grpc::Server> health_server = health_builder.BuildAndStart();
  if (!health_server || health_port == 0) {
    Fatal(cf.Error("postgate_smtpd_health_listen", "cannot listen on " + cf.Get("postgate_smtpd_health_listen")));
  }
  grpc::HealthCheckServiceInterface* health = health_server->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus("readiness", false);
  std::atomic<bool> stop_health{false};
  std::thread readiness([&] {
    bool ready = false;
    while (!stop_health.load()) {
      std::optional<bool> connected = queue.Connected();
      bool now_ready = !drain.draining() && connected.value_or(ready);
      if (now_ready != ready) {
        ready = now_ready;
        health->SetServingStatus("readiness", ready);
        spdlog::info("readiness: {}", ready ? "serving" : drain.draining() ? "draining" : "queue-service unreachable");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });

  spdlog::info("smtp-gateway listening {} metrics=127.0.0.1:{} health=127.0.0.1:{} queue={} threads={}",
               absl::StrJoin(bound, " "), exposer->GetListeningPorts().front(), health_port,
               cf.Get("postgate_queue_address"), thread_count);
  std::vector<std::thread> threads;
  for (size_t i = 1; i < contexts.size(); ++i) {
    threads.emplace_back([context = contexts[i]] {
      auto work = asio::make_work_guard(*context);
      context->run();
    });
  }
  contexts[0]->run();
  for (std::thread& thread : threads) thread.join();
  stop_health = true;
  readiness.join();
  health_server->Shutdown();
  // Open sessions are abandoned here; uploads never committed are discarded by the queue. The
  // process ends with _Exit: gRPC may still post completions to the I/O contexts, so neither
  // they nor static objects are torn down. _Exit also skips LeakSanitizer's exit-time check, so
  // a sanitizer build runs it here: what is still referenced (the contexts, the lookup pool) is
  // not a leak, anything unreachable is reported and fails the process.
#if POSTGATE_LEAK_CHECK
  __lsan_do_leak_check();
#endif
  std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which leaves its debug-only deadlock detector on: every
  // Mutex lock then updates one process-wide lock graph (gRPC locks included). Measured at
  // 2-4 % of each service's CPU under load; the locking itself is unchanged.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  Flags flags;
  CLI::App app{"Postgate smtp-gateway: the SMTP server in front of queue-service"};
  app.add_option("--config", flags.config, "main.cf to read")->capture_default_str();
  app.add_option("--listen", flags.listen, "SMTP host:port of the smtp service (overrides inet_interfaces and postgate_smtpd_port)");
  app.add_option("--queue", flags.queue, "queue-service gRPC host:port (overrides postgate_queue_address)");
  app.add_option("--metrics", flags.metrics, "Prometheus host:port (overrides postgate_smtpd_metrics_listen)");
  app.add_option("-o", flags.overrides, "name=value: set a main.cf parameter (wins over the file)");
  app.add_flag("--dkim-records", flags.dkim_records,
               "Print the DNS TXT record to publish for each key of postgate_dkim_key_table, then exit");
  CLI11_PARSE(app, argc, argv);
  return Run(flags);
}
