#include "storage/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iterator>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "collector/common/ids.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "storage/rocksdb_status.h"
#include "storage/span_codec.h"
#include "storage/write_guard.h"

namespace tracekeep::storage {
namespace {

constexpr uint8_t kRecordVersion = 1;
// Bytes of a record's header before its payload (see the file format below).
constexpr uint64_t kRecordHeaderBytes = 25;

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
void EncodeJournalRecord(const std::vector<TraceSpans>& traces, std::string* out,
                         std::vector<uint64_t>* span_offsets, std::vector<uint32_t>* trace_offsets,
                         uint32_t* origins_end) {
  std::unordered_map<const SpanOrigin*, uint64_t> origin_index;
  std::vector<const SpanOrigin*> origins;
  // A span's origin is nearly always the one of the span before it: looked up once per run.
  const SpanOrigin* last_origin = nullptr;
  uint64_t last_index = 0;
  auto index_of = [&](const SpanOrigin* o) {
    if (o != last_origin || origins.empty()) {
      last_index = origin_index.emplace(o, origins.size()).first->second;
      if (last_index == origins.size()) origins.push_back(o);
      last_origin = o;
    }
    return last_index;
  };
  // Room for the whole record at once (a request's record is ~190 KB; grown by doubling, it was
  // reallocated and copied ~18 times): every field's largest encoding.
  constexpr size_t kVarint = 10;
  size_t bound = 1 + 2 * kVarint;
  for (const TraceSpans& t : traces) {
    bound += 2 * kVarint + t.trace_id.size();
    for (const SpanRecord& s : t.spans) {
      index_of(s.origin.get());
      bound += 5 * kVarint + 1 + s.span_id.size() + s.span.size();
    }
  }
  static const SpanOrigin kEmpty;
  for (const SpanOrigin* o : origins) {
    const SpanOrigin& origin = o == nullptr ? kEmpty : *o;
    bound += 5 * kVarint + origin.resource.size() + origin.resource_schema_url.size() +
             origin.scope.size() + origin.scope_schema_url.size() + origin.service_name.size();
  }
  out->reserve(out->size() + bound);
  out->push_back(static_cast<char>(kRecordVersion));
  codec::PutVarint64(origins.size(), out);
  for (const SpanOrigin* o : origins) {
    const SpanOrigin& origin = o == nullptr ? kEmpty : *o;
    codec::PutLengthPrefixed(origin.resource, out);
    codec::PutLengthPrefixed(origin.resource_schema_url, out);
    codec::PutLengthPrefixed(origin.scope, out);
    codec::PutLengthPrefixed(origin.scope_schema_url, out);
    codec::PutLengthPrefixed(origin.service_name, out);
  }
  if (origins_end != nullptr) *origins_end = static_cast<uint32_t>(out->size());
  codec::PutVarint64(traces.size(), out);
  for (const TraceSpans& t : traces) {
    if (trace_offsets != nullptr) trace_offsets->push_back(static_cast<uint32_t>(out->size()));
    codec::PutLengthPrefixed(t.trace_id, out);
    codec::PutVarint64(t.spans.size(), out);
    for (const SpanRecord& s : t.spans) {
      codec::PutVarint64(index_of(s.origin.get()), out);
      codec::PutLengthPrefixed(s.span_id, out);
      codec::PutVarint64(s.span.size(), out);
      if (span_offsets != nullptr) span_offsets->push_back(out->size());
      out->append(s.span);
      codec::PutVarint64(static_cast<uint64_t>(s.start_unix_nanos), out);
      codec::PutVarint64(static_cast<uint64_t>(s.end_unix_nanos), out);
      out->push_back(static_cast<char>((s.is_error ? 1 : 0) | (s.is_root ? 2 : 0)));
    }
  }
}

namespace {

absl::Status Corrupt(const char* what) {
  return absl::DataLossError(absl::StrCat("journal record: truncated or corrupt ", what));
}

// The version byte and the resources and scopes at the start of a record's payload.
absl::Status DecodeOrigins(absl::string_view* in, std::vector<SpanOriginPtr>* origins) {
  absl::string_view& record = *in;
  auto corrupt = Corrupt;
  if (record.empty() || static_cast<uint8_t>(record[0]) != kRecordVersion) {
    return absl::DataLossError("journal record: unknown format version");
  }
  record.remove_prefix(1);
  uint64_t n_origins = 0;
  if (!codec::GetVarint64(&record, &n_origins)) return corrupt("origin count");
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
    origins->push_back(std::move(origin));
  }
  return absl::OkStatus();
}

// `n_traces` trace entries from `in`; see DecodeJournalRecord. `payload`: where the record's
// payload starts (for the spans' places).
absl::Status DecodeTraces(absl::string_view* in, uint64_t n_traces,
                          const std::vector<SpanOriginPtr>& origins, absl::string_view only_trace,
                          const JournalRef* place, const char* payload,
                          std::vector<TraceSpans>* out) {
  absl::string_view& record = *in;
  auto corrupt = Corrupt;
  for (uint64_t t = 0; t < n_traces; ++t) {
    absl::string_view trace_id;
    uint64_t n_spans = 0;
    if (!codec::GetLengthPrefixed(&record, &trace_id) || !codec::GetVarint64(&record, &n_spans)) {
      return corrupt("trace");
    }
    if (!only_trace.empty() && trace_id != only_trace) {  // skipped without a copy
      for (uint64_t s = 0; s < n_spans; ++s) {
        uint64_t ignored = 0;
        absl::string_view skipped;
        if (!codec::GetVarint64(&record, &ignored) ||
            !codec::GetLengthPrefixed(&record, &skipped) ||
            !codec::GetLengthPrefixed(&record, &skipped) ||
            !codec::GetVarint64(&record, &ignored) || !codec::GetVarint64(&record, &ignored) ||
            record.empty()) {
          return corrupt("span");
        }
        record.remove_prefix(1);
      }
      continue;
    }
    TraceSpans& trace = out->emplace_back();
    trace.trace_id = std::string(trace_id);
    trace.hash = TraceIdHash(trace.trace_id);
    for (uint64_t s = 0; s < n_spans; ++s) {
      SpanRecord& span = trace.spans.emplace_back();
      uint64_t origin = 0, start = 0, end = 0;
      absl::string_view span_id, bytes;
      if (!codec::GetVarint64(&record, &origin) || origin >= origins.size() ||
          !codec::GetLengthPrefixed(&record, &span_id) || span_id.size() > SpanIdField::kMaxSize ||
          !codec::GetLengthPrefixed(&record, &bytes) || !codec::GetVarint64(&record, &start) ||
          !codec::GetVarint64(&record, &end) || record.empty()) {
        return corrupt("span");
      }
      span.origin = origins[origin];
      span.span_id = span_id;
      span.span = std::string(bytes);
      if (place != nullptr) {
        span.journal_segment = place->segment;
        span.journal_offset =
            place->offset + kRecordHeaderBytes + static_cast<uint64_t>(bytes.data() - payload);
        span.journal_size = static_cast<uint32_t>(bytes.size());
      }
      span.start_unix_nanos = static_cast<int64_t>(start);
      span.end_unix_nanos = static_cast<int64_t>(end);
      span.is_error = (record[0] & 1) != 0;
      span.is_root = (record[0] & 2) != 0;
      record.remove_prefix(1);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DecodeJournalRecord(absl::string_view record, std::vector<TraceSpans>* out,
                                 absl::string_view only_trace, const JournalRef* place) {
  const char* const payload = record.data();
  std::vector<SpanOriginPtr> origins;
  TK_RETURN_IF_ERROR(DecodeOrigins(&record, &origins));
  uint64_t n_traces = 0;
  if (!codec::GetVarint64(&record, &n_traces)) return Corrupt("trace count");
  TK_RETURN_IF_ERROR(DecodeTraces(&record, n_traces, origins, only_trace, place, payload, out));
  if (!record.empty()) return Corrupt("trailer");
  return absl::OkStatus();
}

absl::Status DecodeJournalTrace(absl::string_view head, absl::string_view trace,
                                absl::string_view only_trace, std::vector<TraceSpans>* out) {
  std::vector<SpanOriginPtr> origins;
  TK_RETURN_IF_ERROR(DecodeOrigins(&head, &origins));
  if (!head.empty()) return Corrupt("origins");
  TK_RETURN_IF_ERROR(DecodeTraces(&trace, 1, origins, only_trace, nullptr, nullptr, out));
  if (!trace.empty()) return Corrupt("trace part");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// File format. A segment is a file "segment-<number, 16 decimal digits>.tkj" in the journal's
// directory: the 8-byte magic "TKJRNL02", then records. A record is a 25-byte header and a
// payload:
//   payload length (4, little-endian) · CRC-32C (4, little-endian; over the 17 bytes from the
//   type on and the payload, XOR SegmentMix(segment number)) · type (1) · key (16: arrival,
//   sequence; see Key()).
// Types: 1 = entry (payload: EncodeJournalRecord's bytes), 2 = erase (payload: the 16-byte key
// of the erased entry), 3 = truncate (no payload; every entry that arrived before the key's
// time and has a smaller sequence number is truncated).
// Segments are only ever appended to by the process that created them (a restart starts a new
// one), and are deleted oldest first, so an erase or truncate record is never deleted before
// the entries it refers to. The latest truncate record is repeated at the start of every new
// segment.
// A segment whose entries are all truncated may be renamed "free-<its number>.tkj" and later
// renamed into a new segment and overwritten from its start: past the new records the file still
// holds its earlier records, whose checksums were mixed with another segment number, so they fail
// the check and end the segment as a torn write does (new segments are numbered above every
// segment and free file in the directory). Segments of tracekeep 0.2 and earlier
// ("TKJRNL01") have unmixed checksums and are read as before.
// ---------------------------------------------------------------------------------------------

namespace {

constexpr char kMagic[8] = {'T', 'K', 'J', 'R', 'N', 'L', '0', '2'};
constexpr char kMagicUnmixed[8] = {'T', 'K', 'J', 'R', 'N', 'L', '0', '1'};
constexpr size_t kHeaderBytes = kRecordHeaderBytes;
constexpr uint8_t kEntry = 1;
constexpr uint8_t kErase = 2;
constexpr uint8_t kTruncate = 3;
// A record longer than this is a corrupt length, not a request (gRPC's limit is far below).
constexpr uint32_t kMaxPayload = 1u << 30;

void PutFixed32LE(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t GetFixed32LE(const char* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

// CRC-32C (Castagnoli): the SSE 4.2 instruction where the CPU has it (several GB/s), else a
// table (a few hundred MB/s); both give the same values, so a journal moves between machines.
uint32_t Crc32cSoftware(uint32_t crc, const char* data, size_t n) {
  static const auto* const kTable = [] {
    auto* table = new std::array<uint32_t, 256>;
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      (*table)[i] = c;
    }
    return table;
  }();
  for (size_t i = 0; i < n; ++i) {
    crc = (*kTable)[(crc ^ static_cast<uint8_t>(data[i])) & 0xff] ^ (crc >> 8);
  }
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(uint32_t crc, const char* data,
                                                          size_t n) {
  uint64_t c = crc;
  for (; n >= 8; n -= 8, data += 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; n > 0; --n, ++data) c32 = __builtin_ia32_crc32qi(c32, static_cast<uint8_t>(*data));
  return c32;
}
#endif

uint32_t Checksum(const char* data, size_t n) {
#if defined(__x86_64__)
  static const bool kHardware = __builtin_cpu_supports("sse4.2");
  if (kHardware) return ~Crc32cHardware(~0u, data, n);
#endif
  return ~Crc32cSoftware(~0u, data, n);
}

}  // namespace

uint32_t JournalChecksum(absl::string_view data) { return Checksum(data.data(), data.size()); }

namespace {

// Starts a record of `type` and `key` in `out` (cleared); the payload is appended after it and
// SealRecord() fills in length and checksum.
void BeginRecord(uint8_t type, absl::string_view key, std::string* out) {
  out->assign(8, '\0');
  out->push_back(static_cast<char>(type));
  out->append(key.data(), key.size());
}

void SealRecord(std::string* record) {
  PutFixed32LE(static_cast<uint32_t>(record->size() - kHeaderBytes), &(*record)[0]);
  PutFixed32LE(Checksum(record->data() + 8, record->size() - 8), &(*record)[4]);
}

// What a record's checksum is XORed with in segment `number`: records left in a reused file by
// its earlier life do not check as records of its new life.
uint32_t SegmentMix(uint64_t number) {
  uint64_t z = number + 0x9e3779b97f4a7c15ull;  // splitmix64's finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return static_cast<uint32_t>(z ^ (z >> 31));
}

std::string SegmentName(uint64_t number) { return absl::StrFormat("segment-%016d.tkj", number); }
std::string FreeName(uint64_t number) { return absl::StrFormat("free-%016d.tkj", number); }

bool ParseNumberedName(absl::string_view name, absl::string_view prefix, uint64_t* number) {
  if (name.size() != prefix.size() + 20 || !absl::StartsWith(name, prefix) ||
      !absl::EndsWith(name, ".tkj")) {
    return false;
  }
  uint64_t n = 0;
  for (char c : name.substr(prefix.size(), 16)) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *number = n;
  return true;
}

bool ParseSegmentName(absl::string_view name, uint64_t* number) {
  return ParseNumberedName(name, "segment-", number);
}

std::string ErrnoMessage(int err) { return std::strerror(err); }

// kResourceExhausted for a full disk or quota (the caller refuses with a retryable status),
// kUnavailable otherwise.
absl::Status IoError(int err, absl::string_view what) {
  const std::string message = absl::StrCat(what, ": ", ErrnoMessage(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::UnavailableError(message);
}

bool WriteAll(int fd, const char* data, size_t n, int* err) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, uint64_t offset, size_t n, char* out) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    out += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

constexpr int64_t kNoArrival = std::numeric_limits<int64_t>::min();

// One segment file. The descriptor is closed when the last reference goes (a group-commit
// fdatasync may still hold a segment that was just rolled).
struct Segment {
  uint64_t number = 0;
  std::string path;
  int fd = -1;
  uint64_t size = 0;                 // bytes of whole records (and the magic)
  uint64_t entries = 0;              // entry records
  int64_t max_arrival = kNoArrival;  // newest entry's arrival, unix nanos
  uint32_t mix = 0;                  // XORed into checksums (0: a "TKJRNL01" segment)
  bool uncached = false;             // dropped from the page cache (DropCacheBefore); mu
  ~Segment() {
    if (fd >= 0) ::close(fd);
  }
};
using SegmentPtr = std::shared_ptr<Segment>;

}  // namespace

struct Journal::Impl {
  JournalOptions options;
  std::atomic<uint64_t> sequence{0};
  std::atomic<bool> writable{true};
  std::atomic<uint64_t> write_failures{0};

  std::mutex mu;                  // guards the fields below
  std::deque<SegmentPtr> sealed;  // oldest first
  SegmentPtr active;              // null until the first write of this process
  uint64_t next_number = 1;
  // The latest truncation: entries that arrived before `truncated_before` (unix nanos) and were
  // numbered before `truncated_sequence` are gone. The sequence bound keeps a clock stepped back
  // across a restart from hiding entries written after the truncation.
  int64_t truncated_before = kNoArrival;
  uint64_t truncated_sequence = 0;
  absl::flat_hash_set<std::string> erased;
  // Files of truncated segments kept for reuse (JournalOptions::recycle_segments): path and size.
  // Named by the number the segment had: new segments are numbered above, so that no record a
  // reused file still holds checks as one of its new segment.
  std::vector<std::pair<std::string, uint64_t>> free_files;
  JournalStats* stats = nullptr;  // set once the Journal exists

  // Rewrites the entries of a RocksDB journal (tracekeep 0.1) in `options.path` as records of a
  // new segment, then removes every file of the directory that is not a segment.
  absl::Status ConvertRocksDb();

  // Group commit of fdatasync (sync mode): the highest (segment, offset) known durable.
  std::mutex sync_mu;
  std::pair<uint64_t, uint64_t> synced{0, 0};

  std::string Describe() const { return absl::StrCat("journal at \"", options.path, "\""); }

  // The segment numbered `number` while it is in the journal; null once deleted.
  SegmentPtr Find(uint64_t number) {
    std::lock_guard<std::mutex> lock(mu);
    if (active != nullptr && active->number == number) return active;
    auto it =
        std::lower_bound(sealed.begin(), sealed.end(), number,
                         [](const SegmentPtr& segment, uint64_t n) { return segment->number < n; });
    if (it != sealed.end() && (*it)->number == number) return *it;
    return nullptr;
  }

  // Opens a new active segment (sealing the current one); mu held.
  absl::Status RollLocked() {
    auto segment = std::make_shared<Segment>();
    segment->number = next_number;
    segment->path = absl::StrCat(options.path, "/", SegmentName(segment->number));
    segment->mix = SegmentMix(segment->number);
    // A free file is renamed into the new segment and overwritten from its start.
    while (segment->fd < 0 && !free_files.empty()) {
      const std::string free_path = std::move(free_files.back().first);
      free_files.pop_back();
      if (::rename(free_path.c_str(), segment->path.c_str()) != 0) {
        TK_LOG(Warning) << Describe() << ": cannot reuse " << free_path << ": "
                        << ErrnoMessage(errno);
        ::unlink(free_path.c_str());
        continue;
      }
      // Read and write: released span bytes are read back from it (ReadSpanBytes).
      segment->fd = ::open(segment->path.c_str(), O_RDWR | O_CLOEXEC);
      if (segment->fd < 0) {
        TK_LOG(Warning) << Describe() << ": cannot reuse " << free_path << ": "
                        << ErrnoMessage(errno);
        ::unlink(segment->path.c_str());
      } else if (stats != nullptr) {
        stats->segments_recycled.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (segment->fd < 0) {
      segment->fd = ::open(segment->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    }
    if (segment->fd < 0) {
      return IoError(errno, absl::StrCat(Describe(), ": creating ", segment->path));
    }
    int err = 0;
    if (!WriteAll(segment->fd, kMagic, sizeof(kMagic), &err)) {
      ::unlink(segment->path.c_str());
      return IoError(err, absl::StrCat(Describe(), ": writing ", segment->path));
    }
    segment->size = sizeof(kMagic);
    if (options.sync) {
      if (active != nullptr && ::fdatasync(active->fd) != 0) {
        const int e = errno;
        ::unlink(segment->path.c_str());
        return IoError(e, absl::StrCat(Describe(), ": syncing ", active->path));
      }
      const int dir = ::open(options.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
      }
    }
    ++next_number;
    if (active != nullptr) sealed.push_back(std::move(active));
    active = std::move(segment);
    if (truncated_before != kNoArrival) {
      // The latest truncation travels with the newest segment (older ones may be deleted).
      std::string record;
      BeginRecord(kTruncate, Key(absl::FromUnixNanos(truncated_before), truncated_sequence),
                  &record);
      SealRecord(&record);
      TK_RETURN_IF_ERROR(WriteLocked(&record, kTruncate, kNoArrival));
    }
    return absl::OkStatus();
  }

  // Keeps the files of `doomed` segments nobody else holds for reuse, up to
  // recycle_segments; returns the others, to be deleted. mu held.
  std::vector<SegmentPtr> KeepFreeLocked(std::vector<SegmentPtr> doomed) {
    std::vector<SegmentPtr> rest;
    for (SegmentPtr& segment : doomed) {
      // A reader (ReadSpanBytes) or a group-commit sync still using it keeps it as it is.
      if (static_cast<int>(free_files.size()) < options.recycle_segments &&
          segment.use_count() == 1) {
        const std::string free_path = absl::StrCat(options.path, "/", FreeName(segment->number));
        struct stat st;
        if (::fstat(segment->fd, &st) == 0 &&
            ::rename(segment->path.c_str(), free_path.c_str()) == 0) {
          free_files.emplace_back(free_path, static_cast<uint64_t>(st.st_size));
          continue;
        }
      }
      rest.push_back(std::move(segment));
    }
    return rest;
  }

  // Writes one sealed record at the end of the active segment, its checksum mixed with the
  // segment's number; mu held. On failure nothing of it stays: the file is cut back (or, if that
  // fails too, abandoned for a new segment).
  absl::Status WriteLocked(std::string* sealed, uint8_t type, int64_t arrival) {
    if (active == nullptr || active->size >= options.segment_bytes) {
      TK_RETURN_IF_ERROR(RollLocked());
    }
    const std::string& record = *sealed;
    PutFixed32LE(GetFixed32LE(&record[4]) ^ active->mix, &(*sealed)[4]);
    int err = 0;
    if (!WriteAll(active->fd, record.data(), record.size(), &err)) {
      if (::ftruncate(active->fd, static_cast<off_t>(active->size)) != 0 ||
          ::lseek(active->fd, static_cast<off_t>(active->size), SEEK_SET) < 0) {
        active->size = options.segment_bytes;  // the next write starts a new segment
      }
      return IoError(
          err, absl::StrCat(Describe(), ": writing ", record.size(), " bytes to ", active->path));
    }
    active->size += record.size();
    if (type == kEntry) {
      ++active->entries;
      active->max_arrival = std::max(active->max_arrival, arrival);
    }
    return absl::OkStatus();
  }

  // Appends one record; with `sync`, returns once it is on stable storage.
  absl::Status Write(std::string* record, uint8_t type, int64_t arrival,
                     JournalRef* where = nullptr) {
    std::pair<uint64_t, uint64_t> position;
    {
      std::lock_guard<std::mutex> lock(mu);
      absl::Status s = WriteLocked(record, type, arrival);
      if (!s.ok()) {
        writable.store(false, std::memory_order_relaxed);
        write_failures.fetch_add(1, std::memory_order_relaxed);
        return s;
      }
      position = {active->number, active->size};
      if (where != nullptr) {
        *where = JournalRef{active->number, active->size - record->size(),
                            static_cast<uint32_t>(record->size())};
      }
    }
    writable.store(true, std::memory_order_relaxed);
    if (!options.sync) return absl::OkStatus();
    return SyncThrough(position);
  }

  // Group commit: one fdatasync covers every record written before it started.
  absl::Status SyncThrough(std::pair<uint64_t, uint64_t> position) {
    std::lock_guard<std::mutex> sync_lock(sync_mu);
    if (synced >= position) return absl::OkStatus();
    SegmentPtr segment;
    std::pair<uint64_t, uint64_t> target;
    {
      std::lock_guard<std::mutex> lock(mu);
      // A rolled segment was synced when it was sealed.
      if (position.first < active->number) return absl::OkStatus();
      segment = active;
      target = {active->number, active->size};
    }
    if (::fdatasync(segment->fd) != 0) {
      return IoError(errno, absl::StrCat(Describe(), ": syncing ", segment->path));
    }
    synced = target;
    return absl::OkStatus();
  }
};

namespace {

// What a scan of one segment's record headers found.
struct ScannedSegment {
  SegmentPtr segment;
  uint64_t max_sequence = 0;
  bool any = false;
};

// Reads the headers of every record of a segment (and the payloads of erase and truncate
// records), stopping at the first record that is incomplete or fails its checksum.
absl::Status ScanSegment(const std::string& path, uint64_t number,
                         absl::flat_hash_set<std::string>* erased, int64_t* truncated_before,
                         uint64_t* truncated_sequence, ScannedSegment* out) {
  auto segment = std::make_shared<Segment>();
  segment->number = number;
  segment->path = path;
  segment->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (segment->fd < 0) return IoError(errno, absl::StrCat("journal: opening ", path));
  struct stat st;
  if (::fstat(segment->fd, &st) != 0) return IoError(errno, absl::StrCat("journal: ", path));
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  char magic[sizeof(kMagic)];
  const bool has_magic =
      file_size >= sizeof(kMagic) && ReadAll(segment->fd, 0, sizeof(magic), magic);
  if (has_magic && std::memcmp(magic, kMagic, sizeof(kMagic)) == 0) {
    segment->mix = SegmentMix(number);
  } else if (!has_magic || std::memcmp(magic, kMagicUnmixed, sizeof(kMagic)) != 0) {
    if (file_size == 0) {  // created by a crash before its magic was written
      segment->size = 0;
      out->segment = std::move(segment);
      return absl::OkStatus();
    }
    return absl::DataLossError(
        absl::StrCat("journal: ", path, " is not a tracekeep journal segment (bad magic)"));
  }
  uint64_t offset = sizeof(kMagic);
  char header[kHeaderBytes];
  std::string small;
  while (offset + kHeaderBytes <= file_size) {
    if (!ReadAll(segment->fd, offset, kHeaderBytes, header)) break;
    const uint32_t length = GetFixed32LE(header);
    const uint8_t type = static_cast<uint8_t>(header[8]);
    if (length > kMaxPayload || offset + kHeaderBytes + length > file_size ||
        (type != kEntry && type != kErase && type != kTruncate)) {
      break;
    }
    const absl::string_view key(header + 9, 16);
    if (type != kEntry) {
      small.assign(header + 8, kHeaderBytes - 8);
      small.resize(kHeaderBytes - 8 + length);
      if (!ReadAll(segment->fd, offset + kHeaderBytes, length, &small[kHeaderBytes - 8]) ||
          (Checksum(small.data(), small.size()) ^ segment->mix) != GetFixed32LE(header + 4)) {
        break;
      }
      if (type == kErase && length == 16) {
        erased->insert(small.substr(kHeaderBytes - 8));
      } else if (type == kTruncate) {
        // The latest one in log order wins (segments are scanned oldest first).
        *truncated_before = absl::ToUnixNanos(KeyTime(key));
        *truncated_sequence = GetFixed64BE(key.substr(8));
      }
    } else {
      ++segment->entries;
      segment->max_arrival = std::max(segment->max_arrival, absl::ToUnixNanos(KeyTime(key)));
    }
    out->max_sequence = std::max(out->max_sequence, GetFixed64BE(key.substr(8)));
    out->any = true;
    offset += kHeaderBytes + length;
  }
  if (offset != file_size) {
    TK_LOG(Warning) << "journal: " << path << ": " << (file_size - offset)
                    << " bytes after the last complete record (a write cut short by a crash, or "
                       "what a reused file held before) are ignored";
  }
  segment->size = offset;
  out->segment = std::move(segment);
  return absl::OkStatus();
}

}  // namespace

// A journal written by tracekeep 0.1 is a RocksDB database: its entries are rewritten as
// records of a new segment (same keys, same record bytes), then its files are removed.
absl::Status Journal::Impl::ConvertRocksDb() {
  Impl* impl = this;
  const std::string& path = impl->options.path;
  rocksdb::Options db_options;
  db_options.info_log = NewRocksDbLogger(impl->Describe());
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, path, &raw);
  if (!s.ok()) {
    return FromRocksDbStatus(
        s, absl::StrCat("journal: opening the RocksDB journal of tracekeep 0.1 at \"", path, "\""));
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  uint64_t converted = 0;
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    std::string record;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 16) continue;
      const absl::string_view key(it->key().data(), 16);
      BeginRecord(kEntry, key, &record);
      record.append(it->value().data(), it->value().size());
      SealRecord(&record);
      TK_RETURN_IF_ERROR(impl->WriteLocked(&record, kEntry, absl::ToUnixNanos(KeyTime(key))));
      impl->sequence = std::max<uint64_t>(impl->sequence, GetFixed64BE(key.substr(8)) + 1);
      ++converted;
    }
    TK_RETURN_IF_ERROR(FromRocksDbStatus(it->status(), "journal: reading the RocksDB journal"));
    if (impl->active != nullptr && ::fdatasync(impl->active->fd) != 0) {
      return IoError(errno, absl::StrCat(impl->Describe(), ": syncing ", impl->active->path));
    }
  }
  db.reset();
  // Every file of the database goes, including those its opening just created.
  std::vector<std::string> names;
  if (DIR* dir = ::opendir(path.c_str())) {
    while (struct dirent* e = ::readdir(dir)) names.emplace_back(e->d_name);
    ::closedir(dir);
  }
  for (const std::string& name : names) {
    uint64_t number = 0;
    if (name == "." || name == ".." || ParseSegmentName(name, &number) ||
        ParseNumberedName(name, "free-", &number)) {
      continue;
    }
    std::remove(absl::StrCat(path, "/", name).c_str());
  }
  TK_LOG(Info) << impl->Describe() << ": converted " << converted
               << " entries from the RocksDB journal of tracekeep 0.1";
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const JournalOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("journal: path must be set");
  if (options.segment_bytes == 0) {
    return absl::InvalidArgumentError("journal: segment_bytes must be positive");
  }
  if (options.recycle_segments < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "journal: recycle_segments must be 0 or more, got ", options.recycle_segments));
  }
  if (::mkdir(options.path.c_str(), 0755) != 0 && errno != EEXIST) {
    return IoError(errno, absl::StrCat("journal: creating directory \"", options.path, "\""));
  }
  DIR* dir = ::opendir(options.path.c_str());
  if (dir == nullptr) {
    return IoError(errno, absl::StrCat("journal: opening directory \"", options.path, "\""));
  }
  std::vector<uint64_t> numbers;
  std::vector<uint64_t> free_numbers;
  bool rocksdb_journal = false;
  while (struct dirent* e = ::readdir(dir)) {
    const absl::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    uint64_t number = 0;
    if (ParseSegmentName(name, &number)) {
      numbers.push_back(number);
    } else if (ParseNumberedName(name, "free-", &number)) {
      free_numbers.push_back(number);
    } else if (name == "CURRENT") {
      rocksdb_journal = true;
    }
  }
  ::closedir(dir);
  std::sort(numbers.begin(), numbers.end());

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  // Free files of the last run are reused (as many as recycle_segments), the rest deleted.
  std::sort(free_numbers.begin(), free_numbers.end());
  for (uint64_t number : free_numbers) {
    const std::string free_path = absl::StrCat(options.path, "/", FreeName(number));
    struct stat st;
    if (static_cast<int>(impl->free_files.size()) < options.recycle_segments &&
        ::stat(free_path.c_str(), &st) == 0) {
      impl->free_files.emplace_back(free_path, static_cast<uint64_t>(st.st_size));
    } else {
      ::unlink(free_path.c_str());
    }
    impl->next_number = number + 1;
  }
  uint64_t max_sequence = 0;
  bool any = false;
  for (uint64_t number : numbers) {
    ScannedSegment scanned;
    TK_RETURN_IF_ERROR(ScanSegment(absl::StrCat(options.path, "/", SegmentName(number)), number,
                                   &impl->erased, &impl->truncated_before,
                                   &impl->truncated_sequence, &scanned));
    impl->sealed.push_back(std::move(scanned.segment));
    if (scanned.any) max_sequence = std::max(max_sequence, scanned.max_sequence);
    any = any || scanned.any;
    impl->next_number = std::max(impl->next_number, number + 1);
  }
  // Continue sequence numbers after the largest one on disk, so that replayed and new entries
  // with the same arrival time stay distinct.
  if (any) impl->sequence = max_sequence + 1;
  if (rocksdb_journal) TK_RETURN_IF_ERROR(impl->ConvertRocksDb());
  return std::unique_ptr<Journal>(new Journal(std::move(impl)));
}

Journal::Journal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { impl_->stats = &stats_; }
Journal::~Journal() = default;

absl::StatusOr<std::string> Journal::Append(const std::vector<TraceSpans>& traces,
                                            absl::Time arrival, JournalRef* where) {
  return AppendRecord(traces, arrival, where, nullptr);
}

absl::StatusOr<std::string> Journal::AppendAndLocate(std::vector<TraceSpans>* traces,
                                                     absl::Time arrival) {
  std::vector<uint64_t> offsets;
  std::vector<uint32_t> trace_offsets;
  uint32_t origins_end = 0;
  JournalRef where;
  absl::StatusOr<std::string> key =
      AppendRecord(*traces, arrival, &where, &offsets, &trace_offsets, &origins_end);
  if (!key.ok()) return key;
  size_t i = 0;
  for (size_t k = 0; k < traces->size(); ++k) {
    TraceSpans& t = (*traces)[k];
    t.journal_ref = where;
    t.journal_ref.origins_end = origins_end;
    t.journal_ref.trace_offset = trace_offsets[k];
    t.journal_ref.trace_size =
        (k + 1 < trace_offsets.size() ? trace_offsets[k + 1] : where.size) - trace_offsets[k];
    for (SpanRecord& span : t.spans) {
      span.journal_segment = where.segment;
      span.journal_offset = where.offset + offsets[i++];
      span.journal_size = static_cast<uint32_t>(span.span.size());
    }
  }
  return key;
}

absl::StatusOr<std::string> Journal::AppendRecord(const std::vector<TraceSpans>& traces,
                                                  absl::Time arrival, JournalRef* where,
                                                  std::vector<uint64_t>* span_offsets,
                                                  std::vector<uint32_t>* trace_offsets,
                                                  uint32_t* origins_end) {
  const std::string key = Key(arrival, impl_->sequence.fetch_add(1));
  std::string record;
  BeginRecord(kEntry, key, &record);
  EncodeJournalRecord(traces, &record, span_offsets, trace_offsets, origins_end);
  SealRecord(&record);
  if (absl::Status s = impl_->Write(&record, kEntry, absl::ToUnixNanos(arrival), where); !s.ok()) {
    stats_.append_errors.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  stats_.batches_appended.fetch_add(1, std::memory_order_relaxed);
  stats_.bytes_appended.fetch_add(record.size(), std::memory_order_relaxed);
  return key;
}

absl::Status Journal::ReadSpanBytes(std::vector<SpanRecord>* spans) {
  std::vector<SpanRecord*> todo;
  for (SpanRecord& s : *spans) {
    if (s.in_journal_only) todo.push_back(&s);
  }
  if (todo.empty()) return absl::OkStatus();
  std::sort(todo.begin(), todo.end(), [](const SpanRecord* a, const SpanRecord* b) {
    return std::tie(a->journal_segment, a->journal_offset) <
           std::tie(b->journal_segment, b->journal_offset);
  });
  // Spans that lie close together in one segment (the spans of a trace in one request are
  // separated by a few bytes of framing) are read with one pread.
  constexpr uint64_t kMaxGap = 4096;
  absl::Status status;
  SegmentPtr segment;
  std::string buffer;
  uint64_t bytes_read = 0;
  for (size_t i = 0; i < todo.size();) {
    const SpanRecord& first = *todo[i];
    uint64_t end = first.journal_offset + first.journal_size;
    size_t j = i + 1;
    while (j < todo.size() && todo[j]->journal_segment == first.journal_segment &&
           todo[j]->journal_offset <= end + kMaxGap) {
      end = std::max(end, todo[j]->journal_offset + todo[j]->journal_size);
      ++j;
    }
    if (segment == nullptr || segment->number != first.journal_segment) {
      segment = impl_->Find(first.journal_segment);
    }
    buffer.resize(end - first.journal_offset);
    if (segment == nullptr) {
      status = absl::NotFoundError(
          absl::StrCat(impl_->Describe(), ": segment ", first.journal_segment, " is gone"));
    } else if (!ReadAll(segment->fd, first.journal_offset, buffer.size(), buffer.data())) {
      status = absl::DataLossError(absl::StrCat(impl_->Describe(), ": cannot read ", buffer.size(),
                                                " bytes at offset ", first.journal_offset, " of ",
                                                segment->path));
    } else {
      for (size_t k = i; k < j; ++k) {
        SpanRecord& s = *todo[k];
        s.span.assign(buffer.data() + (s.journal_offset - first.journal_offset), s.journal_size);
        s.in_journal_only = false;
      }
      bytes_read += buffer.size();
    }
    i = j;
  }
  stats_.span_bytes_read_back.fetch_add(bytes_read, std::memory_order_relaxed);
  if (!status.ok()) stats_.read_back_errors.fetch_add(1, std::memory_order_relaxed);
  return status;
}

absl::Status Journal::ReadTraceSpans(const std::vector<JournalRef>& refs,
                                     absl::string_view trace_id, std::vector<SpanRecord>* out) {
  std::vector<SpanRecord> read;
  uint64_t bytes = 0;
  for (const JournalRef& ref : refs) {
    absl::StatusOr<std::vector<TraceSpans>> traces = ReadAt(ref, trace_id);
    if (!traces.ok()) {
      stats_.read_back_errors.fetch_add(1, std::memory_order_relaxed);
      return traces.status();
    }
    for (TraceSpans& t : *traces) {
      if (t.trace_id != trace_id) continue;
      for (SpanRecord& r : t.spans) {
        bytes += r.span.size();
        read.push_back(std::move(r));
      }
    }
  }
  stats_.span_bytes_read_back.fetch_add(bytes, std::memory_order_relaxed);
  if (out->empty()) {
    *out = std::move(read);
  } else {
    out->insert(out->end(), std::make_move_iterator(read.begin()),
                std::make_move_iterator(read.end()));
  }
  return absl::OkStatus();
}

absl::Status Journal::Erase(const std::string& key) {
  std::string record;
  BeginRecord(kErase, key, &record);
  record.append(key);
  SealRecord(&record);
  TK_RETURN_IF_ERROR(impl_->Write(&record, kErase, kNoArrival));
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->erased.insert(key);
  return absl::OkStatus();
}

absl::Status Journal::TruncateBefore(absl::Time time) {
  const int64_t before = absl::ToUnixNanos(time);
  std::vector<SegmentPtr> doomed;
  absl::Status written;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    const uint64_t sequence = impl_->sequence.load();
    if (before == impl_->truncated_before && sequence == impl_->truncated_sequence) {
      return absl::OkStatus();  // nothing new since the last call
    }
    impl_->truncated_before = before;
    impl_->truncated_sequence = sequence;
    while (!impl_->sealed.empty() && impl_->sealed.front()->max_arrival < before) {
      doomed.push_back(std::move(impl_->sealed.front()));
      impl_->sealed.pop_front();
    }
    Impl& j = *impl_;
    const bool active_done =
        j.active != nullptr && j.active->entries > 0 && j.active->max_arrival < before;
    if (j.sealed.empty() && active_done) {
      // Everything is decided: start a new segment (it gets the truncate record) and delete the
      // old one.
      SegmentPtr old = j.active;
      written = j.RollLocked();
      if (written.ok()) {
        j.sealed.pop_back();  // `old`, sealed by the roll
        doomed.push_back(std::move(old));
      }
    } else if (!j.sealed.empty() || (j.active != nullptr && j.active->entries > 0)) {
      // Entries remain on disk: record how far they are truncated, for replays.
      std::string record;
      BeginRecord(kTruncate, Key(time, sequence), &record);
      SealRecord(&record);
      written = j.WriteLocked(&record, kTruncate, kNoArrival);
    }
    if (doomed.size() > 0 && j.sealed.empty() && (j.active == nullptr || j.active->entries == 0)) {
      j.erased.clear();  // every entry they could refer to is gone
    }
    doomed = j.KeepFreeLocked(std::move(doomed));
  }
  for (const SegmentPtr& segment : doomed) {
    if (::unlink(segment->path.c_str()) != 0 && errno != ENOENT) {
      TK_LOG(Warning) << "journal: cannot delete " << segment->path << ": " << ErrnoMessage(errno);
    }
  }
  if (!written.ok()) {
    impl_->writable.store(false, std::memory_order_relaxed);
    impl_->write_failures.fetch_add(1, std::memory_order_relaxed);
    return written;
  }
  stats_.truncations.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

int Journal::DropCacheBefore(absl::Time time) {
  if (!impl_->options.drop_cache) return 0;
  const int64_t before = absl::ToUnixNanos(time);
  std::vector<SegmentPtr> due;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const SegmentPtr& segment : impl_->sealed) {
      if (segment->max_arrival >= before) break;
      if (!segment->uncached) {
        segment->uncached = true;
        due.push_back(segment);
      }
    }
  }
  // Pages still dirty are not dropped: write them back first (the segment is closed, nothing
  // writes into it any more).
  int dropped = 0;
  for (const SegmentPtr& segment : due) {
    int err = 0;
    if (::sync_file_range(segment->fd, 0, 0,
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                              SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
      err = errno;
    } else {
      err = ::posix_fadvise(segment->fd, 0, 0, POSIX_FADV_DONTNEED);  // returns the error
    }
    if (err != 0) {
      // Once: a file system that cannot do it fails for every segment alike.
      static std::atomic<bool> warned{false};
      if (!warned.exchange(true)) {
        TK_LOG(Warning) << impl_->Describe() << ": cannot drop " << segment->path
                        << " from the page cache (not logged again): " << ErrnoMessage(err);
      }
    } else {
      ++dropped;
    }
  }
  stats_.segments_uncached.fetch_add(dropped, std::memory_order_relaxed);
  return dropped;
}

absl::Status Journal::Replay(
    const std::function<absl::Status(std::vector<TraceSpans>&&, absl::Time)>& fn) {
  return ReplayWithRefs([&](std::vector<TraceSpans>&& traces, absl::Time arrival,
                            const JournalRef&) { return fn(std::move(traces), arrival); });
}

absl::StatusOr<std::vector<TraceSpans>> Journal::ReadAt(const JournalRef& where,
                                                        absl::string_view only_trace) {
  if (where.size < kHeaderBytes) {
    return absl::InvalidArgumentError("journal: not a journal record reference");
  }
  // For error messages only: a read that succeeds formats nothing.
  const auto path = [&] {
    return absl::StrCat(impl_->options.path, "/", SegmentName(where.segment));
  };
  const SegmentPtr segment = impl_->Find(where.segment);
  if (segment == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("journal: record in ", path(), ": the segment is gone"));
  }
  if (!only_trace.empty() && where.trace_size != 0 && where.origins_end > kHeaderBytes &&
      where.trace_offset >= where.origins_end &&
      uint64_t{where.trace_offset} + where.trace_size <= where.size) {
    // The header, resources and scopes, and the trace's part; one read when they are close.
    constexpr uint32_t kMaxGap = 16 << 10;
    std::string head(where.origins_end, '\0');
    std::string part;
    bool read;
    if (where.trace_offset - where.origins_end <= kMaxGap) {
      head.resize(where.trace_offset + where.trace_size);
      read = ReadAll(segment->fd, where.offset, head.size(), head.data());
    } else {
      part.resize(where.trace_size);
      read = ReadAll(segment->fd, where.offset, head.size(), head.data()) &&
             ReadAll(segment->fd, where.offset + where.trace_offset, part.size(), part.data());
    }
    const absl::string_view all(head);
    const absl::string_view trace =
        part.empty() ? all.substr(where.trace_offset, where.trace_size) : absl::string_view(part);
    if (!read || GetFixed32LE(all.data()) + kHeaderBytes != where.size ||
        static_cast<uint8_t>(all[8]) != kEntry) {
      return absl::DataLossError(
          absl::StrCat("journal: no intact entry at offset ", where.offset, " of ", path()));
    }
    std::vector<TraceSpans> traces;
    TK_RETURN_IF_ERROR(DecodeJournalTrace(
        all.substr(kHeaderBytes, where.origins_end - kHeaderBytes), trace, only_trace, &traces));
    if (traces.empty()) {
      return absl::DataLossError(absl::StrCat("journal: the entry at offset ", where.offset, " of ",
                                              path(), " has no trace ", ToHex(only_trace),
                                              " at offset ", where.trace_offset));
    }
    return traces;
  }
  // The segment's own descriptor (Find() holds it open): no open() and close() per record.
  std::string data(where.size, '\0');
  const bool read = ReadAll(segment->fd, where.offset, where.size, data.data());
  const char* header = data.data();
  if (!read || GetFixed32LE(header) + kHeaderBytes != where.size ||
      (Checksum(header + 8, where.size - 8) ^ segment->mix) != GetFixed32LE(header + 4) ||
      static_cast<uint8_t>(header[8]) != kEntry) {
    return absl::DataLossError(
        absl::StrCat("journal: no intact entry at offset ", where.offset, " of ", path()));
  }
  std::vector<TraceSpans> traces;
  TK_RETURN_IF_ERROR(DecodeJournalRecord(
      absl::string_view(header + kHeaderBytes, where.size - kHeaderBytes), &traces, only_trace));
  return traces;
}

absl::Status Journal::ReplayWithRefs(
    const std::function<absl::Status(std::vector<TraceSpans>&&, absl::Time, const JournalRef&)>&
        fn) {
  std::vector<std::pair<SegmentPtr, uint64_t>> segments;  // with their size now
  int64_t truncated_before;
  uint64_t truncated_sequence;
  absl::flat_hash_set<std::string> erased;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const SegmentPtr& s : impl_->sealed) segments.emplace_back(s, s->size);
    if (impl_->active != nullptr) segments.emplace_back(impl_->active, impl_->active->size);
    truncated_before = impl_->truncated_before;
    truncated_sequence = impl_->truncated_sequence;
    erased = impl_->erased;
  }
  std::string data;
  for (const auto& [segment, size] : segments) {
    if (size <= sizeof(kMagic)) continue;
    // Read through a descriptor of its own: one sequential read of the whole file.
    const int fd = ::open(segment->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError(errno, absl::StrCat("journal: opening ", segment->path));
    data.resize(size);
    const bool read = ReadAll(fd, 0, size, data.data());
    ::close(fd);
    if (!read) return absl::DataLossError(absl::StrCat("journal: cannot read ", segment->path));
    size_t offset = sizeof(kMagic);
    while (offset + kHeaderBytes <= data.size()) {
      const char* header = data.data() + offset;
      const uint32_t length = GetFixed32LE(header);
      if (offset + kHeaderBytes + length > data.size() ||
          (Checksum(header + 8, kHeaderBytes - 8 + length) ^ segment->mix) !=
              GetFixed32LE(header + 4)) {
        // The end of a reused file's new records (its earlier ones follow) or a torn write.
        TK_LOG(Warning) << "journal: " << segment->path << ": no intact record at offset " << offset
                        << " (a write cut short by a crash, or what a reused file held before); "
                           "the rest of this segment is skipped";
        break;
      }
      const absl::string_view key(header + 9, 16);
      const absl::Time arrival = KeyTime(key);
      const JournalRef where{segment->number, offset, static_cast<uint32_t>(kHeaderBytes + length)};
      offset += kHeaderBytes + length;
      if (static_cast<uint8_t>(header[8]) != kEntry ||
          (absl::ToUnixNanos(arrival) < truncated_before &&
           GetFixed64BE(key.substr(8)) < truncated_sequence) ||
          erased.contains(key)) {
        continue;
      }
      std::vector<TraceSpans> traces;
      absl::Status decoded = DecodeJournalRecord(absl::string_view(header + kHeaderBytes, length),
                                                 &traces, {}, &where);
      if (!decoded.ok()) {
        TK_LOG(Error) << "journal: skipping a corrupt entry: " << decoded;
        continue;
      }
      stats_.batches_replayed.fetch_add(1, std::memory_order_relaxed);
      TK_RETURN_IF_ERROR(fn(std::move(traces), arrival, where));
    }
  }
  return absl::OkStatus();
}

bool Journal::writable() const { return impl_->writable.load(std::memory_order_relaxed); }
uint64_t Journal::write_refusals() const {
  return impl_->write_failures.load(std::memory_order_relaxed);
}

uint64_t Journal::ApproximateEntries() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  uint64_t n = 0;
  for (const SegmentPtr& s : impl_->sealed) n += s->entries;
  if (impl_->active != nullptr) n += impl_->active->entries;
  return n;
}

uint64_t Journal::ApproximateDiskBytes() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  uint64_t n = 0;
  for (const SegmentPtr& s : impl_->sealed) n += s->size;
  if (impl_->active != nullptr) n += impl_->active->size;
  for (const auto& [path, size] : impl_->free_files) n += size;
  return n;
}

}  // namespace tracekeep::storage
