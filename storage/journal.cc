#include "storage/journal.h"

#include <atomic>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "collector/common/ids.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "storage/rocksdb_status.h"
#include "storage/span_codec.h"
#include "storage/write_guard.h"

namespace tracekeep::storage {
namespace {

constexpr uint8_t kRecordVersion = 1;

void PutFixed64BE(uint64_t v, std::string* out) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetFixed64BE(absl::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

// Keys sort by arrival time, then by an in-process sequence number: arrival (8, BE, nanos since
// the epoch, offset by 2^63 so negative times sort first) · sequence (8, BE).
std::string Key(absl::Time arrival, uint64_t sequence) {
  std::string key;
  PutFixed64BE(static_cast<uint64_t>(absl::ToUnixNanos(arrival)) ^ (uint64_t{1} << 63), &key);
  PutFixed64BE(sequence, &key);
  return key;
}

absl::Time KeyTime(absl::string_view key) {
  return absl::FromUnixNanos(static_cast<int64_t>(GetFixed64BE(key) ^ (uint64_t{1} << 63)));
}

}  // namespace

// Record: version byte, varint origin count, origins (resource, resource schema url, scope,
// scope schema url, service name: length-prefixed), varint trace count, then per trace: trace id
// (length-prefixed), varint span count, per span: varint origin index, span id, span bytes
// (length-prefixed), start and end (varint of the zigzag-free uint64 cast), flags byte.
void EncodeJournalRecord(const std::vector<TraceSpans>& traces, std::string* out) {
  std::unordered_map<const SpanOrigin*, uint64_t> origin_index;
  std::vector<const SpanOrigin*> origins;
  for (const TraceSpans& t : traces) {
    for (const SpanRecord& s : t.spans) {
      if (origin_index.emplace(s.origin.get(), origins.size()).second) {
        origins.push_back(s.origin.get());
      }
    }
  }
  out->push_back(static_cast<char>(kRecordVersion));
  codec::PutVarint64(origins.size(), out);
  static const SpanOrigin kEmpty;
  for (const SpanOrigin* o : origins) {
    const SpanOrigin& origin = o == nullptr ? kEmpty : *o;
    codec::PutLengthPrefixed(origin.resource, out);
    codec::PutLengthPrefixed(origin.resource_schema_url, out);
    codec::PutLengthPrefixed(origin.scope, out);
    codec::PutLengthPrefixed(origin.scope_schema_url, out);
    codec::PutLengthPrefixed(origin.service_name, out);
  }
  codec::PutVarint64(traces.size(), out);
  for (const TraceSpans& t : traces) {
    codec::PutLengthPrefixed(t.trace_id, out);
    codec::PutVarint64(t.spans.size(), out);
    for (const SpanRecord& s : t.spans) {
      codec::PutVarint64(origin_index[s.origin.get()], out);
      codec::PutLengthPrefixed(s.span_id, out);
      codec::PutLengthPrefixed(s.span, out);
      codec::PutVarint64(static_cast<uint64_t>(s.start_unix_nanos), out);
      codec::PutVarint64(static_cast<uint64_t>(s.end_unix_nanos), out);
      out->push_back(static_cast<char>((s.is_error ? 1 : 0) | (s.is_root ? 2 : 0)));
    }
  }
}

absl::Status DecodeJournalRecord(absl::string_view record, std::vector<TraceSpans>* out) {
  auto corrupt = [](const char* what) {
    return absl::DataLossError(absl::StrCat("journal record: truncated or corrupt ", what));
  };
  if (record.empty() || static_cast<uint8_t>(record[0]) != kRecordVersion) {
    return absl::DataLossError("journal record: unknown format version");
  }
  record.remove_prefix(1);
  uint64_t n_origins = 0;
  if (!codec::GetVarint64(&record, &n_origins)) return corrupt("origin count");
  std::vector<SpanOriginPtr> origins;
  for (uint64_t i = 0; i < n_origins; ++i) {
    auto origin = std::make_shared<SpanOrigin>();
    absl::string_view parts[5];
    for (auto& p : parts) {
      if (!codec::GetLengthPrefixed(&record, &p)) return corrupt("origin");
    }
    origin->resource = std::string(parts[0]);
    origin->resource_schema_url = std::string(parts[1]);
    origin->scope = std::string(parts[2]);
    origin->scope_schema_url = std::string(parts[3]);
    origin->service_name = std::string(parts[4]);
    origins.push_back(std::move(origin));
  }
  uint64_t n_traces = 0;
  if (!codec::GetVarint64(&record, &n_traces)) return corrupt("trace count");
  for (uint64_t t = 0; t < n_traces; ++t) {
    TraceSpans& trace = out->emplace_back();
    absl::string_view trace_id;
    uint64_t n_spans = 0;
    if (!codec::GetLengthPrefixed(&record, &trace_id) || !codec::GetVarint64(&record, &n_spans)) {
      return corrupt("trace");
    }
    trace.trace_id = std::string(trace_id);
    trace.hash = TraceIdHash(trace.trace_id);
    for (uint64_t s = 0; s < n_spans; ++s) {
      SpanRecord& span = trace.spans.emplace_back();
      uint64_t origin = 0, start = 0, end = 0;
      absl::string_view span_id, bytes;
      if (!codec::GetVarint64(&record, &origin) || origin >= origins.size() ||
          !codec::GetLengthPrefixed(&record, &span_id) ||
          !codec::GetLengthPrefixed(&record, &bytes) || !codec::GetVarint64(&record, &start) ||
          !codec::GetVarint64(&record, &end) || record.empty()) {
        return corrupt("span");
      }
      span.origin = origins[origin];
      span.span_id = std::string(span_id);
      span.span = std::string(bytes);
      span.start_unix_nanos = static_cast<int64_t>(start);
      span.end_unix_nanos = static_cast<int64_t>(end);
      span.is_error = (record[0] & 1) != 0;
      span.is_root = (record[0] & 2) != 0;
      record.remove_prefix(1);
    }
  }
  if (!record.empty()) return corrupt("trailer");
  return absl::OkStatus();
}

struct Journal::Impl {
  JournalOptions options;
  // Declared before db, so destroyed after it: the database holds the guard's listener.
  std::unique_ptr<WriteGuard> guard;
  std::unique_ptr<rocksdb::DB> db;
  std::atomic<uint64_t> sequence{0};
};

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const JournalOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("journal: path must be set");
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.max_background_jobs = 2;
  db_options.write_buffer_size = 64 << 20;
  db_options.compression = rocksdb::kNoCompression;  // span bytes compress poorly; CPU matters
  auto impl = std::make_unique<Impl>();
  impl->guard = std::make_unique<WriteGuard>(absl::StrCat("journal at \"", options.path, "\""),
                                             options.clock, options.resume_interval);
  db_options.listeners.push_back(impl->guard->Listener());
  db_options.info_log = NewRocksDbLogger(absl::StrCat("journal at \"", options.path, "\""));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, &raw);
  if (!s.ok()) return FromRocksDbStatus(s, absl::StrCat("journal: open \"", options.path, "\""));
  impl->options = options;
  impl->db.reset(raw);
  impl->guard->Attach(raw);
  // Continue sequence numbers after the largest one on disk, so that replayed and new entries
  // with the same arrival time keep their order.
  std::unique_ptr<rocksdb::Iterator> it(impl->db->NewIterator(rocksdb::ReadOptions()));
  it->SeekToLast();
  if (it->Valid() && it->key().size() == 16) {
    impl->sequence = GetFixed64BE(absl::string_view(it->key().data() + 8, 8)) + 1;
  }
  return std::unique_ptr<Journal>(new Journal(std::move(impl)));
}

Journal::Journal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Journal::~Journal() = default;

absl::StatusOr<std::string> Journal::Append(const std::vector<TraceSpans>& traces,
                                            absl::Time arrival) {
  std::string value;
  EncodeJournalRecord(traces, &value);
  const std::string key = Key(arrival, impl_->sequence.fetch_add(1));
  rocksdb::WriteOptions write_options;
  write_options.sync = impl_->options.sync;
  // Every write goes through the guard: refused while the database is failed (write_guard.h).
  if (absl::Status s = impl_->guard->Run([&] { return impl_->db->Put(write_options, key, value); },
                                         "journal: append");
      !s.ok()) {
    stats_.append_errors.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  stats_.batches_appended.fetch_add(1, std::memory_order_relaxed);
  stats_.bytes_appended.fetch_add(value.size(), std::memory_order_relaxed);
  return key;
}

absl::Status Journal::Erase(const std::string& key) {
  return impl_->guard->Run([&] { return impl_->db->Delete(rocksdb::WriteOptions(), key); },
                           "journal: erase");
}

absl::Status Journal::TruncateBefore(absl::Time time) {
  const std::string first(16, '\0');
  const std::string end = Key(time, 0);
  TK_RETURN_IF_ERROR(impl_->guard->Run(
      [&] {
        return impl_->db->DeleteRange(rocksdb::WriteOptions(), impl_->db->DefaultColumnFamily(),
                                      first, end);
      },
      "journal: truncate"));
  stats_.truncations.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status Journal::Replay(
    const std::function<absl::Status(std::vector<TraceSpans>&&, absl::Time)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const absl::string_view key(it->key().data(), it->key().size());
    if (key.size() != 16) continue;
    std::vector<TraceSpans> traces;
    absl::Status decoded =
        DecodeJournalRecord(absl::string_view(it->value().data(), it->value().size()), &traces);
    if (!decoded.ok()) {
      TK_LOG(Error) << "journal: skipping a corrupt entry: " << decoded;
      continue;
    }
    stats_.batches_replayed.fetch_add(1, std::memory_order_relaxed);
    if (absl::Status s = fn(std::move(traces), KeyTime(key)); !s.ok()) return s;
  }
  return FromRocksDbStatus(it->status(), "journal: replay");
}

bool Journal::writable() const { return !impl_->guard->failed(); }
uint64_t Journal::write_refusals() const { return impl_->guard->refused(); }

uint64_t Journal::ApproximateEntries() {
  uint64_t n = 0;
  impl_->db->GetIntProperty("rocksdb.estimate-num-keys", &n);
  return n;
}

uint64_t Journal::ApproximateDiskBytes() {
  uint64_t sst = 0, wal = 0;
  impl_->db->GetIntProperty("rocksdb.live-sst-files-size", &sst);
  impl_->db->GetIntProperty("rocksdb.cur-size-all-mem-tables", &wal);
  return sst + wal;
}

}  // namespace tracekeep::storage
