// A small leveled logger writing one line per message to stderr. Debian's abseil has no absl/log.
#ifndef TRACEKEEP_COLLECTOR_COMMON_LOGGING_H_
#define TRACEKEEP_COLLECTOR_COMMON_LOGGING_H_

#include <sstream>
#include <string>

namespace tracekeep {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below this level are discarded. Default: kInfo.
void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();
// Parses "debug", "info", "warn"/"warning", "error".
bool ParseLogLevel(const std::string& text, LogLevel* level);

namespace internal {
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
// Turns a stream expression into void for TK_LOG's conditional (`&` binds after `<<`).
struct LogVoidify {
  void operator&(std::ostream&) {}
};
}  // namespace internal
}  // namespace tracekeep

// One expression, not an if/else: `if (x) TK_LOG(Info) << ...; else ...` binds as written (and
// compilers do not warn of an ambiguous else). The message is built only at enabled levels.
#define TK_LOG(level)                                                                              \
  (::tracekeep::LogLevel::k##level < ::tracekeep::MinLogLevel())                                   \
      ? (void)0                                                                                    \
      : ::tracekeep::internal::LogVoidify() &                                                      \
            ::tracekeep::internal::LogMessage(::tracekeep::LogLevel::k##level, __FILE__, __LINE__) \
                .stream()

#endif  // TRACEKEEP_COLLECTOR_COMMON_LOGGING_H_
