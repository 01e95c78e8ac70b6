#include "collector/intake/kv_decision_log.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "collector/common/logging.h"
#include "collector/pipeline/otlp_wire.h"

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

// A group's value starts with this byte; a record of the first format's starts with 'k' or 'd'.
constexpr char kGroupMarker = 'G';

bool GetBytes(absl::string_view* in, absl::string_view* out) {
  uint64_t n = 0;
  if (!wire::ReadVarint(in, &n) || n > in->size()) return false;
  *out = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

KvDecisionLog::KvDecisionLog(storage::KvTable* table, size_t capacity)
    : table_(table), capacity_(capacity) {}

absl::Status KvDecisionLog::Append(const std::vector<sampling::DecisionRecord>& records) {
  if (records.empty()) return absl::OkStatus();
  // One key per run of records decided at the same time (a shard's poll decides at one time):
  // a key per trace made the log ~10 % of the daemon's CPU without order traffic.
  std::vector<storage::KvWrite> writes;
  for (size_t i = 0; i < records.size();) {
    const int64_t nanos = absl::ToUnixNanos(records[i].decided_at);
    const uint64_t sequence = sequence_.fetch_add(1, std::memory_order_relaxed);
    storage::KvWrite& w = writes.emplace_back();
    w.key = TimeKey(nanos);
    for (int b = 7; b >= 0; --b) w.key.push_back(static_cast<char>(sequence >> (8 * b)));
    w.value.push_back(kGroupMarker);
    for (; i < records.size() && absl::ToUnixNanos(records[i].decided_at) == nanos; ++i) {
      const sampling::DecisionRecord& r = records[i];
      w.value.push_back(r.kept ? 'k' : 'd');
      wire::PutVarint(r.trace_id.size(), &w.value);
      w.value += r.trace_id;
      wire::PutVarint(r.policy.size(), &w.value);
      w.value += r.policy;
    }
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
  auto take = [&](sampling::DecisionRecord&& r, int64_t nanos) {
    ++per_second_[Second(nanos)];
    ++total_;
    ++loaded;
    fn(std::move(r));
  };
  absl::Status s = table_->Scan("", [&](absl::string_view key, absl::string_view value) {
    if (key.size() < 8 || value.empty()) return true;  // not a record of these formats: skip
    const int64_t nanos = KeyNanos(key);
    if (value[0] == kGroupMarker && key.size() == 16) {
      absl::string_view in = value.substr(1);
      while (!in.empty()) {
        sampling::DecisionRecord r;
        r.decided_at = absl::FromUnixNanos(nanos);
        r.kept = in.front() == 'k';
        in.remove_prefix(1);
        absl::string_view trace_id, policy;
        if (!GetBytes(&in, &trace_id) || !GetBytes(&in, &policy)) {
          TK_LOG(Warning) << "decision log: the group of decisions at " << r.decided_at
                          << " is damaged; its decisions after the damage are not loaded";
          break;
        }
        r.trace_id = std::string(trace_id);
        r.policy = std::string(policy);
        take(std::move(r), nanos);
      }
      return true;
    }
    // One decision per key (the format before groups): time · trace id -> kept flag · policy.
    sampling::DecisionRecord r;
    r.decided_at = absl::FromUnixNanos(nanos);
    r.trace_id = std::string(key.substr(8));
    r.kept = value[0] == 'k';
    r.policy = std::string(value.substr(1));
    take(std::move(r), nanos);
    return true;
  });
  stats_.records_loaded.fetch_add(loaded, std::memory_order_relaxed);
  return s;
}

}  // namespace tracekeep::intake
