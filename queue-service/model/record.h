// The queue's own record types (proto/postgate/queue/stored/v1/record.proto), as `rec::`: what the
// store keeps and the scheduler and delivery work on. The API's types (`v1::`) meet them only in
// api/record_conversion.
#pragma once

#include "postgate/queue/stored/v1/record.pb.h"

namespace postgate::queue {
namespace rec = ::postgate::queue::stored::v1;
}  // namespace postgate::queue
