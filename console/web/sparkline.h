// A sparkline as inline SVG: one polyline over a fixed box, scaled to the series' maximum. Pure.
// Inline SVG needs no script and no inline style, so it passes the console's CSP.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace postgate::console {

// `css_class` names the series' colour in console.css; `label` is the accessible name.
std::string Sparkline(const std::vector<uint64_t>& values, absl::string_view css_class, absl::string_view label);

}  // namespace postgate::console
