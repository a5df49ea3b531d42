// The gateway's per-byte and per-command hot paths: finding command lines in pipelined input,
// parsing commands and paths, decoding DATA (dot-unstuffing, CRLF → LF) and BDAT (CRLF → LF).
#include <string>

#include "benchmark/benchmark.h"
#include "core/smtp/address.h"
#include "core/smtp/command.h"
#include "core/smtp/data_decoder.h"
#include "core/smtp/line_endings.h"
#include "core/smtp/line_reader.h"

namespace postgate::smtp {
namespace {

// A typical client's envelope, pipelined (RFC 2920) as smtp-source and most MTAs send it.
const std::string kPipelinedEnvelope =
    "MAIL FROM:<foo@mail169.com> SIZE=1024 BODY=8BITMIME\r\nRCPT TO:<bar@mail169.com>\r\n"
    "RCPT TO:<bar+tag@mail169.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bar+2Btag@mail169.com\r\nDATA\r\n";

void BM_LineReaderAndParseCommand(benchmark::State& state) {
  LineReader reader(2048);
  for (auto _ : state) {
    absl::string_view input = kPipelinedEnvelope;
    size_t consumed = 0;
    while (std::optional<CommandLine> line = reader.Next(input, &consumed)) {
      benchmark::DoNotOptimize(ParseCommand(line->text));
      input.remove_prefix(consumed);
    }
  }
  state.SetItemsProcessed(state.iterations() * 4);  // Commands.
}
BENCHMARK(BM_LineReaderAndParseCommand);

void BM_ParsePathArgument(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        ParsePathArgument("TO:<bar+tag@mail169.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bar+2Btag@mail169.com", "TO:"));
  }
}
BENCHMARK(BM_ParsePathArgument);

// A message of `size` bytes in 78-byte lines, some starting with a dot, as it comes after DATA.
std::string WireMessage(size_t size) {
  std::string wire = "Subject: benchmark\r\n\r\n";
  for (size_t line = 0; wire.size() < size; ++line) {
    if (line % 10 == 0) wire += "..";
    wire += std::string(76, 'x') + "\r\n";
  }
  return wire + ".\r\n";
}

void BM_DataDecoder(benchmark::State& state) {
  const std::string wire = WireMessage(static_cast<size_t>(state.range(0)));
  std::string out;
  for (auto _ : state) {
    DataDecoder decoder;
    out.clear();
    // In 4 KiB reads, as the session reads from the socket.
    for (size_t offset = 0; offset < wire.size() && !decoder.done(); offset += 4096) {
      decoder.Decode(absl::string_view(wire).substr(offset, 4096), &out);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_DataDecoder)->Arg(1024)->Arg(100 * 1024)->Arg(10 * 1024 * 1024);

void BM_BdatCrlfToLf(benchmark::State& state) {
  const std::string wire = WireMessage(static_cast<size_t>(state.range(0)));
  std::string out;
  for (auto _ : state) {
    CrlfToLf converter;
    out.clear();
    for (size_t offset = 0; offset < wire.size(); offset += 4096) {
      converter.Convert(absl::string_view(wire).substr(offset, 4096), &out);
    }
    converter.Finish(&out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_BdatCrlfToLf)->Arg(1024)->Arg(100 * 1024);

}  // namespace
}  // namespace postgate::smtp
