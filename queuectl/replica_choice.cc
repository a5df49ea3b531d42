#include "queuectl/replica_choice.h"

#include <cstdint>

namespace postgate::queuectl {
namespace {

uint64_t Fnv1a(absl::string_view a, absl::string_view b) {
  uint64_t hash = 14695981039346656037ull;
  auto mix = [&hash](absl::string_view text) {
    for (unsigned char c : text) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
  };
  mix(a);
  mix(absl::string_view("\n", 1));  // Keeps "ab"+"c" apart from "a"+"bc".
  mix(b);
  return hash;
}

}  // namespace

size_t ChooseReplica(absl::string_view queue_id, const std::vector<std::string>& targets) {
  size_t best = 0;
  uint64_t best_score = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const uint64_t score = Fnv1a(queue_id, targets[i]);
    // Ties (all but impossible) go to the smaller address, so order never matters.
    if (i == 0 || score > best_score || (score == best_score && targets[i] < targets[best])) {
      best = i;
      best_score = score;
    }
  }
  return best;
}

}  // namespace postgate::queuectl
