#include "console/web/sparkline.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "console/web/text.h"

namespace postgate::console {

std::string Sparkline(const std::vector<uint64_t>& values, absl::string_view css_class, absl::string_view label) {
  constexpr double kWidth = 240, kHeight = 40, kPad = 2;
  const uint64_t peak = values.empty() ? 0 : *std::max_element(values.begin(), values.end());
  std::string points;
  for (size_t i = 0; i < values.size(); ++i) {
    const double x = values.size() == 1 ? 0 : kWidth * static_cast<double>(i) / static_cast<double>(values.size() - 1);
    const double y = peak == 0 ? kHeight - kPad
                               : kHeight - kPad - (kHeight - 2 * kPad) * static_cast<double>(values[i]) / static_cast<double>(peak);
    absl::StrAppend(&points, i == 0 ? "" : " ", absl::StrFormat("%.1f,%.1f", x, y));
  }
  return absl::StrCat("<svg class=\"spark ", Html(css_class), "\" viewBox=\"0 0 240 40\" width=\"240\" height=\"40\" role=\"img\" aria-label=\"",
                      Html(label), "\"><polyline fill=\"none\" points=\"", points, "\"/></svg>");
}

}  // namespace postgate::console
