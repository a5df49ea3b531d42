// The gateway's policy names the network types where it always did; they live in core/net.
#pragma once

#include "core/net/network.h"

namespace postgate::gateway::policy {

using net::IpAddress;
using net::Network;
using net::NetworkList;

}  // namespace postgate::gateway::policy
