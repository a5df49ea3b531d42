// Conversations per next hop, as Postfix's qmgr limits them: at most
// default_destination_concurrency_limit with one destination and default_process_limit in all.
// A conversation that finds no free slot waits in its destination's line (first come, first
// served) and is handed the slot the moment one frees – no polling, and no wake-up can be
// missed, because joining the line and handing over happen under one lock. When every slot of
// the process is taken, freed slots go round the waiting destinations in turn, so one busy
// destination cannot starve the others.
//
// Also Postfix's "dead" destinations: a next hop whose last conversation failed at the
// connection level is suspended until a time, and its mail deferred at once meanwhile.
// Thread-safe. Counts and names only: nothing here knows a message.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "queue-service/scheduler/clock.h"

namespace postgate::queue {

class DestinationTable {
 public:
  struct Limits {
    int per_destination = 20;  // default_destination_concurrency_limit (at least 1)
    int total = 100;           // default_process_limit (0: no limit)
  };
  // Called with true when a slot is handed over, with false when the table closed first.
  using Granted = std::function<void(bool granted)>;

  DestinationTable(Limits limits, const Clock& clock = RealClock());

  // A slot for one conversation with `destination`: true when taken now; otherwise false, and
  // `granted` runs once a slot is handed over (on the thread that freed it: keep it short, e.g.
  // post to an executor). Each slot taken or granted is given back with Release.
  bool Acquire(const std::string& destination, Granted granted);
  // Shutting down: every waiter is told no, and so is anyone who would wait from now on.
  void Close();
  // Takes a slot only when one is free now.
  bool TryAcquire(const std::string& destination);
  void Release(const std::string& destination);

  // Why mail for `destination` is deferred without a try, while it is suspended.
  std::optional<std::string> Suspended(const std::string& destination);
  void Suspend(const std::string& destination, absl::Duration how_long, std::string reason);
  void Resume(const std::string& destination);
  void ResumeAll();  // A flush tries every destination for real.

  int active(const std::string& destination);
  int active_total();
  size_t waiting(const std::string& destination);

 private:
  struct Destination {
    int active = 0;
    std::deque<Granted> waiting;
  };
  bool HasRoom(const Destination& destination) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives a slot just freed to the next waiter with room, the waiting destinations in turn.
  // Returns the callback to run outside the lock, if any.
  Granted HandOver() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Take(const std::string& name, Destination& destination) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Limits limits_;
  const Clock& clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Destination> destinations_ ABSL_GUARDED_BY(mu_);
  // Destinations with a waiting line, in the order they are offered a slot freed elsewhere.
  std::deque<std::string> rotation_ ABSL_GUARDED_BY(mu_);
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, std::pair<absl::Time, std::string>> suspended_ ABSL_GUARDED_BY(mu_);
};

}  // namespace postgate::queue
