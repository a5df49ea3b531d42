// queue-service's per-message work outside the store: minting a queue ID, building the message
// record from the envelope, and the protobuf encoding that goes to RocksDB (and over gRPC).
#include "benchmark/benchmark.h"
#include "queue-service/model/record.h"
#include "queue-service/model/message_record.h"
#include "queue-service/model/queue_id.h"

namespace postgate::queue {
namespace {

rec::Envelope TypicalEnvelope() {
  rec::Envelope envelope;
  envelope.set_sender("foo@mail169.com");
  envelope.add_recipients("bar@mail169.com");
  envelope.set_body_type(rec::BODY_TYPE_8BITMIME);
  envelope.set_declared_size(1024);
  envelope.set_idempotency_key("3f2a9c0e-5d1b-4b7e-9a61-0c8d2e4f6a10");
  rec::ClientInfo* client = envelope.mutable_client();
  client->set_address("192.168.0.10");
  client->set_hostname("client.example");
  client->set_helo("client.example");
  client->set_protocol("ESMTP");
  return envelope;
}

void BM_QueueIdNext(benchmark::State& state) {
  QueueIdGenerator ids;
  const absl::Time now = absl::Now();
  for (auto _ : state) benchmark::DoNotOptimize(ids.Next(now));
}
BENCHMARK(BM_QueueIdNext);

void BM_NewMessageRecordAndEncode(benchmark::State& state) {
  const rec::Envelope envelope = TypicalEnvelope();
  const absl::Time now = absl::Now();
  std::string encoded;
  for (auto _ : state) {
    rec::StoredMessage record = NewMessageRecord("66135F8708DB0", envelope, 1024, 1, now);
    record.SerializeToString(&encoded);
    benchmark::DoNotOptimize(encoded.data());
  }
  state.counters["bytes"] = static_cast<double>(encoded.size());
}
BENCHMARK(BM_NewMessageRecordAndEncode);

void BM_DecodeStoredRecord(benchmark::State& state) {
  const std::string encoded =
      NewMessageRecord("66135F8708DB0", TypicalEnvelope(), 1024, 1, absl::Now()).SerializeAsString();
  rec::StoredMessage record;
  for (auto _ : state) {
    record.ParseFromString(encoded);
    benchmark::DoNotOptimize(record.message().queue_id().data());
  }
}
BENCHMARK(BM_DecodeStoredRecord);

}  // namespace
}  // namespace postgate::queue
