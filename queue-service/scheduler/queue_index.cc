#include "queue-service/scheduler/queue_index.h"

#include <algorithm>

#include "queue-service/model/timestamps.h"
#include "queue-service/model/record.h"

namespace postgate::queue {
rec::MessageState DeriveState(const rec::Message& message) {
  bool deferred = false;
  for (const rec::RecipientStatus& recipient : message.recipients()) {
    if (recipient.state() == rec::RECIPIENT_STATE_QUEUED) return rec::MESSAGE_STATE_ACTIVE;
    if (recipient.state() == rec::RECIPIENT_STATE_DEFERRED) deferred = true;
  }
  return deferred ? rec::MESSAGE_STATE_DEFERRED : rec::MESSAGE_STATE_DONE;
}

void QueueIndex::Upsert(const std::string& id, const Entry& entry) {
  entries_[id] = entry;
  if (!entry.idempotency_key.empty()) ids_by_key_[entry.idempotency_key] = id;
}

void QueueIndex::Erase(std::map<std::string, Entry>::iterator it) {
  if (!it->second.idempotency_key.empty()) ids_by_key_.erase(it->second.idempotency_key);
  entries_.erase(it);
}

void QueueIndex::Upsert(const rec::Message& message) {
  absl::MutexLock lock(&mu_);
  if (message.state() == rec::MESSAGE_STATE_DONE) {
    auto it = entries_.find(message.queue_id());
    if (it == entries_.end()) return;
    Erase(it);
    ++done_messages_;
    done_bytes_ += message.size();
    return;
  }
  Upsert(message.queue_id(), Entry{message.state(), message.size(), FromTimestamp(message.arrival_time()),
                                   message.envelope().idempotency_key(),
                                   message.has_next_attempt_time() ? FromTimestamp(message.next_attempt_time())
                                                                   : absl::InfinitePast()});
}

void QueueIndex::Remove(const rec::Message& message) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(message.queue_id());
  if (it != entries_.end()) {
    Erase(it);
  } else if (message.state() == rec::MESSAGE_STATE_DONE) {
    done_messages_ -= std::min<uint64_t>(done_messages_, 1);
    done_bytes_ -= std::min<uint64_t>(done_bytes_, message.size());
  }
}

void QueueIndex::SetDone(uint64_t messages, uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  done_messages_ = messages;
  done_bytes_ = bytes;
}

size_t QueueIndex::held() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

std::vector<std::string> QueueIndex::Due(absl::Time now) const {
  std::vector<std::string> due;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : entries_) {
    if (entry.state == rec::MESSAGE_STATE_DEFERRED && entry.next_attempt <= now) due.push_back(id);
  }
  return due;
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
  summary.messages[rec::MESSAGE_STATE_DONE] = done_messages_;
  summary.bytes[rec::MESSAGE_STATE_DONE] = done_bytes_;
  for (const auto& [id, entry] : entries_) {
    size_t slot = static_cast<size_t>(entry.state) < summary.messages.size()
                      ? static_cast<size_t>(entry.state)
                      : 0;
    summary.messages[slot]++;
    summary.bytes[slot] += entry.size;
    if (entry.state != rec::MESSAGE_STATE_DONE &&
        (!summary.oldest_pending || entry.arrival < *summary.oldest_pending)) {
      summary.oldest_pending = entry.arrival;
    }
    if (entry.state == rec::MESSAGE_STATE_DEFERRED &&
        (!summary.oldest_deferred || entry.arrival < *summary.oldest_deferred)) {
      summary.oldest_deferred = entry.arrival;
    }
  }
  return summary;
}

std::vector<std::string> QueueIndex::List(rec::MessageState state, const std::string& after,
                                          size_t limit, bool descending) const {
  std::vector<std::string> ids;
  auto wanted = [state](const Entry& entry) {
    return state == rec::MESSAGE_STATE_UNSPECIFIED ? entry.state != rec::MESSAGE_STATE_DONE
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

}  // namespace postgate::queue
