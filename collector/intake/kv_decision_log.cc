#include "collector/intake/kv_decision_log.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "collector/common/logging.h"

namespace tracekeep::intake {
namespace {

constexpr uint64_t kSignFlip = uint64_t{1} << 63;

std::string TimeKey(int64_t unix_nanos) {
  const uint64_t v = static_cast<uint64_t>(unix_nanos) ^ kSignFlip;
  std::string key(8, '\0');
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>(v >> (56 - 8 * i));
  return key;
}

int64_t KeyNanos(absl::string_view key) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(key[i]);
  return static_cast<int64_t>(v ^ kSignFlip);
}

int64_t Second(int64_t unix_nanos) {
  return unix_nanos >= 0 ? unix_nanos / 1000000000 : (unix_nanos + 1) / 1000000000 - 1;
}

}  // namespace

KvDecisionLog::KvDecisionLog(storage::KvTable* table, size_t capacity)
    : table_(table), capacity_(capacity) {}

absl::Status KvDecisionLog::Append(const std::vector<sampling::DecisionRecord>& records) {
  if (records.empty()) return absl::OkStatus();
  std::vector<storage::KvWrite> writes;
  writes.reserve(records.size());
  for (const sampling::DecisionRecord& r : records) {
    storage::KvWrite& w = writes.emplace_back();
    w.key = TimeKey(absl::ToUnixNanos(r.decided_at)) + r.trace_id;
    w.value.push_back(r.kept ? 'k' : 'd');
    w.value += r.policy;
  }
  if (absl::Status s = table_->Write(writes); !s.ok()) {
    stats_.write_errors.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  stats_.records_written.fetch_add(records.size(), std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  for (const sampling::DecisionRecord& r : records) {
    ++per_second_[Second(absl::ToUnixNanos(r.decided_at))];
  }
  total_ += records.size();
  PruneLocked();
  return absl::OkStatus();
}

void KvDecisionLog::PruneLocked() {
  if (capacity_ == 0) return;
  // Erase whole seconds from the oldest while what remains still holds `capacity_` records.
  int64_t erase_before = INT64_MIN;
  while (per_second_.size() > 1 && total_ - per_second_.begin()->second >= capacity_) {
    total_ -= per_second_.begin()->second;
    per_second_.erase(per_second_.begin());
    erase_before = per_second_.begin()->first;
  }
  if (erase_before == INT64_MIN) return;
  absl::Status s = table_->EraseRange(std::string(8, '\0'), TimeKey(erase_before * 1000000000));
  if (!s.ok()) {
    stats_.write_errors.fetch_add(1, std::memory_order_relaxed);
    TK_LOG(Warning) << "decision log: pruning: " << s;
  }
}

absl::Status KvDecisionLog::Load(const std::function<void(sampling::DecisionRecord&&)>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  per_second_.clear();
  total_ = 0;
  uint64_t loaded = 0;
  absl::Status s = table_->Scan("", [&](absl::string_view key, absl::string_view value) {
    if (key.size() < 8 || value.empty()) return true;  // not a record of this format: skip
    sampling::DecisionRecord r;
    const int64_t nanos = KeyNanos(key);
    r.decided_at = absl::FromUnixNanos(nanos);
    r.trace_id = std::string(key.substr(8));
    r.kept = value[0] == 'k';
    r.policy = std::string(value.substr(1));
    ++per_second_[Second(nanos)];
    ++total_;
    ++loaded;
    fn(std::move(r));
    return true;
  });
  stats_.records_loaded.fetch_add(loaded, std::memory_order_relaxed);
  return s;
}

}  // namespace tracekeep::intake
