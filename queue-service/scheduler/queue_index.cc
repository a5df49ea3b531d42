#include "queue-service/scheduler/queue_index.h"

#include "queue-service/model/timestamps.h"

namespace postgate::queue {
v1::MessageState DeriveState(const v1::Message& message) {
  bool deferred = false;
  for (const v1::RecipientStatus& recipient : message.recipients()) {
    if (recipient.state() == v1::RECIPIENT_STATE_QUEUED) return v1::MESSAGE_STATE_ACTIVE;
    if (recipient.state() == v1::RECIPIENT_STATE_DEFERRED) deferred = true;
  }
  return deferred ? v1::MESSAGE_STATE_DEFERRED : v1::MESSAGE_STATE_DONE;
}

void QueueIndex::Upsert(const std::string& id, const Entry& entry) {
  absl::MutexLock lock(&mu_);
  entries_[id] = entry;
  if (!entry.idempotency_key.empty()) ids_by_key_[entry.idempotency_key] = id;
}

void QueueIndex::Upsert(const v1::Message& message) {
  Upsert(message.queue_id(), Entry{message.state(), message.size(), FromTimestamp(message.arrival_time()),
                                   FromTimestamp(message.completion_time()),
                                   message.envelope().idempotency_key(),
                                   message.has_next_attempt_time() ? FromTimestamp(message.next_attempt_time())
                                                                   : absl::InfinitePast()});
}

void QueueIndex::Remove(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (!it->second.idempotency_key.empty()) ids_by_key_.erase(it->second.idempotency_key);
  entries_.erase(it);
}

std::vector<std::string> QueueIndex::Due(absl::Time now) const {
  std::vector<std::string> due;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : entries_) {
    if (entry.state == v1::MESSAGE_STATE_DEFERRED && entry.next_attempt <= now) due.push_back(id);
  }
  return due;
}

bool QueueIndex::Contains(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  return entries_.contains(id);
}

std::optional<std::string> QueueIndex::FindByIdempotencyKey(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = ids_by_key_.find(key);
  if (it == ids_by_key_.end()) return std::nullopt;
  return it->second;
}

QueueIndex::Summary QueueIndex::Summarize() const {
  Summary summary;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : entries_) {
    size_t slot = static_cast<size_t>(entry.state) < summary.messages.size()
                      ? static_cast<size_t>(entry.state)
                      : 0;
    summary.messages[slot]++;
    summary.bytes[slot] += entry.size;
    if (entry.state != v1::MESSAGE_STATE_DONE &&
        (!summary.oldest_pending || entry.arrival < *summary.oldest_pending)) {
      summary.oldest_pending = entry.arrival;
    }
    if (entry.state == v1::MESSAGE_STATE_DEFERRED &&
        (!summary.oldest_deferred || entry.arrival < *summary.oldest_deferred)) {
      summary.oldest_deferred = entry.arrival;
    }
  }
  return summary;
}

std::vector<std::string> QueueIndex::List(v1::MessageState state, const std::string& after,
                                          size_t limit, bool descending) const {
  std::vector<std::string> ids;
  auto wanted = [state](const Entry& entry) {
    return state == v1::MESSAGE_STATE_UNSPECIFIED ? entry.state != v1::MESSAGE_STATE_DONE
                                                  : entry.state == state;
  };
  absl::MutexLock lock(&mu_);
  if (!descending) {
    for (auto it = entries_.upper_bound(after); it != entries_.end() && ids.size() < limit; ++it) {
      if (wanted(it->second)) ids.push_back(it->first);
    }
    return ids;
  }
  auto end = after.empty() ? entries_.end() : entries_.lower_bound(after);
  for (auto it = std::make_reverse_iterator(end); it != entries_.rend() && ids.size() < limit; ++it) {
    if (wanted(it->second)) ids.push_back(it->first);
  }
  return ids;
}

std::string QueueIndex::NewestId() const {
  absl::MutexLock lock(&mu_);
  return entries_.empty() ? std::string() : entries_.rbegin()->first;
}

std::vector<std::string> QueueIndex::Older(v1::MessageState state, absl::Time before) const {
  std::vector<std::string> ids;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : entries_) {
    absl::Time when = state == v1::MESSAGE_STATE_DONE ? entry.completion : entry.arrival;
    if (entry.state == state && when < before) ids.push_back(id);
  }
  return ids;
}

}  // namespace postgate::queue
