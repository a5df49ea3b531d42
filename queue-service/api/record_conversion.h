// The one place where the status API's types (postgate/queue/v1) and the queue's record types
// (postgate/queue/stored/v1, `rec::`) meet: what a client sends becomes a record, what the queue
// holds becomes an answer. Field by field, so either side can change without the other. Pure.
#pragma once

#include "postgate/queue/v1/queue.pb.h"
#include "queue-service/model/record.h"

namespace postgate::queue {

rec::Envelope FromApi(const v1::Envelope& envelope);
rec::RecipientOptions FromApi(const v1::RecipientOptions& options);
rec::MessageState FromApi(v1::MessageState state);

v1::Message ToApi(const rec::Message& message);
v1::MessageState ToApi(rec::MessageState state);
v1::RecipientState ToApi(rec::RecipientState state);

}  // namespace postgate::queue
