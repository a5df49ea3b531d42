// The client's name as Postfix's smtpd finds it: the reverse (PTR) name of its address, kept only
// if that name resolves back to the same address; "unknown" otherwise.
#pragma once

#include <string>

#include "asio/ip/address.hpp"

namespace postgate::gateway {

// Blocks on the system resolver (NSS: /etc/hosts, DNS): call it off the session threads.
// Asks for no service name (asio's resolver does, which reads /etc/services on every lookup).
std::string LookUpClientName(const asio::ip::address& address);

}  // namespace postgate::gateway
