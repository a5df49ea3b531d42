// libFuzzer target: the DATA decoder (dot-unstuffing, end of data) and BDAT's CRLF → LF
// conversion, each fed the same bytes whole and in pieces of a size taken from the input. The
// results must not depend on how the bytes were split (they arrive in arbitrary TCP segments),
// and the decoder must never read past the end of data or make content out of nothing.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/smtp/data_decoder.h"
#include "core/smtp/line_endings.h"

using namespace postgate::smtp;

namespace {

struct Decoded {
  std::string content;
  size_t consumed = 0;
  bool done = false;
};

Decoded DecodeInPieces(absl::string_view input, size_t piece) {
  DataDecoder decoder;
  Decoded out;
  while (out.consumed < input.size() && !decoder.done()) {
    const absl::string_view next = input.substr(out.consumed, piece);
    const size_t used = decoder.Decode(next, &out.content);
    if (used > next.size()) std::abort();
    out.consumed += used;
    if (used < next.size() && !decoder.done()) std::abort();  // Stops early only at the end.
  }
  out.done = decoder.done();
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
  const Decoded whole = DecodeInPieces(input, input.size() + 1);
  const Decoded split = DecodeInPieces(input, piece);
  if (whole.content != split.content || whole.consumed != split.consumed || whole.done != split.done) std::abort();
  if (whole.content.size() > whole.consumed) std::abort();
  if (whole.done && (whole.consumed < 3 || input.substr(whole.consumed - 3, 3) != ".\r\n")) std::abort();
  if (ConvertInPieces(input, input.size() + 1) != ConvertInPieces(input, piece)) std::abort();
  return 0;
}
