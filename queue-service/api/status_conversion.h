// The one place absl::Status becomes grpc::Status (codes map one to one; the message is kept).
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace postgate::queue {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace postgate::queue
