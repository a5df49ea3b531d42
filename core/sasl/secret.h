// A password, token or key held in memory: wiped when it goes away (so a freed buffer, a later
// core dump or a heap read does not keep it), never copied by accident, and with no way to be
// formatted or streamed – to log it, one would have to ask for reveal() by name.
#pragma once

#include <string.h>

#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace postgate::sasl {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  ~Secret() { Wipe(); }
  Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.Wipe(); }
  Secret& operator=(Secret&& other) noexcept {
    if (this != &other) {
      Wipe();
      value_ = std::move(other.value_);
      other.Wipe();
    }
    return *this;
  }
  // Copies are explicit: each one is another place the secret lives.
  Secret Copy() const { return Secret(value_); }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;

  absl::string_view reveal() const { return value_; }
  const char* c_str() const { return value_.c_str(); }  // For C APIs (libcrypt), without a copy.
  bool empty() const { return value_.empty(); }
  bool operator==(const Secret& other) const { return value_ == other.value_; }

 private:
  void Wipe() {
    // explicit_bzero: not removed by the optimiser as a dead store. Covers the whole capacity, as
    // the short-string buffer may hold what a moved-from value left.
    explicit_bzero(value_.data(), value_.capacity());
    value_.clear();
  }

  std::string value_;
};

}  // namespace postgate::sasl
