// The console's pages as HTML, from the queue API's messages. Pure: no I/O, no clock (the caller
// passes `now`). Every value that comes from mail – addresses, headers, bodies, remote replies – is
// escaped; the pages carry no inline script or style (the CSP forbids both); forms that change
// the queue carry the session's CSRF token.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "postgate/queue/v1/queue.pb.h"

namespace postgate::console {

namespace v1 = ::postgate::queue::v1;

// Who is looking, for the header and the forms.
struct Viewer {
  std::string operator_name;  // "" when not signed in.
  std::string csrf;           // The token every form that changes something carries.
  bool can_sign_in = true;    // A login form exists (an admin token is configured).
};

struct ReplicaOverview {
  std::string address;
  std::string error;  // Why it did not answer; "" when it did.
  v1::QueueStatus status;
};

struct StateOverview {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  std::optional<absl::Time> oldest_arrival;  // Of the messages in this state, over every replica.
};

struct OverviewData {
  std::vector<ReplicaOverview> replicas;
  std::map<v1::MessageState, StateOverview> states;  // ACTIVE, DEFERRED, HOLD, DONE.
  v1::Activity activity;                             // Summed over the replicas that answered.
  absl::Time now;
};

// The filters of ListMessages, as the list page's form and links carry them.
struct ListQuery {
  v1::MessageState state = v1::MESSAGE_STATE_UNSPECIFIED;
  std::string sender;     // Substring of the envelope sender.
  std::string recipient;  // Substring of a recipient; "@example.org" selects a domain.
  uint64_t min_age_seconds = 0;
  uint64_t max_age_seconds = 0;  // 0: no limit.
  bool newest_first = false;
  std::string after;  // Cursor: the last queue ID of the previous page; "" for the first.
};

struct ListData {
  ListQuery query;
  std::vector<v1::Message> messages;
  std::string next_after;           // "" on the last page.
  std::vector<std::string> errors;  // Replicas that did not answer.
  absl::Time now;
};

struct MessageData {
  v1::Message message;
  std::string replica;           // Address of the replica that holds it.
  bool content_loaded = false;   // Headers and body below are the stored content.
  std::string content_note;      // Why there is no content (done, not signed in, …).
  std::string headers;           // The header section, as stored.
  std::string body;              // The body as text, at most the limit the caller applied.
  bool body_truncated = false;
  absl::Time now;
};

// One action's confirmation page: "Hold message 4F1A…?" with a form that POSTs it.
struct Confirmation {
  std::string title;        // "Hold message 4F1A09C2B7"
  std::string explanation;  // What it does, in a sentence.
  std::string post_to;      // The form's action: "/message/<id>/hold", "/flush".
  std::map<std::string, std::string> fields;  // Hidden fields besides the CSRF token.
  std::string button;       // "Hold"
  std::string cancel_to;    // Where "Cancel" leads.
  bool dangerous = false;   // Delete: the button says so.
};

std::string RenderOverview(const Viewer& viewer, const OverviewData& data, const std::string& notice);
std::string RenderList(const Viewer& viewer, const ListData& data);
std::string RenderMessage(const Viewer& viewer, const MessageData& data, const std::string& notice);
std::string RenderEvents(const Viewer& viewer, const std::string& domain);
std::string RenderLogin(const Viewer& viewer, const std::string& error, const std::string& operator_name,
                        const std::string& next);
std::string RenderConfirmation(const Viewer& viewer, const Confirmation& confirmation);
std::string RenderError(const Viewer& viewer, int status, const std::string& text);

// The list page's URL for `query` (its cursor included), for links and redirects.
std::string ListUrl(const ListQuery& query);

// "0s", "42s", "3m 05s", "2h 07m", "3d 04h".
std::string FormatAge(absl::Duration age);

}  // namespace postgate::console
