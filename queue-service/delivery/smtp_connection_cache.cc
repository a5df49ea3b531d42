// Postfix's SMTP connection cache: idle sessions by next hop, closed politely when they idle
// too long or wear out.
#include <algorithm>
#include <functional>
#include <memory>

#include "asio/co_spawn.hpp"
#include "asio/strand.hpp"
#include "queue-service/delivery/smtp_session.h"

namespace postgate::queue {
namespace {

// A session no conversation uses any more: QUIT said and the socket closed by a coroutine of
// its own, which owns it until then.
void QuitDetached(const asio::any_io_executor& executor, std::unique_ptr<SmtpSession> session,
                  std::function<void()> finished = nullptr) {
  std::shared_ptr<SmtpSession> owned(std::move(session));
  asio::co_spawn(asio::make_strand(executor), [owned]() -> asio::awaitable<void> { co_await owned->Quit(); },
                 [owned, finished = std::move(finished)](std::exception_ptr) {
                   owned->Close();
                   if (finished) finished();
                 });
}

}  // namespace

SmtpConnectionCache::SmtpConnectionCache(SmtpConnectionCacheOptions options, asio::any_io_executor executor)
    : options_(options), executor_(std::move(executor)), closer_([this] { CloseIdleLoop(); }) {}

SmtpConnectionCache::~SmtpConnectionCache() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  closer_.join();
  // What CloseAll did not say goodbye to (the pool may be gone): closed without a word.
  for (auto& [next_hop, sessions] : idle_) {
    for (std::unique_ptr<SmtpSession>& session : sessions) session->Close();
  }
}

void SmtpConnectionCache::CloseAll() {
  std::vector<std::unique_ptr<SmtpSession>> idle;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [next_hop, sessions] : idle_) {
      for (std::unique_ptr<SmtpSession>& session : sessions) idle.push_back(std::move(session));
    }
    idle_.clear();
  }
  absl::Mutex mu;
  size_t left = idle.size();
  for (std::unique_ptr<SmtpSession>& session : idle) {
    QuitDetached(executor_, std::move(session), [&] {
      absl::MutexLock lock(&mu);
      --left;
    });
  }
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(+[](size_t* n) { return *n == 0; }, &left));
}

std::unique_ptr<SmtpSession> SmtpConnectionCache::Take(const std::string& next_hop) {
  absl::MutexLock lock(&mu_);
  auto it = idle_.find(next_hop);
  if (it == idle_.end()) return nullptr;
  std::unique_ptr<SmtpSession> session = std::move(it->second.back());  // The most recently used.
  it->second.pop_back();
  if (it->second.empty()) idle_.erase(it);
  return session;
}

void SmtpConnectionCache::Put(const std::string& next_hop, std::unique_ptr<SmtpSession> session) {
  const bool worn_out = (options_.reuse_count_limit > 0 && session->uses() >= options_.reuse_count_limit) ||
                        absl::Now() - session->opened() >= options_.reuse_time_limit;
  if (!options_.enabled || worn_out) {
    QuitDetached(executor_, std::move(session));
    return;
  }
  session->MarkIdle();
  absl::MutexLock lock(&mu_);
  idle_[next_hop].push_back(std::move(session));
}

size_t SmtpConnectionCache::IdleSessions() {
  absl::MutexLock lock(&mu_);
  size_t count = 0;
  for (const auto& [next_hop, sessions] : idle_) count += sessions.size();
  return count;
}

void SmtpConnectionCache::CloseIdleLoop() {
  const absl::Duration tick = std::clamp(options_.idle_limit / 4, absl::Milliseconds(50), absl::Seconds(1));
  for (;;) {
    std::vector<std::unique_ptr<SmtpSession>> expired;
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), tick)) return;
      const absl::Time now = absl::Now();
      for (auto it = idle_.begin(); it != idle_.end();) {
        std::vector<std::unique_ptr<SmtpSession>>& sessions = it->second;
        for (auto session = sessions.begin(); session != sessions.end();) {
          if (now - (*session)->idle_since() >= options_.idle_limit) {
            expired.push_back(std::move(*session));
            session = sessions.erase(session);
          } else {
            ++session;
          }
        }
        if (sessions.empty()) {
          idle_.erase(it++);
        } else {
          ++it;
        }
      }
    }
    for (std::unique_ptr<SmtpSession>& session : expired) QuitDetached(executor_, std::move(session));
  }
}

}  // namespace postgate::queue
