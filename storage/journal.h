// The intake journal: every batch of spans accepted from a client, written before the client is
// acknowledged, kept until every trace it touched has been decided (and what was kept is stored),
// and replayed on start-up after a crash.
//
// A segmented append-only log in a directory of its own (default <data_dir>/journal): each
// append is one checksummed record written with one write(2) at the end of the active segment
// file; segments roll at `segment_bytes`; truncation writes a small "truncated before" record and
// deletes (or keeps for reuse) whole segments whose entries are all older. No memtable, flush or
// compaction: the bytes of an accepted request are written once and the file is deleted or
// reused once decided. See journal.cc for the file format.
#ifndef TRACEKEEP_STORAGE_JOURNAL_H_
#define TRACEKEEP_STORAGE_JOURNAL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/pipeline/span_batch.h"

namespace tracekeep::storage {

struct JournalOptions {
  // Directory of the journal's segment files; created when missing. Default: "" (must be set).
  std::string path;
  // true: each append returns only after its segment is fdatasync'ed (survives power loss;
  // concurrent appends share one fdatasync: group commit). false: after the write reached the
  // kernel (survives kill -9 of tracekeep, not a crash of the machine). Default: false.
  bool sync = false;
  // A segment is closed and a new one started once it holds this many bytes; the journal's disk
  // use is about (pending span bytes + one segment). Default: 64 MiB.
  uint64_t segment_bytes = 64 << 20;
  // Segments whose entries are all truncated are kept, up to this many, as files to reuse for
  // the next segments instead of being deleted: overwriting a file's cached pages costs the
  // kernel about half of what writing fresh pages does (measured on these machines), and a
  // journal that keeps tens of seconds of intake (held order traces) writes every byte into
  // fresh pages otherwise. They are counted in ApproximateDiskBytes. Zero: delete them.
  // Default: 8.
  int recycle_segments = 8;
  // DropCacheBefore writes back and drops pages (false: it does nothing). A journal that keeps
  // tens of seconds of intake for held order traces otherwise fills the page cache with them,
  // every byte written into a freshly allocated page: on these VMs 0.8-1.3 s of system time per
  // GB, against ~0.35 s to write the pages back and reuse them (a stand-alone C test), and a
  // 20 s unpaced run of whole order lifecycles went from ~630 k to ~760 k spans/s. Default: true.
  bool drop_cache = true;
};

struct JournalStats {
  std::atomic<uint64_t> batches_appended{0};
  std::atomic<uint64_t> bytes_appended{0};
  std::atomic<uint64_t> append_errors{0};
  std::atomic<uint64_t> batches_replayed{0};
  std::atomic<uint64_t> truncations{0};
  std::atomic<uint64_t> span_bytes_read_back{0};  // by ReadSpanBytes
  std::atomic<uint64_t> read_back_errors{0};      // ReadSpanBytes calls that failed
  std::atomic<uint64_t> segments_recycled{0};     // segment files reused instead of created
  std::atomic<uint64_t> segments_uncached{0};     // segments written back and dropped from cache
};

class Journal final : public SpanBytesReader {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Journal>> Open(const JournalOptions& options);
  ~Journal() override;

  // Appends the spans of one accepted request, with the time they arrived. Returns the entry's
  // key (for Erase) once it is durable per `sync`. kResourceExhausted when the disk is full
  // (nothing of the entry stays in the journal), kUnavailable on other IO errors. Thread-safe.
  // `where` (optional) receives the record's place, for ReadAt.
  [[nodiscard]] absl::StatusOr<std::string> Append(const std::vector<TraceSpans>& traces,
                                                   absl::Time arrival, JournalRef* where = nullptr);
  // Append, which also records in every span where its bytes are (journal_segment,
  // journal_offset, journal_size) and in every trace its record (journal_ref), so that they can
  // be released from memory while pending and read back with ReadSpanBytes.
  [[nodiscard]] absl::StatusOr<std::string> AppendAndLocate(std::vector<TraceSpans>* traces,
                                                            absl::Time arrival);
  // SpanBytesReader: reads the bytes of in_journal_only spans back from their segments, those
  // close together with one pread. The segments must not be truncated yet (the caller holds the
  // truncation mark before them). Thread-safe.
  [[nodiscard]] absl::Status ReadSpanBytes(std::vector<SpanRecord>* spans) override;
  // SpanBytesReader: the spans of one trace, by the places of its parts (ReadAt with that
  // trace id, record by record). Thread-safe.
  [[nodiscard]] absl::Status ReadTraceSpans(const std::vector<JournalRef>& refs,
                                            absl::string_view trace_id,
                                            std::vector<SpanRecord>* out) override;
  // Reads back the spans of one entry by its place. The entry must not be truncated yet (the
  // caller holds the truncation mark before it). kNotFound / kDataLoss when it is gone or
  // damaged. Thread-safe.
  // With `only_trace`, only the spans of that trace id are decoded (the others are skipped); when
  // `where` also has the trace's place in the record (AppendAndLocate), only the record's header,
  // resources and scopes and that trace's part are read: a few KB, not the whole request. Such a
  // read checks the record's framing and the trace's id, not the record's checksum (the record
  // was written by this process; records of an earlier run are read whole).
  [[nodiscard]] absl::StatusOr<std::vector<TraceSpans>> ReadAt(const JournalRef& where,
                                                               absl::string_view only_trace = {});
  // Removes one entry (a batch the pipeline refused after all). Thread-safe.
  [[nodiscard]] absl::Status Erase(const std::string& key);
  // Removes every entry that arrived before `time`: replays skip them from now on, and segments
  // holding only such entries are deleted. The caller must not append entries older than `time`
  // afterwards. Thread-safe.
  [[nodiscard]] absl::Status TruncateBefore(absl::Time time);
  // Writes back the closed segments whose entries all arrived before `time` and that stay in
  // the journal (held order traces keep them), then drops their pages from the page cache: what
  // is still read of them (held traces of orders kept, holds copied to order_hold) is rare, and
  // the next segments are written into the freed pages instead of fresh ones, which on a VM
  // cost the kernel two to three times as much (see JournalOptions::drop_cache). Returns the
  // segments dropped (a segment whose drop failed is not tried again, nor counted). Thread-safe;
  // waits for the disk (call it off the write path).
  int DropCacheBefore(absl::Time time);
  // Calls `fn` for every entry not erased or truncated, in the order they were appended, with
  // its spans and arrival time. A record that fails its checksum (a write torn by a crash of the
  // machine) ends the replay of its segment, with an error in the log.
  [[nodiscard]] absl::Status Replay(
      const std::function<absl::Status(std::vector<TraceSpans>&&, absl::Time)>& fn);
  // Replay, with each entry's place.
  [[nodiscard]] absl::Status ReplayWithRefs(
      const std::function<absl::Status(std::vector<TraceSpans>&&, absl::Time, const JournalRef&)>&
          fn);
  // Entries currently in the journal, approximately.
  uint64_t ApproximateEntries();
  uint64_t ApproximateDiskBytes();
  const JournalStats& stats() const { return stats_; }
  // False after a failed write until a write succeeds again.
  bool writable() const;
  uint64_t write_refusals() const;

 private:
  struct Impl;
  explicit Journal(std::unique_ptr<Impl> impl);
  absl::StatusOr<std::string> AppendRecord(const std::vector<TraceSpans>& traces,
                                           absl::Time arrival, JournalRef* where,
                                           std::vector<uint64_t>* span_offsets,
                                           std::vector<uint32_t>* trace_offsets = nullptr,
                                           uint32_t* origins_end = nullptr);
  std::unique_ptr<Impl> impl_;
  JournalStats stats_;
};

// The journal's record encoding of a batch of traces (exposed for tests).
// `span_offsets` (optional) receives, span by span in order, the offset of its bytes in `out`;
// `trace_offsets`, trace by trace, the offset in `out` where its entry starts, and
// `origins_end` the offset where the resources and scopes end (see DecodeJournalTrace).
void EncodeJournalRecord(const std::vector<TraceSpans>& traces, std::string* out,
                         std::vector<uint64_t>* span_offsets = nullptr,
                         std::vector<uint32_t>* trace_offsets = nullptr,
                         uint32_t* origins_end = nullptr);
// With `only_trace`, only the traces with that id are appended to `out`. With `place` (the
// record's place in the journal, `record` being its payload), every span gets its location.
[[nodiscard]] absl::Status DecodeJournalRecord(absl::string_view record,
                                               std::vector<TraceSpans>* out,
                                               absl::string_view only_trace = {},
                                               const JournalRef* place = nullptr);
// Decodes one trace of a record from two of its parts: `head`, the payload up to the end of its
// resources and scopes, and `trace`, the trace's entry (as EncodeJournalRecord placed them).
// Appended to `out` only when its id is `only_trace`.
[[nodiscard]] absl::Status DecodeJournalTrace(absl::string_view head, absl::string_view trace,
                                              absl::string_view only_trace,
                                              std::vector<TraceSpans>* out);
// The checksum of journal records: CRC-32C (exposed for tests).
uint32_t JournalChecksum(absl::string_view data);

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_JOURNAL_H_
