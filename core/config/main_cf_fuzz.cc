// libFuzzer target: main.cf (logical lines, $name expansion, typed values) and aliases(5) text.
// A file that parses must answer every known parameter without crashing; one that does not must
// say why.
#include <cstdint>
#include <cstdlib>

#include "core/config/aliases.h"
#include "core/config/main_cf.h"
#include "core/config/parameters.h"

using namespace postgate::config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<MainCf> cf = MainCf::Parse(text, "fuzz.cf", "fuzz.example");
  if (cf.ok()) {
    for (const ParameterSpec& spec : KnownParameters()) {
      switch (spec.kind) {
        case ValueKind::kInteger: (void)cf->GetInteger(spec.name); break;
        case ValueKind::kTime: (void)cf->GetTime(spec.name); break;
        case ValueKind::kBool: (void)cf->GetBool(spec.name); break;
        case ValueKind::kList: (void)cf->GetList(spec.name); break;
        default: (void)cf->Get(spec.name); break;
      }
    }
  } else if (cf.status().message().empty()) {
    std::abort();
  }
  AliasTable aliases;
  absl::Status parsed = aliases.Parse(text, "aliases");
  if (!parsed.ok() && parsed.message().empty()) std::abort();
  (void)SplitList(text);
  (void)ParseTime(text, 's');
  return 0;
}
