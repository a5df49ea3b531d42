#include "console/backend/list_merge.h"

#include <algorithm>
#include <optional>

namespace postgate::console {

MergedPage MergePages(std::vector<queue::v1::ListMessagesResponse> pages, size_t page_size, bool newest_first) {
  // "Before" in the page's order.
  const auto before = [newest_first](const std::string& a, const std::string& b) { return newest_first ? b < a : a < b; };
  // The least advanced replica that has more: nothing after its token is known yet.
  std::optional<std::string> bound;
  for (const auto& page : pages) {
    if (page.next_page_token().empty()) continue;
    if (!bound || before(page.next_page_token(), *bound)) bound = page.next_page_token();
  }
  MergedPage merged;
  for (auto& page : pages) {
    for (auto& message : *page.mutable_messages()) {
      if (bound && before(*bound, message.queue_id())) continue;
      merged.messages.push_back(std::move(message));
    }
  }
  std::sort(merged.messages.begin(), merged.messages.end(),
            [&](const queue::v1::Message& a, const queue::v1::Message& b) { return before(a.queue_id(), b.queue_id()); });
  if (merged.messages.size() > page_size) {
    merged.messages.resize(page_size);
    merged.next_after = merged.messages.back().queue_id();
  } else if (bound) {
    merged.next_after = *bound;
  }
  return merged;
}

}  // namespace postgate::console
