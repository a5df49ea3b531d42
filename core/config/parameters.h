// The table of main.cf parameters both services understand: Postfix's names and defaults where
// Postfix has the parameter, "postgate_*" names for what Postfix lacks. A name not in this table
// is a configuration error, so a typo never silently falls back to a default.
#pragma once

#include <span>
#include "absl/strings/string_view.h"

namespace postgate::config {

enum class ValueKind {
  kString,  // Free text after $expansion.
  kList,    // Comma and/or whitespace separated words.
  kInteger, // Non-negative decimal.
  kTime,    // Number with optional unit s, m, h, d, w (default unit per parameter).
  kBool,    // yes / no.
};

struct ParameterSpec {
  absl::string_view name;
  absl::string_view default_value;  // May use $name; "" for empty. See MainCf for computed ones.
  ValueKind kind;
  char default_time_unit = 's';    // For kTime.
};

std::span<const ParameterSpec> KnownParameters();
const ParameterSpec* FindParameter(absl::string_view name);

}  // namespace postgate::config
