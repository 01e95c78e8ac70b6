// Bearer tokens that name their holder, read from a file and reloaded when it changes: who may
// send spans (one OTLP client per token) and who may operate (one admin user and role per token).
//
// File format, one token a line, `#` starts a comment line, blank lines are ignored:
//   OTLP receivers (client, token):          shop-api  3f9c...e1
//   admin API (name, role, token):           alice  operator  7a0b...c2
// Names are [A-Za-z0-9._-]+ (they become metric label values); roles are viewer or operator.
// Tokens are kept only as SHA-256 digests; neither they nor their digests are ever logged.
#ifndef TRACEKEEP_COLLECTOR_SECURITY_TOKEN_FILE_H_
#define TRACEKEEP_COLLECTOR_SECURITY_TOKEN_FILE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace tracekeep::security {

// What an admin caller may do. Operators may do everything viewers may.
enum class Role { kNone = 0, kViewer = 1, kOperator = 2 };
// "none", "viewer", "operator".
const char* RoleName(Role role);
// "viewer" or "operator"; false otherwise.
bool ParseRole(absl::string_view text, Role* role);

// SHA-256 of `data` (OpenSSL).
std::array<uint8_t, 32> Sha256(absl::string_view data);
// Lower-case hex SHA-256 of `salt` followed by `data`.
std::string Sha256Hex(absl::string_view salt, absl::string_view data);

// Why a request's credentials were refused: the `reason` label of
// tracekeep_*_auth_failures_total.
enum class AuthFailure { kMissing = 0, kMalformed = 1, kUnknown = 2 };
inline constexpr int kNumAuthFailures = 3;
// "missing", "malformed", "unknown".
const char* AuthFailureName(AuthFailure failure);

// Who a valid token belongs to.
struct TokenHolder {
  std::string name;
  Role role = Role::kNone;  // kNone in files without roles
};

// The parsed contents of one token file.
class TokenTable {
 public:
  // Parses `text`. `with_roles`: lines are "name role token", else "name token". Errors name the
  // file (`path`) and the line, never the token. Two lines with the same token are an error; two
  // tokens for one name are fine (rotation).
  [[nodiscard]] static absl::StatusOr<TokenTable> Parse(absl::string_view text,
                                                        const std::string& path, bool with_roles);
  // The holder of `token`, or nullptr.
  const TokenHolder* Find(absl::string_view token) const;
  // Every holder's name, sorted, without duplicates.
  std::vector<std::string> Names() const;
  size_t size() const { return holders_.size(); }

 private:
  std::vector<TokenHolder> holders_;
  absl::flat_hash_map<std::string, size_t> by_digest_;  // SHA-256 of the token -> holders_ index
};

// A token file kept in memory and reloaded on demand (SIGHUP) or when its contents change
// (ReloadIfChanged, called periodically: token files are small, so it reads and digests them). A
// reload that fails (file gone, a bad line) keeps the tokens in force and is counted. Thread-safe;
// Authenticate holds a lock only to copy a shared pointer.
class TokenFile {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<TokenFile>> Load(const std::string& path,
                                                                       bool with_roles);

  // Checks an "authorization" header value ("Bearer <token>"; the scheme is case-insensitive).
  // Fails with kUnauthenticated naming the reason (never the token) and counts the failure.
  [[nodiscard]] absl::StatusOr<TokenHolder> Authenticate(absl::string_view authorization,
                                                         AuthFailure* failure = nullptr);

  // Reads the file again. On failure the previous tokens stay in force.
  [[nodiscard]] absl::Status Reload();
  // Reloads when the file changed since the last (attempted) load; true when it did.
  bool ReloadIfChanged();

  const std::string& path() const { return path_; }
  std::vector<std::string> Names() const;

  uint64_t failures(AuthFailure f) const {
    return failures_[static_cast<int>(f)].load(std::memory_order_relaxed);
  }
  uint64_t reloads() const { return reloads_.load(std::memory_order_relaxed); }
  uint64_t reload_failures() const { return reload_failures_.load(std::memory_order_relaxed); }

 private:
  TokenFile(std::string path, bool with_roles) : path_(std::move(path)), with_roles_(with_roles) {}
  // Parses `text` (read from the file) and puts it in force.
  absl::Status Install(const std::string& text) ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_);

  const std::string path_;
  const bool with_roles_;
  absl::Mutex reload_mu_;                                                    // one reload at a time
  std::array<uint8_t, 32> content_digest_ ABSL_GUARDED_BY(reload_mu_) = {};  // of the last read
  mutable absl::Mutex mu_;
  std::shared_ptr<const TokenTable> table_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> failures_[kNumAuthFailures] = {};
  std::atomic<uint64_t> reloads_{0};
  std::atomic<uint64_t> reload_failures_{0};
};

}  // namespace tracekeep::security

#endif  // TRACEKEEP_COLLECTOR_SECURITY_TOKEN_FILE_H_
