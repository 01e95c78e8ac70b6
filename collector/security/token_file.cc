#include "collector/security/token_file.h"

#include <openssl/sha.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "collector/common/logging.h"

namespace tracekeep::security {
namespace {

bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string DigestKey(absl::string_view token) {
  const std::array<uint8_t, 32> d = Sha256(token);
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read token file \"", path, "\""));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kNone:
      break;
  }
  return "none";
}

bool ParseRole(absl::string_view text, Role* role) {
  if (text == "viewer") {
    *role = Role::kViewer;
  } else if (text == "operator") {
    *role = Role::kOperator;
  } else {
    return false;
  }
  return true;
}

std::array<uint8_t, 32> Sha256(absl::string_view data) {
  std::array<uint8_t, 32> out;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

std::string Sha256Hex(absl::string_view salt, absl::string_view data) {
  thread_local std::string buffer;
  buffer.assign(salt.data(), salt.size());
  buffer.append(data.data(), data.size());
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(buffer.data()), buffer.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(2 * SHA256_DIGEST_LENGTH, '0');
  for (int i = 0; i < SHA256_DIGEST_LENGTH; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 15];
  }
  return hex;
}

const char* AuthFailureName(AuthFailure failure) {
  switch (failure) {
    case AuthFailure::kMissing:
      return "missing";
    case AuthFailure::kMalformed:
      return "malformed";
    case AuthFailure::kUnknown:
      return "unknown";
  }
  return "unknown";
}

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view text, const std::string& path,
                                             bool with_roles) {
  TokenTable table;
  std::vector<std::string> problems;
  std::vector<int> lines;  // the line of each holder
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const size_t want = with_roles ? 3 : 2;
    const std::string where = absl::StrCat(path, ":", line_number, ": ");
    if (fields.size() != want) {
      problems.push_back(
          absl::StrCat(where, "want ",
                       with_roles ? "\"<name> <viewer|operator> <token>\"" : "\"<name> <token>\"",
                       ", got ", fields.size(), " fields"));
      continue;
    }
    TokenHolder holder;
    holder.name = std::string(fields[0]);
    if (!IsValidName(holder.name)) {
      // The field is not echoed: a line with its fields swapped would print a token.
      problems.push_back(
          absl::StrCat(where, "the name (first field) must be 1-128 characters of [A-Za-z0-9._-]"));
      continue;
    }
    if (with_roles && !ParseRole(fields[1], &holder.role)) {
      problems.push_back(absl::StrCat(where, "the role (second field) must be viewer or operator"));
      continue;
    }
    const absl::string_view token = fields.back();
    if (token.size() < 16) {
      problems.push_back(
          absl::StrCat(where, "the token (last field) is shorter than 16 characters"));
      continue;
    }
    const auto [it, inserted] = table.by_digest_.emplace(DigestKey(token), table.holders_.size());
    if (!inserted) {
      problems.push_back(absl::StrCat(where, "the same token as line ", lines[it->second]));
      continue;
    }
    table.holders_.push_back(std::move(holder));
    lines.push_back(line_number);
  }
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  if (table.holders_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds no token"));
  }
  return table;
}

const TokenHolder* TokenTable::Find(absl::string_view token) const {
  auto it = by_digest_.find(DigestKey(token));
  return it == by_digest_.end() ? nullptr : &holders_[it->second];
}

std::vector<std::string> TokenTable::Names() const {
  std::vector<std::string> names;
  for (const TokenHolder& h : holders_) names.push_back(h.name);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

absl::StatusOr<std::unique_ptr<TokenFile>> TokenFile::Load(const std::string& path,
                                                           bool with_roles) {
  std::unique_ptr<TokenFile> file(new TokenFile(path, with_roles));
  absl::Status status = file->Reload();
  if (!status.ok()) return status;
  file->reloads_.store(0);
  return file;
}

absl::Status TokenFile::Install(const std::string& text) {
  absl::StatusOr<TokenTable> table = TokenTable::Parse(text, path_, with_roles_);
  if (!table.ok()) return table.status();
  auto shared = std::make_shared<const TokenTable>(std::move(table).value());
  absl::MutexLock lock(&mu_);
  table_ = std::move(shared);
  return absl::OkStatus();
}

absl::Status TokenFile::Reload() {
  absl::MutexLock reload_lock(&reload_mu_);
  absl::StatusOr<std::string> text = ReadWholeFile(path_);
  absl::Status status = text.status();
  if (text.ok()) {
    content_digest_ = Sha256(*text);
    status = Install(*text);
  }
  if (status.ok()) {
    reloads_.fetch_add(1, std::memory_order_relaxed);
  } else {
    reload_failures_.fetch_add(1, std::memory_order_relaxed);
  }
  return status;
}

bool TokenFile::ReloadIfChanged() {
  {
    absl::MutexLock reload_lock(&reload_mu_);
    absl::StatusOr<std::string> text = ReadWholeFile(path_);
    if (text.ok() && Sha256(*text) == content_digest_) return false;
  }
  absl::Status status = Reload();
  if (!status.ok()) {
    TK_LOG(Error) << "token file changed but cannot be loaded (previous tokens stay in force): "
                  << status.message();
  }
  return status.ok();
}

absl::StatusOr<TokenHolder> TokenFile::Authenticate(absl::string_view authorization,
                                                    AuthFailure* failure) {
  auto refuse = [&](AuthFailure f, absl::string_view why) -> absl::Status {
    failures_[static_cast<int>(f)].fetch_add(1, std::memory_order_relaxed);
    if (failure != nullptr) *failure = f;
    return absl::UnauthenticatedError(why);
  };
  authorization = absl::StripAsciiWhitespace(authorization);
  if (authorization.empty()) {
    return refuse(AuthFailure::kMissing,
                  "missing bearer token (send \"authorization: Bearer <token>\")");
  }
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::StartsWithIgnoreCase(authorization, kScheme)) {
    return refuse(AuthFailure::kMalformed, "the authorization header is not \"Bearer <token>\"");
  }
  const absl::string_view token = absl::StripAsciiWhitespace(authorization.substr(kScheme.size()));
  std::shared_ptr<const TokenTable> table;
  {
    absl::MutexLock lock(&mu_);
    table = table_;
  }
  const TokenHolder* holder = table != nullptr ? table->Find(token) : nullptr;
  if (holder == nullptr) return refuse(AuthFailure::kUnknown, "unknown bearer token");
  return *holder;
}

std::vector<std::string> TokenFile::Names() const {
  absl::MutexLock lock(&mu_);
  return table_ != nullptr ? table_->Names() : std::vector<std::string>();
}

}  // namespace tracekeep::security
