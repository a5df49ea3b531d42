#include "smtp-gateway/protocol/received_header.h"

#include "absl/strings/str_cat.h"

namespace postgate::gateway::protocol {

std::string FormatReceivedHeader(const ReceivedFields& f) {
  std::string header = absl::StrCat("Received: from ", f.helo.empty() ? f.client_hostname : f.helo,
                                    " (", f.client_hostname, " [", f.client_address, "])\n");
  if (!f.tls.empty()) {
    absl::StrAppend(&header, "\t(using ", f.tls, ")\n\t(No client certificate requested)\n");
  }
  if (!f.authenticated_sender.empty()) {
    // A comment: what could end it early or break the line (the client chose the name) is replaced.
    std::string sender = f.authenticated_sender;
    for (char& c : sender) {
      if (c == '(' || c == ')' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    absl::StrAppend(&header, "\t(Authenticated sender: ", sender, ")\n");
  }
  absl::StrAppend(&header, "\tby ", f.by_hostname, " (", f.mail_name, ") with ", f.protocol, " id ",
                  f.queue_id);
  if (f.recipients.size() == 1) {
    absl::StrAppend(&header, "\n\tfor <", f.recipients.front(), ">; ", f.date, "\n");
  } else {
    absl::StrAppend(&header, ";\n\t", f.date, "\n");
  }
  return header;
}

}  // namespace postgate::gateway::protocol
