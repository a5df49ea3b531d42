// The console's CSS and JavaScript, compiled into the binary (web/static/, embedded at build time by
// web/embed_assets.cmake): nothing is fetched from elsewhere at run time.
#pragma once

#include <optional>

#include "absl/strings/string_view.h"

namespace postgate::console {

struct StaticAsset {
  absl::string_view content_type;
  absl::string_view bytes;
};

// "/static/console.css" → its bytes; nullopt for any other path.
std::optional<StaticAsset> FindStaticAsset(absl::string_view path);

}  // namespace postgate::console
