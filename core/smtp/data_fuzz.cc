// libFuzzer target: the DATA decoder (dot-unstuffing, end of data) and BDAT's CRLF → LF
// conversion, each fed the same bytes whole and in pieces of a size taken from the input. The
// results must not depend on how the bytes were split (they arrive in arbitrary TCP segments),
// and the decoder must never read past the end of data or make content out of nothing. Both
// ends of data (CRLF only, and any line end for smtpd_forbid_bare_newline = no) are fuzzed; the
// lenient one never ends later than the strict one.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "core/smtp/data_decoder.h"
#include "core/smtp/line_endings.h"

using namespace postgate::smtp;

namespace {

struct Decoded {
  std::string content;
  size_t consumed = 0;
  bool done = false;
  bool saw_bare_lf = false;
};

Decoded DecodeInPieces(absl::string_view input, size_t piece, DataDecoder::EndOfData end_of_data) {
  DataDecoder decoder(end_of_data);
  Decoded out;
  while (out.consumed < input.size() && !decoder.done()) {
    const absl::string_view next = input.substr(out.consumed, piece);
    const size_t used = decoder.Decode(next, &out.content);
    if (used > next.size()) std::abort();
    out.consumed += used;
    if (used < next.size() && !decoder.done()) std::abort();  // Stops early only at the end.
  }
  out.done = decoder.done();
  out.saw_bare_lf = decoder.saw_bare_lf();
  return out;
}

std::string ConvertInPieces(absl::string_view input, size_t piece) {
  CrlfToLf converter;
  std::string out;
  for (size_t i = 0; i < input.size(); i += piece) converter.Convert(input.substr(i, piece), &out);
  converter.Finish(&out);
  if (converter.output_size() != out.size()) std::abort();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 7;
  const absl::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  for (const DataDecoder::EndOfData end : {DataDecoder::EndOfData::kCrLfOnly, DataDecoder::EndOfData::kAnyLineEnd}) {
    const Decoded whole = DecodeInPieces(input, input.size() + 1, end);
    const Decoded split = DecodeInPieces(input, piece, end);
    if (whole.content != split.content || whole.consumed != split.consumed || whole.done != split.done ||
        whole.saw_bare_lf != split.saw_bare_lf) {
      std::abort();
    }
    if (whole.content.size() > whole.consumed) std::abort();
    const absl::string_view used = input.substr(0, whole.consumed);
    if (whole.done && !(absl::EndsWith(used, ".\r\n") ||
                        (end == DataDecoder::EndOfData::kAnyLineEnd && absl::EndsWith(used, ".\n")))) {
      std::abort();
    }
    // Only a line ending in LF without CR counts as bare.
    if (whole.saw_bare_lf && used.find('\n') == absl::string_view::npos) std::abort();
  }
  const Decoded strict = DecodeInPieces(input, input.size() + 1, DataDecoder::EndOfData::kCrLfOnly);
  const Decoded lenient = DecodeInPieces(input, input.size() + 1, DataDecoder::EndOfData::kAnyLineEnd);
  if (strict.done && (!lenient.done || lenient.consumed > strict.consumed)) std::abort();
  if (ConvertInPieces(input, input.size() + 1) != ConvertInPieces(input, piece)) std::abort();
  return 0;
}
