// RocksDbSpanStore's TraceIndex: reads of the `indexes` column family (layout in storage/keys.h).
#include <algorithm>
#include <map>
#include <tuple>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "collector/common/ids.h"
#include "collector/common/status_macros.h"
#include "rocksdb/db.h"
#include "storage/keys.h"
#include "storage/rocksdb_span_store.h"
#include "storage/rocksdb_span_store_impl.h"
#include "storage/rocksdb_status.h"

namespace tracekeep::storage {
namespace {

// The smallest key after every key that starts with `prefix`: its last byte incremented (index
// prefixes end in 0x00, or are the single tag byte 'd').
std::string PrefixEnd(std::string prefix) {
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

// One index range [prefix · lo, prefix · hi] walked backwards (newest first).
class RangeCursor {
 public:
  RangeCursor(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
              const rocksdb::Snapshot* snapshot, std::string prefix, uint64_t lo, uint64_t hi)
      : prefix_(std::move(prefix)), key_size_(prefix_.size() + keys::kIndexSuffixSize) {
    lower_ = prefix_;
    keys::AppendBigEndian64(lo, &lower_);
    if (hi == UINT64_MAX) {
      upper_ = PrefixEnd(prefix_);
    } else {
      upper_ = prefix_;
      keys::AppendBigEndian64(hi + 1, &upper_);
    }
    lower_slice_ = rocksdb::Slice(lower_);
    upper_slice_ = rocksdb::Slice(upper_);
    rocksdb::ReadOptions read_options;
    read_options.snapshot = snapshot;
    read_options.iterate_lower_bound = &lower_slice_;
    read_options.iterate_upper_bound = &upper_slice_;
    it_.reset(db->NewIterator(read_options, family));
    it_->SeekToLast();
    SkipForeign();
  }

  bool Valid() const { return it_->Valid(); }
  absl::string_view key() const { return ToView(it_->key()); }
  absl::string_view value() const { return ToView(it_->value()); }
  uint64_t time() const { return keys::IndexKeyStartTime(key()); }
  void Prev() {
    it_->Prev();
    SkipForeign();
  }
  rocksdb::Status status() const { return it_->status(); }

 private:
  // Keys of a longer name that happens to extend the prefix past a 0x00 byte can fall in the
  // range; they have another length.
  void SkipForeign() {
    while (it_->Valid() && it_->key().size() != key_size_) it_->Prev();
  }

  const std::string prefix_;
  const size_t key_size_;
  std::string lower_;
  std::string upper_;
  rocksdb::Slice lower_slice_;
  rocksdb::Slice upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

uint64_t KeyTimeOf(int64_t unix_nanos) { return keys::KeyTime(std::max<int64_t>(unix_nanos, 0)); }

}  // namespace

const AttributeKeys& RocksDbSpanStore::indexed_attributes() const {
  return impl_->indexed_attributes;
}

absl::StatusOr<std::vector<std::string>> RocksDbSpanStore::Services() {
  Impl& impl = *impl_;
  std::vector<std::string> services;
  const std::string lower(1, keys::kServiceIndexTag);
  const std::string upper(1, keys::kServiceIndexTag + 1);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(read_options, impl.indexes));
  it->Seek(lower);
  while (it->Valid()) {
    keys::ServiceIndexKeyParts parts;
    if (!keys::ParseServiceIndexKey(ToView(it->key()), &parts)) {
      it->Next();
      continue;
    }
    services.emplace_back(parts.service);
    it->Seek(PrefixEnd(keys::ServiceIndexPrefix(parts.service)));  // the next service
  }
  TK_RETURN_IF_ERROR(FromRocksDbStatus(
      it->status(), absl::StrCat("listing services in rocksdb at \"", impl.options.path, "\"")));
  return services;
}

absl::StatusOr<std::vector<OperationEntry>> RocksDbSpanStore::Operations(
    absl::string_view service, std::optional<uint32_t> kind) {
  Impl& impl = *impl_;
  std::vector<OperationEntry> operations;
  const std::string prefix = kind.has_value() ? keys::OperationKindPrefix(service, *kind)
                                              : keys::OperationServicePrefix(service);
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(rocksdb::ReadOptions(), impl.indexes));
  it->Seek(prefix);
  while (it->Valid() && absl::StartsWith(ToView(it->key()), prefix)) {
    keys::OperationKeyParts parts;
    if (!keys::ParseOperationKey(ToView(it->key()), service, &parts)) {
      it->Next();
      continue;
    }
    operations.push_back(OperationEntry{std::string(parts.name), parts.kind});
    it->Seek(PrefixEnd(keys::OperationPrefix(service, parts.kind, parts.name)));
  }
  TK_RETURN_IF_ERROR(FromRocksDbStatus(
      it->status(), absl::StrCat("listing the operations of service \"", service,
                                 "\" in rocksdb at \"", impl.options.path, "\"")));
  return operations;
}

absl::Status RocksDbSpanStore::ScanTraces(const TraceSearch& search,
                                          const std::function<bool(const TraceCandidate&)>& fn) {
  Impl& impl = *impl_;
  if (search.start_max_unix_nanos < search.start_min_unix_nanos ||
      search.start_max_unix_nanos < 0) {
    return absl::OkStatus();
  }
  const uint64_t lo = KeyTimeOf(search.start_min_unix_nanos);
  const uint64_t hi = KeyTimeOf(search.start_max_unix_nanos);
  std::vector<std::string> prefixes;
  if (search.attribute.has_value()) {
    prefixes.push_back(
        keys::AttributePrefix(search.service, search.attribute->first, search.attribute->second));
  } else {
    prefixes.push_back(keys::ServiceIndexPrefix(search.service));
  }

  rocksdb::ManagedSnapshot snapshot(impl.db.get());
  std::vector<std::unique_ptr<RangeCursor>> cursors;
  for (std::string& prefix : prefixes) {
    cursors.push_back(std::make_unique<RangeCursor>(
        impl.db.get(), impl.indexes, snapshot.snapshot(), std::move(prefix), lo, hi));
  }
  absl::flat_hash_set<std::string> seen;
  while (true) {
    // The newest entry of every range (ties: the larger key, as one range would order them).
    RangeCursor* newest = nullptr;
    for (auto& cursor : cursors) {
      if (!cursor->Valid()) continue;
      if (newest == nullptr ||
          std::make_tuple(cursor->time(), keys::IndexKeyTraceId(cursor->key())) >
              std::make_tuple(newest->time(), keys::IndexKeyTraceId(newest->key()))) {
        newest = cursor.get();
      }
    }
    if (newest == nullptr) break;
    const absl::string_view trace_id = keys::IndexKeyTraceId(newest->key());
    if (seen.emplace(trace_id).second) {
      TraceCandidate candidate;
      candidate.trace_id = trace_id;
      candidate.start_unix_nanos = static_cast<int64_t>(newest->time());
      candidate.summary = DecodeIndexSummary(newest->value());
      if (!fn(candidate)) break;
    }
    newest->Prev();
  }
  for (auto& cursor : cursors) {
    TK_RETURN_IF_ERROR(FromRocksDbStatus(
        cursor->status(), absl::StrCat("searching the traces of service \"", search.service,
                                       "\" in rocksdb at \"", impl.options.path, "\"")));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DependencyEdge>> RocksDbSpanStore::Dependencies(int64_t start_unix_nanos,
                                                                           int64_t end_unix_nanos) {
  Impl& impl = *impl_;
  std::vector<DependencyEdge> result;
  if (end_unix_nanos < start_unix_nanos || end_unix_nanos < 0) return result;
  std::map<std::pair<std::string, std::string>, uint64_t> calls;
  const std::string prefix(1, keys::kDependencyIndexTag);
  rocksdb::ManagedSnapshot snapshot(impl.db.get());
  const int64_t first_minute = std::max<int64_t>(start_unix_nanos, 0) -
                               std::max<int64_t>(start_unix_nanos, 0) % kDependencyBucketNanos;
  RangeCursor cursor(impl.db.get(), impl.indexes, snapshot.snapshot(), prefix,
                     KeyTimeOf(first_minute), KeyTimeOf(end_unix_nanos));
  std::vector<DependencyEdge> edges;
  for (; cursor.Valid(); cursor.Prev()) {
    edges.clear();
    if (!DecodeDependencies(cursor.value(), &edges)) {
      return absl::DataLossError(absl::StrCat("dependencies of trace ",
                                              ToHex(keys::IndexKeyTraceId(cursor.key())),
                                              ": undecodable index value"));
    }
    for (DependencyEdge& e : edges) calls[{std::move(e.parent), std::move(e.child)}] += e.calls;
  }
  TK_RETURN_IF_ERROR(FromRocksDbStatus(
      cursor.status(),
      absl::StrCat("reading dependencies in rocksdb at \"", impl.options.path, "\"")));
  for (auto& [edge, count] : calls)
    result.push_back(DependencyEdge{edge.first, edge.second, count});
  return result;
}

}  // namespace tracekeep::storage
