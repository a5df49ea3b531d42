// Which version of a file is on disk, to notice that it changed: a file an operator mounts from
// a Kubernetes Secret or ConfigMap is replaced by swapping a symlink, which gives a new inode;
// an edit in place changes the size or modification time.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>

namespace postgate::config {

struct FileVersion {
  dev_t device = 0;
  ino_t inode = 0;
  int64_t mtime_ns = 0;
  off_t size = -1;
  bool operator==(const FileVersion&) const = default;
};

// The version of `path` (symlinks followed), or nullopt when it cannot be read now.
inline std::optional<FileVersion> StatFile(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return std::nullopt;
  return FileVersion{info.st_dev, info.st_ino,
                     static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec, info.st_size};
}

}  // namespace postgate::config
