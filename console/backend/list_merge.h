// One page of ListMessages over several replicas. Queue IDs begin with the arrival time, so ID order
// is arrival order across replicas, and every replica takes the same cursor: "after this ID".
// Each replica is asked for a page after the cursor; a replica that has more (a next_page_token)
// has shown everything up to its token and nothing after it, so the merged page may only use
// messages up to the least advanced such token. Pure.
#pragma once

#include <string>
#include <vector>

#include "postgate/queue/v1/queue.pb.h"

namespace postgate::console {

struct MergedPage {
  std::vector<queue::v1::Message> messages;  // At most page_size, in the requested order.
  std::string next_after;                    // Cursor for the next page; "" when none follows.
};

MergedPage MergePages(std::vector<queue::v1::ListMessagesResponse> pages, size_t page_size, bool newest_first);

}  // namespace postgate::console
