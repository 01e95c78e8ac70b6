#include "collector/exporter/queue_store.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace tracekeep::exporter {

absl::StatusOr<uint64_t> MemoryQueueStore::Append(uint64_t seq, absl::Time enqueued,
                                                  const std::vector<SpanRecord>& spans) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fail_appends_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(Describe(), ": cannot append batch ", seq, ": no space left (test hook)"));
  }
  if (!entries_.empty() && entries_.rbegin()->first >= seq) {
    return absl::InvalidArgumentError(absl::StrCat(Describe(), ": batch ", seq,
                                                   " is not after the last one (",
                                                   entries_.rbegin()->first, ")"));
  }
  Entry& entry = entries_[seq];
  entry.enqueued = enqueued;
  entry.spans = spans;
  for (const SpanRecord& span : spans) entry.bytes += SpanBytes(span);
  return entry.bytes;
}

absl::StatusOr<std::vector<SpanRecord>> MemoryQueueStore::Read(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(seq);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat(Describe(), ": no batch ", seq));
  }
  return it->second.spans;
}

absl::Status MemoryQueueStore::Remove(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(seq);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<QueueEntryInfo>> MemoryQueueStore::List() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<QueueEntryInfo> out;
  out.reserve(entries_.size());
  for (const auto& [seq, entry] : entries_) {
    out.push_back(
        QueueEntryInfo{seq, entry.bytes, static_cast<int64_t>(entry.spans.size()), entry.enqueued});
  }
  return out;
}

void MemoryQueueStore::set_fail_appends(bool fail) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_appends_ = fail;
}

size_t MemoryQueueStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace tracekeep::exporter
