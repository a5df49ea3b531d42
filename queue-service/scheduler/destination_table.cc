#include "queue-service/scheduler/destination_table.h"

#include <algorithm>
#include <vector>

namespace postgate::queue {

DestinationTable::DestinationTable(Limits limits, const Clock& clock) : limits_(limits), clock_(clock) {}

bool DestinationTable::HasRoom(const Destination& destination) const {
  return destination.active < std::max(1, limits_.per_destination) &&
         (limits_.total <= 0 || total_ < limits_.total);
}

void DestinationTable::Take(const std::string&, Destination& destination) {
  ++destination.active;
  ++total_;
}

void DestinationTable::Forget(const std::string& name) {
  auto it = destinations_.find(name);
  if (it != destinations_.end() && it->second.active == 0 && it->second.waiting.empty()) destinations_.erase(it);
}

bool DestinationTable::Acquire(const std::string& name, Granted granted) {
  {
    absl::MutexLock lock(&mu_);
    Destination& destination = destinations_[name];
    // Nobody overtakes a line: a newcomer waits behind those already waiting.
    if (destination.waiting.empty() && HasRoom(destination)) {
      Take(name, destination);
      return true;
    }
    if (!closed_) {
      if (destination.waiting.empty()) rotation_.push_back(name);
      destination.waiting.push_back(std::move(granted));
      return false;
    }
    Forget(name);
  }
  granted(false);
  return false;
}

void DestinationTable::Close() {
  std::vector<Granted> refused;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    for (auto& [name, destination] : destinations_) {
      for (Granted& granted : destination.waiting) refused.push_back(std::move(granted));
      destination.waiting.clear();
    }
    rotation_.clear();
    for (auto it = destinations_.begin(); it != destinations_.end();) {
      auto here = it++;
      if (here->second.active == 0) destinations_.erase(here);
    }
  }
  for (Granted& granted : refused) granted(false);
}

bool DestinationTable::TryAcquire(const std::string& name) {
  absl::MutexLock lock(&mu_);
  Destination& destination = destinations_[name];
  if (destination.waiting.empty() && HasRoom(destination)) {
    Take(name, destination);
    return true;
  }
  Forget(name);
  return false;
}

void DestinationTable::Release(const std::string& name) {
  Granted granted;
  {
    absl::MutexLock lock(&mu_);
    auto it = destinations_.find(name);
    if (it == destinations_.end() || it->second.active == 0) return;  // Not taken: nothing to give back.
    --it->second.active;
    --total_;
    granted = HandOver();
    Forget(name);
  }
  if (granted) granted(true);
}

DestinationTable::Granted DestinationTable::HandOver() {
  auto pop = [this](const std::string& name, Destination& destination) {
    Granted next = std::move(destination.waiting.front());
    destination.waiting.pop_front();
    Take(name, destination);
    if (destination.waiting.empty()) std::erase(rotation_, name);
    return next;
  };
  // The waiting destinations in turn, each moved to the back once served. When only the
  // per-destination limit binds, the freed destination is the only one with room; when the
  // process limit binds, the turn keeps a busy destination from taking every freed slot.
  for (size_t tries = rotation_.size(); tries > 0; --tries) {
    const std::string name = rotation_.front();
    rotation_.pop_front();
    auto it = destinations_.find(name);
    if (it == destinations_.end() || it->second.waiting.empty()) continue;
    rotation_.push_back(name);
    if (HasRoom(it->second)) return pop(name, it->second);
  }
  return nullptr;
}

std::optional<std::string> DestinationTable::Suspended(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = suspended_.find(name);
  if (it == suspended_.end()) return std::nullopt;
  if (clock_.Now() >= it->second.first) {
    suspended_.erase(it);
    return std::nullopt;
  }
  return it->second.second;
}

void DestinationTable::Suspend(const std::string& name, absl::Duration how_long, std::string reason) {
  absl::MutexLock lock(&mu_);
  suspended_[name] = {clock_.Now() + how_long, std::move(reason)};
}

void DestinationTable::Resume(const std::string& name) {
  absl::MutexLock lock(&mu_);
  suspended_.erase(name);
}

void DestinationTable::ResumeAll() {
  absl::MutexLock lock(&mu_);
  suspended_.clear();
}

int DestinationTable::active(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = destinations_.find(name);
  return it == destinations_.end() ? 0 : it->second.active;
}

int DestinationTable::active_total() {
  absl::MutexLock lock(&mu_);
  return total_;
}

size_t DestinationTable::waiting(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = destinations_.find(name);
  return it == destinations_.end() ? 0 : it->second.waiting.size();
}

}  // namespace postgate::queue
