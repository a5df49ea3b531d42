#include "core/base/logging.h"

#include <unistd.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace postgate::base {
namespace {

void AppendJsonString(std::string* out, absl::string_view text) {
  out->push_back('"');
  for (unsigned char c : text) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

const char* LevelWord(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::warn: return "warning";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "fatal";
    case spdlog::level::debug:
    case spdlog::level::trace: return "debug";
    default: return "info";
  }
}

class PostfixStyleFormatter : public spdlog::formatter {
 public:
  PostfixStyleFormatter(std::string hostname, std::string program, bool json)
      : hostname_(std::move(hostname)), program_(std::move(program)), json_(json), pid_(getpid()) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string time = absl::FormatTime("%Y-%m-%dT%H:%M:%E3S%Ez", absl::FromChrono(msg.time),
                                              absl::LocalTimeZone());
    const absl::string_view text(msg.payload.data(), msg.payload.size());
    std::string line;
    if (json_) {
      line = absl::StrCat("{\"time\":\"", time, "\",\"host\":");
      AppendJsonString(&line, hostname_);
      absl::StrAppend(&line, ",\"program\":\"", program_, "\",\"pid\":", pid_, ",\"level\":\"",
                      LevelWord(msg.level), "\",\"message\":");
      AppendJsonString(&line, text);
      line += "}\n";
    } else {
      line = absl::StrCat(time, " ", hostname_, " ", program_, "[", pid_, "]: ");
      if (msg.level >= spdlog::level::warn) absl::StrAppend(&line, LevelWord(msg.level), ": ");
      absl::StrAppend(&line, text, "\n");
    }
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<PostfixStyleFormatter>(hostname_, program_, json_);
  }

 private:
  std::string hostname_;
  std::string program_;
  bool json_;
  int pid_;
};

// What InitLogging was given, for ProgramLogger. Set once, before any other thread runs.
std::string g_hostname;
bool g_json = false;

}  // namespace

absl::Status InitLogging(const std::string& hostname, const std::string& program,
                         const std::string& format) {
  if (format != "text" && format != "json") {
    return absl::InvalidArgumentError(absl::StrCat("\"", format, "\": use text or json"));
  }
  auto logger = std::make_shared<spdlog::logger>(
      program, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(std::make_unique<PostfixStyleFormatter>(hostname, program, format == "json"));
  logger->flush_on(spdlog::level::info);  // One line per event, visible at once (kubectl logs).
  spdlog::set_default_logger(logger);
  g_hostname = hostname;
  g_json = format == "json";
  return absl::OkStatus();
}

std::shared_ptr<spdlog::logger> ProgramLogger(const std::string& program) {
  // A sink of its own: the formatter lives in the sink, so a shared one would rename the default
  // logger's lines too. Each line is one fwrite to stderr, which stdio keeps whole.
  const std::shared_ptr<spdlog::logger> base = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(program, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(std::make_unique<PostfixStyleFormatter>(g_hostname, program, g_json));
  logger->set_level(base->level());
  logger->flush_on(spdlog::level::info);
  return logger;
}

std::string FormatDelay(double seconds) {
  if (seconds < 0.005) return "0";
  if (seconds >= 10) return absl::StrFormat("%.0f", seconds);
  std::string text = absl::StrFormat("%.2f", seconds);
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text;
}

}  // namespace postgate::base
