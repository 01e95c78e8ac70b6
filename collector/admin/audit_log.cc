#include "collector/admin/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "collector/common/json.h"
#include "collector/common/logging.h"

namespace tracekeep::admin {

const char* AuditResultName(AuditResult result) {
  switch (result) {
    case AuditResult::kOk:
      return "ok";
    case AuditResult::kDenied:
      return "denied";
    case AuditResult::kFailed:
      break;
  }
  return "failed";
}

AuditResult AuditResultOf(const absl::Status& status) {
  if (status.ok()) return AuditResult::kOk;
  if (absl::IsUnauthenticated(status) || absl::IsPermissionDenied(status)) {
    return AuditResult::kDenied;
  }
  return AuditResult::kFailed;
}

std::vector<std::string> LineDiff(const std::string& before, const std::string& after) {
  const std::vector<std::string> a = absl::StrSplit(before, '\n', absl::SkipEmpty());
  const std::vector<std::string> b = absl::StrSplit(after, '\n', absl::SkipEmpty());
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  std::vector<std::vector<int>> lcs(a.size() + 1, std::vector<int>(b.size() + 1, 0));
  for (size_t i = a.size(); i-- > 0;) {
    for (size_t j = b.size(); j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  std::vector<std::string> out;
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (i < a.size() && j < b.size() && a[i] == b[j]) {
      ++i;
      ++j;
    } else if (i < a.size() && (j == b.size() || lcs[i + 1][j] >= lcs[i][j + 1])) {
      out.push_back(absl::StrCat("-", a[i++]));
    } else {
      out.push_back(absl::StrCat("+", b[j++]));
    }
  }
  return out;
}

namespace {

int OpenForAppend(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

// fsyncs the directory holding `path`, so that renames and creations in it are durable.
void SyncDirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                         const AuditLogOptions& options) {
  if (options.max_files < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit log \"", path, "\": max_files must be >= 1, got ", options.max_files));
  }
  const int fd = OpenForAppend(path);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open audit log \"", path, "\": ", std::strerror(errno)));
  }
  struct stat st;
  const uint64_t size = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return std::unique_ptr<AuditLog>(new AuditLog(path, options, fd, size));
}

AuditLog::~AuditLog() {
  absl::MutexLock lock(&mu_);
  ::close(fd_);
}

absl::Status AuditLog::RotateLocked() {
  auto numbered = [this](int i) { return absl::StrCat(path_, ".", i); };
  if (::unlink(numbered(options_.max_files).c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat("cannot delete \"", numbered(options_.max_files),
                                            "\": ", std::strerror(errno)));
  }
  for (int i = options_.max_files - 1; i >= 1; --i) {
    if (::rename(numbered(i).c_str(), numbered(i + 1).c_str()) != 0 && errno != ENOENT) {
      return absl::InternalError(absl::StrCat("cannot rename \"", numbered(i), "\" to \"",
                                              numbered(i + 1), "\": ", std::strerror(errno)));
    }
  }
  if (::rename(path_.c_str(), numbered(1).c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename \"", path_, "\" to \"", numbered(1),
                                            "\": ", std::strerror(errno)));
  }
  // Until the new file is open, lines still go to the renamed one (fd_ follows it).
  const int fd = OpenForAppend(path_);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot create \"", path_, "\": ", std::strerror(errno)));
  }
  ::close(fd_);
  fd_ = fd;
  size_ = 0;
  SyncDirectoryOf(path_);
  rotations_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

std::string AuditLog::ToJson(const AuditEvent& e) {
  std::string out = "{\"time\":";
  AppendJsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", e.time, absl::UTCTimeZone()), &out);
  out += ",\"method\":";
  AppendJsonString(e.method, &out);
  out += ",\"caller\":";
  AppendJsonString(e.caller, &out);
  out += ",\"via\":";
  AppendJsonString(e.via, &out);
  out += ",\"role\":";
  AppendJsonString(e.role, &out);
  out += ",\"peer\":";
  AppendJsonString(e.peer, &out);
  out += ",\"request\":{";
  for (size_t i = 0; i < e.request.size(); ++i) {
    if (i > 0) out += ",";
    AppendJsonString(e.request[i].first, &out);
    out += ":";
    AppendJsonString(e.request[i].second, &out);
  }
  out += "},\"result\":";
  AppendJsonString(absl::StatusCodeToString(e.result.code()), &out);
  out += ",\"message\":";
  AppendJsonString(e.result.message(), &out);
  if (!e.policy_diff.empty()) {
    out += ",\"policy_diff\":[";
    for (size_t i = 0; i < e.policy_diff.size(); ++i) {
      if (i > 0) out += ",";
      AppendJsonString(e.policy_diff[i], &out);
    }
    out += "]";
  }
  out += "}";
  return out;
}

void AuditLog::Record(const AuditEvent& event) {
  int method = -1;
  for (int i = 0; i < kNumAuditedMethods; ++i) {
    if (event.method == kAuditedMethods[i]) method = i;
  }
  if (method >= 0) {
    events_[method][static_cast<int>(AuditResultOf(event.result))].fetch_add(
        1, std::memory_order_relaxed);
  }
  const std::string line = ToJson(event) + "\n";
  absl::MutexLock lock(&mu_);
  if (options_.max_bytes > 0 && size_ > 0 && size_ + line.size() > options_.max_bytes) {
    if (absl::Status rotated = RotateLocked(); !rotated.ok()) {
      TK_LOG(Error) << "audit log \"" << path_
                    << "\": cannot rotate (writing on): " << rotated.message();
    }
  }
  size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  size_ += written;
  if (written != line.size() || ::fdatasync(fd_) != 0) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    TK_LOG(Error) << "audit log \"" << path_ << "\": cannot write: " << std::strerror(errno);
  }
}

}  // namespace tracekeep::admin
