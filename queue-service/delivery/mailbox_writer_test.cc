#include "queue-service/delivery/mailbox_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace postgate::queue {
namespace {

namespace fs = std::filesystem;

class MboxTest : public ::testing::Test {
 protected:
  MboxTest() : dir_(fs::temp_directory_path() / ("postgate-mbox-" + std::to_string(getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~MboxTest() override { fs::remove_all(dir_); }

  std::string Read(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  fs::path dir_;
};

// A message of `lines` lines, each naming its writer, handed out one line per chunk, so a
// writer that wrote each chunk on its own would interleave with the others.
MailboxWrite TaggedMessage(const std::string& tag, int lines) {
  MailboxWrite write;
  write.headers = absl::StrCat("X-Tag: ", tag, "\n\n");
  write.content = [tag, lines](const std::function<absl::Status(absl::string_view)>& sink) {
    for (int i = 0; i < lines; ++i) {
      if (absl::Status s = sink(absl::StrCat(tag, " line ", i, "\n")); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  return write;
}

// Two delivery workers are two threads of one process: the fcntl lock does not keep them apart.
TEST_F(MboxTest, ConcurrentAppendsFromOneProcessNeverInterleave) {
  const fs::path mbox = dir_ / "bar.mbox";
  constexpr int kThreads = 8, kMessages = 40, kLines = 30;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int m = 0; m < kMessages; ++m) {
        const std::string tag = absl::StrCat("t", t, "m", m);
        EXPECT_TRUE(AppendMbox(mbox.string(), "From foo@mail169.com  Sun Nov 29 12:00:00 2026",
                               TaggedMessage(tag, kLines)).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  const std::string text = Read(mbox);
  ASSERT_EQ(text.rfind("From ", 0), 0u);
  // Every message is "From …", its X-Tag header, an empty line, its own lines, an empty line.
  std::vector<std::string> messages = absl::StrSplit(text.substr(5), "\nFrom ");
  ASSERT_EQ(messages.size(), static_cast<size_t>(kThreads * kMessages));
  for (const std::string& message : messages) {
    std::vector<std::string> lines = absl::StrSplit(message, '\n');
    ASSERT_GE(lines.size(), 3u + kLines) << message;
    ASSERT_EQ(lines[1].rfind("X-Tag: ", 0), 0u) << message;
    const std::string tag = lines[1].substr(7);
    for (int i = 0; i < kLines; ++i) EXPECT_EQ(lines[3 + i], absl::StrCat(tag, " line ", i)) << message;
  }
}

// A message in many chunks goes out in one write(2) up to 8 MiB, in two just above: a reader
// that ignores every lock never sees part of one. (Counted where the writer calls write(2):
// /proc/self/io's syscw also counts the writes AddressSanitizer makes for itself.)
TEST_F(MboxTest, OneWritePerMessageUpToEightMebibytes) {
  const fs::path mbox = dir_ / "bar.mbox";
  for (const auto& [lines, writes] : {std::pair<int, uint64_t>{8 * 1024 - 64, 1}, {9 * 1024, 2}}) {
    MailboxWrite write = TaggedMessage(std::string(1000, 'x'), lines);  // ~1 KiB lines, one per chunk
    const uint64_t before = MailboxContentWrites();
    ASSERT_TRUE(AppendMbox(mbox.string(), "From foo@mail169.com  Sun Nov 29 12:00:00 2026", write).ok());
    EXPECT_EQ(MailboxContentWrites() - before, writes) << lines << " lines";
  }
}

TEST_F(MboxTest, HoldsADotLockWhileWritingAndRemovesItAfter) {
  const fs::path mbox = dir_ / "bar.mbox";
  const fs::path lock = dir_ / "bar.mbox.lock";
  bool held_during_write = false;
  MailboxWrite write;
  write.content = [&](const std::function<absl::Status(absl::string_view)>& sink) {
    held_during_write = fs::exists(lock);
    return sink("body\n");
  };
  ASSERT_TRUE(AppendMbox(mbox.string(), "From foo@mail169.com  Sun Nov 29 12:00:00 2026", write).ok());
  EXPECT_TRUE(held_during_write);
  EXPECT_FALSE(fs::exists(lock));
}

TEST_F(MboxTest, AStaleDotLockIsBrokenAFreshOneWaitedFor) {
  const fs::path mbox = dir_ / "bar.mbox";
  const fs::path lock = dir_ / "bar.mbox.lock";
  // Left by a reader that died long ago (older than stale_lock_time): taken over.
  std::ofstream(lock).put('x');
  fs::last_write_time(lock, fs::file_time_type::clock::now() - std::chrono::hours(1));
  ASSERT_TRUE(AppendMbox(mbox.string(), "From a@b  Sun Nov 29 12:00:00 2026", TaggedMessage("one", 1)).ok());
  EXPECT_FALSE(fs::exists(lock));

  // Ours, from a queue-service that was killed while it wrote (older than this process):
  // broken at once, not after stale_lock_time.
  std::ofstream(lock) << "postgate queue-service\n";
  fs::last_write_time(lock, fs::file_time_type::clock::now() - std::chrono::seconds(30));
  ASSERT_TRUE(AppendMbox(mbox.string(), "From a@b  Sun Nov 29 12:00:00 2026", TaggedMessage("one", 1)).ok());
  EXPECT_FALSE(fs::exists(lock));

  // Empty and older than this process: a label lost with a power cut. Broken too.
  std::ofstream(lock).close();
  fs::last_write_time(lock, fs::file_time_type::clock::now() - std::chrono::seconds(30));
  ASSERT_TRUE(AppendMbox(mbox.string(), "From a@b  Sun Nov 29 12:00:00 2026", TaggedMessage("one", 1)).ok());
  EXPECT_FALSE(fs::exists(lock));

  // Held right now by a reader: the writer waits until it is gone, then appends.
  std::ofstream(lock).put('x');
  absl::Status appended = absl::UnknownError("not yet");
  std::thread writer([&] {
    appended = AppendMbox(mbox.string(), "From a@b  Sun Nov 29 12:00:00 2026", TaggedMessage("two", 1));
  });
  // While the lock is there the mailbox keeps only the first message; then the reader lets go.
  const std::string before = Read(mbox);
  fs::remove(lock);
  writer.join();
  EXPECT_TRUE(appended.ok()) << appended;
  EXPECT_EQ(before.find("two line 0"), std::string::npos);
  EXPECT_NE(Read(mbox).find("two line 0"), std::string::npos);
}

}  // namespace
}  // namespace postgate::queue
