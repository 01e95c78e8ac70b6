#include "storage/journal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "collector/common/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/storage/small_fs.h"

namespace tracekeep::storage {
namespace {

std::string TempPath() {
  char tmpl[] = "/tmp/tracekeep-journal-test-XXXXXX";
  return std::string(mkdtemp(tmpl)) + "/journal";
}

std::vector<TraceSpans> Batch(int first_trace, int traces, int spans) {
  auto origin = std::make_shared<SpanOrigin>();
  origin->resource = "resource-bytes";
  origin->scope = "scope-bytes";
  origin->service_name = "shop-api";
  origin->resource_schema_url = "https://schema/1";
  std::vector<TraceSpans> out;
  for (int t = 0; t < traces; ++t) {
    TraceSpans& ts = out.emplace_back();
    ts.trace_id = std::string(16, static_cast<char>(first_trace + t + 1));
    ts.hash = TraceIdHash(ts.trace_id);
    for (int s = 0; s < spans; ++s) {
      SpanRecord& r = ts.spans.emplace_back();
      r.origin = origin;
      r.span_id = std::string(8, static_cast<char>(s + 1));
      r.span = "span-" + std::to_string(s);
      r.start_unix_nanos = 1000 + s;
      r.end_unix_nanos = -5;  // any int64 survives
      r.is_error = s == 1;
      r.is_root = s == 0;
    }
  }
  return out;
}

// Spans of one request switch between resources and scopes (A, B, A) and may have none: each
// span comes back with its own, and each origin is stored once.
TEST(JournalRecordTest, InterleavedOriginsComeBackWithTheirSpans) {
  std::vector<TraceSpans> in = Batch(0, 2, 4);
  auto other = std::make_shared<SpanOrigin>();
  other->resource = "other-resource";
  other->service_name = "crm-api";
  in[0].spans[1].origin = other;
  in[1].spans[0].origin = other;
  in[1].spans[3].origin = nullptr;
  std::string record;
  EncodeJournalRecord(in, &record);
  std::vector<TraceSpans> out;
  ASSERT_TRUE(DecodeJournalRecord(record, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  std::vector<std::string> services;
  for (const TraceSpans& t : out) {
    for (const SpanRecord& r : t.spans) {
      services.push_back(r.origin == nullptr ? "-" : r.origin->service_name);
    }
  }
  EXPECT_THAT(services, testing::ElementsAre("shop-api", "crm-api", "shop-api", "shop-api",
                                             "crm-api", "shop-api", "shop-api", ""));
  EXPECT_EQ(out[0].spans[0].origin, out[1].spans[2].origin);
  EXPECT_EQ(out[0].spans[1].origin, out[1].spans[0].origin);
  EXPECT_NE(out[0].spans[0].origin, out[0].spans[1].origin);
}

TEST(JournalRecordTest, RoundTripsEveryField) {
  std::vector<TraceSpans> in = Batch(0, 2, 3);
  std::string record;
  EncodeJournalRecord(in, &record);
  std::vector<TraceSpans> out;
  ASSERT_TRUE(DecodeJournalRecord(record, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  for (size_t t = 0; t < 2; ++t) {
    EXPECT_EQ(out[t].trace_id, in[t].trace_id);
    EXPECT_EQ(out[t].hash, in[t].hash);
    ASSERT_EQ(out[t].spans.size(), 3u);
    for (size_t s = 0; s < 3; ++s) {
      const SpanRecord& a = in[t].spans[s];
      const SpanRecord& b = out[t].spans[s];
      EXPECT_EQ(b.span, a.span);
      EXPECT_EQ(b.span_id, a.span_id);
      EXPECT_EQ(b.start_unix_nanos, a.start_unix_nanos);
      EXPECT_EQ(b.end_unix_nanos, a.end_unix_nanos);
      EXPECT_EQ(b.is_error, a.is_error);
      EXPECT_EQ(b.is_root, a.is_root);
      EXPECT_EQ(b.origin->resource, "resource-bytes");
      EXPECT_EQ(b.origin->scope, "scope-bytes");
      EXPECT_EQ(b.origin->service_name, "shop-api");
      EXPECT_EQ(b.origin->resource_schema_url, "https://schema/1");
    }
  }
  EXPECT_EQ(out[0].spans[0].origin, out[1].spans[2].origin);  // shared again
  std::vector<TraceSpans> ignored;
  EXPECT_EQ(DecodeJournalRecord(record.substr(0, record.size() - 3), &ignored).code(),
            absl::StatusCode::kDataLoss);
}

TEST(JournalRecordTest, ChecksumIsCrc32c) {
  // The check values of CRC-32C (RFC 3720, B.4 and the catalogue's "123456789").
  EXPECT_EQ(JournalChecksum("123456789"), 0xE3069283u);
  EXPECT_EQ(JournalChecksum(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(JournalChecksum(std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(JournalChecksum(""), 0u);
}

TEST(JournalTest, ReplaysWhatWasNotTruncatedAcrossAReopen) {
  const std::string path = TempPath();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  {
    auto journal = Journal::Open({path, /*sync=*/true});
    ASSERT_TRUE(journal.ok()) << journal.status();
    ASSERT_TRUE((*journal)->Append(Batch(0, 1, 2), t0).ok());
    ASSERT_TRUE((*journal)->Append(Batch(10, 1, 2), t0 + absl::Seconds(1)).ok());
    auto refused = (*journal)->Append(Batch(20, 1, 2), t0 + absl::Seconds(2));
    ASSERT_TRUE(refused.ok());
    ASSERT_TRUE((*journal)->Erase(*refused).ok());
    ASSERT_TRUE((*journal)->Append(Batch(30, 1, 2), t0 + absl::Seconds(3)).ok());
    ASSERT_TRUE((*journal)->TruncateBefore(t0 + absl::Seconds(1)).ok());
  }
  auto journal = Journal::Open({path, false});
  ASSERT_TRUE(journal.ok());
  std::vector<std::pair<std::string, absl::Time>> seen;
  ASSERT_TRUE((*journal)
                  ->Replay([&](std::vector<TraceSpans>&& traces, absl::Time arrival) {
                    seen.emplace_back(traces[0].trace_id, arrival);
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].first, std::string(16, '\x0b'));
  EXPECT_EQ(seen[0].second, t0 + absl::Seconds(1));
  EXPECT_EQ(seen[1].first, std::string(16, '\x1f'));
  // New appends after a reopen sort after the old ones with the same time.
  ASSERT_TRUE((*journal)->Append(Batch(40, 1, 1), t0 + absl::Seconds(3)).ok());
  int n = 0;
  ASSERT_TRUE((*journal)
                  ->Replay([&](std::vector<TraceSpans>&& traces, absl::Time) {
                    if (++n == 3) EXPECT_EQ(traces[0].trace_id, std::string(16, '\x29'));
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(n, 3);
  EXPECT_EQ((*journal)->stats().batches_replayed.load(), 5u);
}

TEST(JournalTest, OpenFailureNamesThePath) {
  auto journal = Journal::Open({"/proc/no-such-dir/journal", false});
  ASSERT_FALSE(journal.ok());
  EXPECT_NE(journal.status().message().find("/proc/no-such-dir/journal"), std::string::npos);
}

// A full disk: the append that does not fit is refused with kResourceExhausted naming the
// journal and the error, and leaves nothing behind (no torn record); what was journaled before
// stays; once space is freed appends succeed again, and everything replays after a reopen.
TEST(JournalTest, FullDiskRefusesAppendsCleanlyAndRecoversOnceSpaceIsFreed) {
  SmallFs fs;
  if (std::string why = fs.Mount(8); !why.empty()) GTEST_SKIP() << why << " (needs root)";
  JournalOptions options;
  options.path = fs.dir() + "/journal";
  {
    absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok()) << journal.status();
    const absl::Time t0 = absl::FromUnixSeconds(100);
    ASSERT_TRUE((*journal)->Append(Batch(0, 1, 2), t0).ok());
    fs.Fill();

    // A batch of ~256 KiB cannot fit; give the file system's slack a few tries.
    std::vector<TraceSpans> big = Batch(10, 4, 2);
    for (TraceSpans& t : big) t.spans[0].span.assign(64 * 1024, 'b');
    absl::Status failed;
    for (int i = 0; i < 100 && failed.ok(); ++i) failed = (*journal)->Append(big, t0).status();
    ASSERT_EQ(failed.code(), absl::StatusCode::kResourceExhausted) << failed;
    EXPECT_THAT(std::string(failed.message()), ::testing::HasSubstr(options.path));
    EXPECT_THAT(std::string(failed.message()), ::testing::HasSubstr("No space left on device"));
    EXPECT_FALSE((*journal)->writable());
    EXPECT_GE((*journal)->write_refusals(), 1u);
    EXPECT_GE((*journal)->stats().append_errors.load(), 1u);

    fs.Free();
    absl::StatusOr<std::string> resumed = (*journal)->Append(Batch(40, 1, 2), t0);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    EXPECT_TRUE((*journal)->writable());
    ASSERT_TRUE((*journal)->Append(Batch(50, 1, 2), t0).ok());
  }
  // Nothing written before the failure is lost, the refused batch left no record (the replay
  // reads on past where it was cut back), and the appends after it are there.
  absl::StatusOr<std::unique_ptr<Journal>> reopened = Journal::Open(options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  std::vector<std::string> trace_ids;
  ASSERT_TRUE((*reopened)
                  ->Replay([&](std::vector<TraceSpans>&& traces, absl::Time) {
                    for (const TraceSpans& t : traces) trace_ids.push_back(t.trace_id);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_THAT(trace_ids, ::testing::Contains(std::string(16, 1)));
  EXPECT_THAT(trace_ids, ::testing::Contains(std::string(16, 41)));
  EXPECT_THAT(trace_ids, ::testing::Contains(std::string(16, 51)));
}

std::vector<std::string> SegmentFiles(const std::string& path) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(path)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The files of `path` whose names start with `prefix`.
size_t FilesNamed(const std::string& path, const std::string& prefix) {
  size_t n = 0;
  for (const std::string& name : SegmentFiles(path)) n += name.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

std::vector<std::string> ReplayedTraceIds(Journal* journal) {
  std::vector<std::string> ids;
  absl::Status s = journal->Replay([&](std::vector<TraceSpans>&& traces, absl::Time) {
    for (const TraceSpans& t : traces) ids.push_back(t.trace_id);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return ids;
}

// Segments roll at segment_bytes; truncation deletes the oldest segments whose entries are all
// older than the mark, and replays (also after a reopen) skip truncated entries still on disk.
TEST(JournalTest, TruncationDeletesWholeOldSegmentsAndReplaysSkipTruncatedEntries) {
  JournalOptions options;
  options.path = TempPath();
  options.segment_bytes = 1024;  // a few entries per segment
  options.recycle_segments = 0;  // deleted, not kept for reuse
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  {
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok()) << journal.status();
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE((*journal)->Append(Batch(i, 1, 3), t0 + absl::Seconds(i)).ok());
    }
    const size_t segments = SegmentFiles(options.path).size();
    ASSERT_GE(segments, 4u) << "segments roll at segment_bytes";
    EXPECT_EQ((*journal)->ApproximateEntries(), 20u);
    const uint64_t bytes = (*journal)->ApproximateDiskBytes();

    ASSERT_TRUE((*journal)->TruncateBefore(t0 + absl::Seconds(10)).ok());
    EXPECT_LT(SegmentFiles(options.path).size(), segments) << "old segments deleted";
    EXPECT_LT((*journal)->ApproximateDiskBytes(), bytes);
    EXPECT_LE((*journal)->ApproximateEntries(), 14u);
    std::vector<std::string> ids = ReplayedTraceIds(journal->get());
    ASSERT_EQ(ids.size(), 10u);
    EXPECT_EQ(ids.front(), std::string(16, 11)) << "entry 10 (trace 11) is the oldest kept";
  }
  auto journal = Journal::Open(options);
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_EQ(ReplayedTraceIds(journal->get()).size(), 10u) << "the mark survives the reopen";

  // Everything decided: every segment but a fresh one goes.
  ASSERT_TRUE((*journal)->Append(Batch(30, 1, 1), t0 + absl::Seconds(30)).ok());
  ASSERT_TRUE((*journal)->TruncateBefore(t0 + absl::Seconds(31)).ok());
  EXPECT_EQ(SegmentFiles(options.path).size(), 1u);
  EXPECT_EQ((*journal)->ApproximateEntries(), 0u);
  EXPECT_TRUE(ReplayedTraceIds(journal->get()).empty());
}

// Truncated segments are kept as free files (at most recycle_segments, the others deleted) and
// reused by the next segments; what the reused files held before never replays.
TEST(JournalTest, TruncatedSegmentsAreReusedUpToTheLimit) {
  JournalOptions options;
  options.path = TempPath();
  options.segment_bytes = 1024;
  options.recycle_segments = 2;
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  auto journal = Journal::Open(options);
  ASSERT_TRUE(journal.ok()) << journal.status();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE((*journal)->Append(Batch(i, 1, 3), t0 + absl::Seconds(i)).ok());
  }
  const size_t segments = FilesNamed(options.path, "segment-");
  ASSERT_GE(segments, 4u);
  ASSERT_TRUE((*journal)->TruncateBefore(t0 + absl::Seconds(100)).ok());
  EXPECT_EQ(FilesNamed(options.path, "segment-"), 1u) << "a fresh active segment";
  EXPECT_EQ(FilesNamed(options.path, "free-"), 2u) << "recycle_segments of them kept";
  EXPECT_EQ((*journal)->stats().segments_recycled.load(), 0u);

  // New entries fill the fresh segment, then two reused files, then a new file.
  for (int i = 40; i < 40 + 4 * static_cast<int>(segments); ++i) {
    ASSERT_TRUE((*journal)->Append(Batch(i, 1, 3), t0 + absl::Seconds(200 + i)).ok());
  }
  EXPECT_EQ((*journal)->stats().segments_recycled.load(), 2u);
  EXPECT_EQ(FilesNamed(options.path, "free-"), 0u);
  const std::vector<std::string> live = ReplayedTraceIds(journal->get());
  ASSERT_EQ(live.size(), 4 * segments);
  EXPECT_EQ(live.front(), std::string(16, 41));
  journal->reset();

  // After a restart (a crash: nothing more was written), the same entries and nothing else.
  auto reopened = Journal::Open(options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(ReplayedTraceIds(reopened->get()), live);
}

// Pages of `file` in the page cache; -1 when that cannot be told (a file system such as tmpfs,
// whose pages are the file itself and are never dropped).
long ResidentPages(const std::string& file) {
  struct statfs fs;
  if (::statfs(file.c_str(), &fs) != 0 || fs.f_type == 0x01021994 /* TMPFS_MAGIC */) return -1;
  const int fd = ::open(file.c_str(), O_RDONLY);
  if (fd < 0) return -1;
  const off_t size = ::lseek(fd, 0, SEEK_END);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return -1;
  const long page = ::sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> in_core((size + page - 1) / page);
  long resident = -1;
  if (::mincore(map, size, in_core.data()) == 0) {
    resident = std::count_if(in_core.begin(), in_core.end(), [](unsigned char c) { return c & 1; });
  }
  ::munmap(map, size);
  return resident;
}

// Segments that only held traces keep (all their entries decided) leave the page cache once,
// and what they hold is still read back and replayed; the active segment and segments with
// undecided entries stay.
TEST(JournalTest, DecidedSegmentsLeaveThePageCacheAndStayReadable) {
  JournalOptions options;
  options.path = TempPath();
  options.segment_bytes = 64 << 10;
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  auto journal = Journal::Open(options);
  ASSERT_TRUE(journal.ok()) << journal.status();
  std::vector<JournalRef> refs(40);
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE((*journal)->Append(Batch(i, 10, 30), t0 + absl::Seconds(i), &refs[i]).ok());
  }
  ASSERT_GE(refs.back().segment, 4u);
  const uint64_t undecided = refs[30].segment;  // the segment of the entry of t0 + 30 s
  ASSERT_GT(undecided, refs[0].segment + 1);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(options.path)) {
    files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), refs.back().segment);
  const long before = ResidentPages(files[0]);

  // Everything before t0 + 30 s is decided: the closed segments before the one of that entry.
  EXPECT_EQ((*journal)->DropCacheBefore(t0 + absl::Seconds(30)), undecided - 1);
  EXPECT_EQ((*journal)->stats().segments_uncached.load(), undecided - 1);
  EXPECT_EQ((*journal)->DropCacheBefore(t0 + absl::Seconds(30)), 0) << "each segment once";
  if (before > 0) {
    EXPECT_EQ(ResidentPages(files[0]), 0);
    EXPECT_GT(ResidentPages(files[undecided - 1]), 0) << "entries not decided stay cached";
  }
  for (int i : {0, 5, 29, 39}) {
    auto read = (*journal)->ReadAt(refs[i], std::string(16, static_cast<char>(i + 3)));
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_EQ(read->size(), 1u) << i;
    EXPECT_EQ((*read)[0].spans.size(), 30u);
    EXPECT_EQ((*read)[0].spans[29].span, "span-29");
  }
  EXPECT_EQ(ReplayedTraceIds(journal->get()).size(), 400u);

  // Decided through the end: the active segment is written into and stays.
  EXPECT_EQ((*journal)->DropCacheBefore(t0 + absl::Seconds(1000)), refs.back().segment - undecided);

  options.path = TempPath();
  options.drop_cache = false;
  auto kept = Journal::Open(options);
  ASSERT_TRUE(kept.ok()) << kept.status();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE((*kept)->Append(Batch(i, 10, 30), t0 + absl::Seconds(i)).ok());
  }
  EXPECT_EQ((*kept)->DropCacheBefore(t0 + absl::Seconds(1000)), 0);
}

// A reused file holds its earlier records after its new ones. Here the new records end exactly
// where an earlier truncate record starts, whose mark (read as the journal's) would hide the new
// entries: its checksum, mixed with the file's earlier segment number, keeps it out.
TEST(JournalTest, AReusedFilesEarlierRecordsAreNotReadAsItsOwn) {
  JournalOptions options;
  options.path = TempPath();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  {
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok()) << journal.status();
    ASSERT_TRUE((*journal)->Append(Batch(0, 1, 2), t0 + absl::Seconds(1)).ok());
    ASSERT_TRUE((*journal)->Append(Batch(1, 1, 2), t0 + absl::Seconds(3)).ok());
    // A mark after both entries: the segment now ends with a truncate record.
    ASSERT_TRUE((*journal)->Append(Batch(2, 1, 2), t0 + absl::Seconds(9)).ok());
    ASSERT_TRUE((*journal)->TruncateBefore(t0 + absl::Seconds(5)).ok());
  }
  // As truncation leaves it once the segment's entries are all decided: a free file.
  ASSERT_EQ(FilesNamed(options.path, "segment-"), 1u);
  std::filesystem::rename(options.path + "/segment-0000000000000001.tkj",
                          options.path + "/free-0000000000000001.tkj");
  {
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok()) << journal.status();
    // Same sizes as the three entries before, so the truncate record follows them intact.
    ASSERT_TRUE((*journal)->Append(Batch(10, 1, 2), t0 + absl::Seconds(1)).ok());
    ASSERT_TRUE((*journal)->Append(Batch(11, 1, 2), t0 + absl::Seconds(2)).ok());
    ASSERT_TRUE((*journal)->Append(Batch(12, 1, 2), t0 + absl::Seconds(3)).ok());
    EXPECT_EQ((*journal)->stats().segments_recycled.load(), 1u);
    EXPECT_EQ(FilesNamed(options.path, "free-"), 0u);
  }
  auto journal = Journal::Open(options);
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_EQ(
      ReplayedTraceIds(journal->get()),
      (std::vector<std::string>{std::string(16, 11), std::string(16, 12), std::string(16, 13)}));
}

// The clock steps back across a restart (NTP): entries written after the truncation, with
// arrival times older than its mark, are still replayed.
TEST(JournalTest, EntriesAfterATruncationSurviveAClockSteppedBack) {
  JournalOptions options;
  options.path = TempPath();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  {
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok());
    ASSERT_TRUE((*journal)->Append(Batch(0, 1, 1), t0 + absl::Seconds(10)).ok());
    ASSERT_TRUE((*journal)->Append(Batch(1, 1, 1), t0 + absl::Seconds(30)).ok());
    ASSERT_TRUE((*journal)->TruncateBefore(t0 + absl::Seconds(20)).ok());
  }
  {
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok());
    ASSERT_TRUE((*journal)->Append(Batch(2, 1, 1), t0 + absl::Seconds(5)).ok());
  }
  auto journal = Journal::Open(options);
  ASSERT_TRUE(journal.ok());
  EXPECT_EQ(ReplayedTraceIds(journal->get()),
            (std::vector<std::string>{std::string(16, 2), std::string(16, 3)}));
}

// A write cut short by a crash (the tail of the last segment missing) costs that record only;
// a flipped byte ends the replay of its segment at that record. Both reopen and take appends.
TEST(JournalTest, TornTailAndCorruptRecordsAreSkippedNotFatal) {
  JournalOptions options;
  options.path = TempPath();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  {
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*journal)->Append(Batch(i, 1, 2), t0).ok());
  }
  std::vector<std::string> files = SegmentFiles(options.path);
  ASSERT_EQ(files.size(), 1u);
  const std::string segment = options.path + "/" + files[0];
  std::filesystem::resize_file(segment, std::filesystem::file_size(segment) - 10);
  {
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok()) << journal.status();
    EXPECT_EQ(ReplayedTraceIds(journal->get()),
              (std::vector<std::string>{std::string(16, 1), std::string(16, 2)}));
    ASSERT_TRUE((*journal)->Append(Batch(10, 1, 2), t0).ok());
    EXPECT_EQ(ReplayedTraceIds(journal->get()).size(), 3u);
  }
  // Flip a byte inside the second record of the first segment: the magic (8 bytes), then three
  // records of the same size of which the last lost 10 bytes.
  {
    FILE* f = std::fopen(segment.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    const long record = (static_cast<long>(std::filesystem::file_size(segment)) - 8 + 10) / 3;
    const long at = 8 + record + record / 2;
    std::fseek(f, at, SEEK_SET);
    const int c = std::fgetc(f);
    std::fseek(f, at, SEEK_SET);
    std::fputc(c ^ 0xff, f);
    std::fclose(f);
  }
  auto journal = Journal::Open(options);
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_EQ(ReplayedTraceIds(journal->get()),
            (std::vector<std::string>{std::string(16, 1), std::string(16, 11)}))
      << "the first segment stops before the damaged record; the second segment is intact";
}

TEST(JournalTest, ConcurrentSyncedAppendsAreAllDurable) {
  JournalOptions options;
  options.path = TempPath();
  options.sync = true;
  options.segment_bytes = 16 * 1024;  // rolls while appending
  {
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) {
          EXPECT_TRUE((*journal)->Append(Batch(t * 50 + i, 1, 2), absl::FromUnixSeconds(i)).ok());
        }
      });
    }
    for (std::thread& t : threads) t.join();
  }
  auto journal = Journal::Open(options);
  ASSERT_TRUE(journal.ok());
  std::vector<std::string> ids = ReplayedTraceIds(journal->get());
  EXPECT_EQ(ids.size(), 200u);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 200u);
}

// The journal of tracekeep 0.1 was a RocksDB database of (arrival, sequence) -> record; opening
// it converts the entries into a segment (same arrival times) and removes the database.
TEST(JournalTest, ConvertsTheRocksDbJournalOfVersion01) {
  const std::string path = TempPath();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  auto key = [](absl::Time arrival, uint64_t seq) {
    std::string k;
    const uint64_t t = static_cast<uint64_t>(absl::ToUnixNanos(arrival)) ^ (uint64_t{1} << 63);
    for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((t >> (8 * i)) & 0xff));
    for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((seq >> (8 * i)) & 0xff));
    return k;
  };
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, path, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string value;
    EncodeJournalRecord(Batch(0, 1, 2), &value);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key(t0, 0), value).ok());
    value.clear();
    EncodeJournalRecord(Batch(1, 1, 2), &value);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key(t0 + absl::Seconds(1), 1), value).ok());
  }
  {
    auto journal = Journal::Open({path, false});
    ASSERT_TRUE(journal.ok()) << journal.status();
    std::vector<absl::Time> arrivals;
    ASSERT_TRUE((*journal)
                    ->Replay([&](std::vector<TraceSpans>&& traces, absl::Time arrival) {
                      EXPECT_EQ(traces[0].spans.size(), 2u);
                      arrivals.push_back(arrival);
                      return absl::OkStatus();
                    })
                    .ok());
    EXPECT_EQ(arrivals, (std::vector<absl::Time>{t0, t0 + absl::Seconds(1)}));
    EXPECT_FALSE(std::filesystem::exists(path + "/CURRENT"));
    EXPECT_EQ(SegmentFiles(path).size(), 1u);
  }
  auto journal = Journal::Open({path, false});
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_EQ(ReplayedTraceIds(journal->get()).size(), 2u);
}

// An entry is read back by the place Append gave; replays give the same places, also after a
// reopen; a place that holds no intact entry is an error, not garbage.
// AppendAndLocate gives each trace its part of the record: reading it back reads the record's
// resources and scopes and that part only (in one read when they are close, in two when another
// trace's spans lie between), and gives the same spans as reading the whole record.
TEST(JournalTest, ATraceIsReadBackFromItsPartOfTheRecord) {
  const std::string path = TempPath();
  auto journal = Journal::Open({path, false});
  ASSERT_TRUE(journal.ok()) << journal.status();
  std::vector<TraceSpans> traces = Batch(0, 3, 2);
  auto other = std::make_shared<SpanOrigin>();
  other->resource = "crm-resource";
  other->service_name = "crm-api";
  traces[1].spans[1].origin = other;
  traces[0].spans[0].span = std::string(40000, 'x');  // trace 2's part is far from the head
  ASSERT_TRUE((*journal)->AppendAndLocate(&traces, absl::FromUnixSeconds(1700000000)).ok());
  auto whole = (*journal)->ReadAt(traces[0].journal_ref);
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_EQ(whole->size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    const JournalRef& ref = traces[k].journal_ref;
    ASSERT_GT(ref.trace_size, 0u) << k;
    ASSERT_GT(ref.trace_offset, ref.origins_end) << k;
    auto one = (*journal)->ReadAt(ref, traces[k].trace_id);
    ASSERT_TRUE(one.ok()) << k << ": " << one.status();
    ASSERT_EQ(one->size(), 1u) << k;
    const TraceSpans& got = (*one)[0];
    const TraceSpans& want = (*whole)[k];
    EXPECT_EQ(got.trace_id, traces[k].trace_id);
    EXPECT_EQ(got.hash, want.hash);
    ASSERT_EQ(got.spans.size(), want.spans.size()) << k;
    for (size_t s = 0; s < got.spans.size(); ++s) {
      EXPECT_EQ(got.spans[s].span, want.spans[s].span);
      EXPECT_EQ(got.spans[s].span_id, want.spans[s].span_id);
      EXPECT_EQ(got.spans[s].start_unix_nanos, want.spans[s].start_unix_nanos);
      EXPECT_EQ(got.spans[s].end_unix_nanos, want.spans[s].end_unix_nanos);
      EXPECT_EQ(got.spans[s].is_error, want.spans[s].is_error);
      EXPECT_EQ(got.spans[s].is_root, want.spans[s].is_root);
      EXPECT_EQ(got.spans[s].origin->resource, want.spans[s].origin->resource);
      EXPECT_EQ(got.spans[s].origin->service_name, want.spans[s].origin->service_name);
    }
  }
  EXPECT_EQ((*whole)[1].spans[1].origin->service_name, "crm-api");
  // A part that holds another trace, or a place that is off, is an error, not an empty read.
  auto wrong = (*journal)->ReadAt(traces[0].journal_ref, traces[1].trace_id);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kDataLoss) << wrong.status();
  JournalRef off = traces[1].journal_ref;
  off.trace_offset += 1;
  off.trace_size -= 1;
  EXPECT_FALSE((*journal)->ReadAt(off, traces[1].trace_id).ok());
}

// A trace that waited without its spans (the sampler's spans_in_journal) gets them back from
// the places of its parts, in two requests here: every span once, in the order of the parts.
TEST(JournalTest, ATraceIsReadBackFromThePlacesOfItsParts) {
  const std::string path = TempPath();
  auto journal = Journal::Open({path, false});
  ASSERT_TRUE(journal.ok()) << journal.status();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  std::vector<TraceSpans> first = Batch(0, 3, 2);
  std::vector<TraceSpans> second = Batch(0, 2, 3);  // the same trace ids, new spans
  for (SpanRecord& r : second[1].spans) r.span += "-later";
  ASSERT_TRUE((*journal)->AppendAndLocate(&first, t0).ok());
  ASSERT_TRUE((*journal)->AppendAndLocate(&second, t0 + absl::Seconds(1)).ok());
  const std::vector<JournalRef> refs = {first[1].journal_ref, second[1].journal_ref};
  std::vector<SpanRecord> out;
  ASSERT_TRUE((*journal)->ReadTraceSpans(refs, first[1].trace_id, &out).ok());
  ASSERT_EQ(out.size(), 5u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(out[i].span, first[1].spans[i].span) << i;
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(out[2 + i].span, second[1].spans[i].span) << i;
  EXPECT_EQ(out[4].span_id, second[1].spans[2].span_id);
  EXPECT_EQ(out[0].origin->service_name, "shop-api");
  // A place without the trace is an error, and nothing is appended.
  JournalRef gone = refs[1];
  gone.segment += 100;
  std::vector<SpanRecord> none;
  EXPECT_EQ((*journal)->ReadTraceSpans({refs[0], gone}, first[1].trace_id, &none).code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(none.empty());
}

TEST(JournalTest, EntriesAreReadBackByTheirPlace) {
  const std::string path = TempPath();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  JournalRef first, second;
  {
    auto journal = Journal::Open({path, false});
    ASSERT_TRUE(journal.ok()) << journal.status();
    ASSERT_TRUE((*journal)->Append(Batch(0, 2, 3), t0, &first).ok());
    ASSERT_TRUE((*journal)->Append(Batch(10, 1, 1), t0, &second).ok());
    EXPECT_GT(first.size, 0u);
    EXPECT_EQ(second.offset, first.offset + first.size);
    auto read = (*journal)->ReadAt(second);
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_EQ(read->size(), 1u);
    EXPECT_EQ((*read)[0].trace_id, std::string(16, '\x0b'));
  }
  auto journal = Journal::Open({path, false});
  ASSERT_TRUE(journal.ok()) << journal.status();
  auto read = (*journal)->ReadAt(first);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[1].trace_id, std::string(16, '\x02'));
  ASSERT_EQ((*read)[1].spans.size(), 3u);
  EXPECT_EQ((*read)[1].spans[2].span, "span-2");
  EXPECT_EQ((*read)[1].spans[2].origin->service_name, "shop-api");
  auto one = (*journal)->ReadAt(first, std::string(16, '\x02'));  // only that trace decoded
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].trace_id, std::string(16, '\x02'));
  EXPECT_EQ((*one)[0].spans.size(), 3u);
  auto none = (*journal)->ReadAt(first, std::string(16, '\x7f'));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  std::vector<JournalRef> replayed;
  ASSERT_TRUE(
      (*journal)
          ->ReplayWithRefs([&](std::vector<TraceSpans>&&, absl::Time, const JournalRef& where) {
            replayed.push_back(where);
            return absl::OkStatus();
          })
          .ok());
  ASSERT_EQ(replayed.size(), 2u);
  EXPECT_TRUE(replayed[0] == first);
  EXPECT_TRUE(replayed[1] == second);
  JournalRef shifted = first;
  shifted.offset += 1;
  EXPECT_EQ((*journal)->ReadAt(shifted).status().code(), absl::StatusCode::kDataLoss);
  JournalRef gone = first;
  gone.segment += 100;
  EXPECT_EQ((*journal)->ReadAt(gone).status().code(), absl::StatusCode::kNotFound);
}

TEST(JournalTest, ReleasedSpanBytesAreReadBackFromTheirPlace) {
  const std::string path = TempPath();
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  // Small segments: the spans of the three appends land in two segments.
  auto journal = Journal::Open({path, false, /*segment_bytes=*/200});
  ASSERT_TRUE(journal.ok()) << journal.status();
  std::vector<SpanRecord> pending;
  for (int round = 0; round < 3; ++round) {
    std::vector<TraceSpans> batch = Batch(round * 10, 2, 3);
    ASSERT_TRUE((*journal)->AppendAndLocate(&batch, t0 + absl::Seconds(round)).ok());
    for (TraceSpans& t : batch) {
      EXPECT_GT(t.journal_ref.size, 0u);
      for (SpanRecord& s : t.spans) pending.push_back(std::move(s));
    }
  }
  std::set<uint64_t> segments;
  for (const SpanRecord& s : pending) segments.insert(s.journal_segment);
  EXPECT_GE(segments.size(), 2u);

  // Released: only the size stays; reading back gives the bytes, and nothing else changes.
  std::vector<SpanRecord> released = pending;
  for (SpanRecord& s : released) s.ReleaseJournaledBytes();
  for (const SpanRecord& s : released) {
    EXPECT_TRUE(s.in_journal_only);
    EXPECT_TRUE(s.span.empty());
    EXPECT_EQ(s.size(), s.journal_size);
  }
  EXPECT_TRUE(AnyInJournalOnly(released));
  std::reverse(released.begin(), released.end());  // any order
  ASSERT_TRUE((*journal)->ReadSpanBytes(&released).ok());
  std::reverse(released.begin(), released.end());
  ASSERT_EQ(released.size(), pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    EXPECT_FALSE(released[i].in_journal_only);
    EXPECT_EQ(released[i].span, pending[i].span);
    EXPECT_EQ(released[i].span_id, pending[i].span_id);
  }
  EXPECT_GT((*journal)->stats().span_bytes_read_back.load(), 0u);

  // Replayed spans carry their place too, and read back the same after a reopen.
  journal->reset();
  journal = Journal::Open({path, false, 200});
  ASSERT_TRUE(journal.ok()) << journal.status();
  std::vector<SpanRecord> replayed;
  ASSERT_TRUE(
      (*journal)
          ->ReplayWithRefs([&](std::vector<TraceSpans>&& traces, absl::Time, const JournalRef&) {
            for (TraceSpans& t : traces) {
              for (SpanRecord& s : t.spans) replayed.push_back(std::move(s));
            }
            return absl::OkStatus();
          })
          .ok());
  ASSERT_EQ(replayed.size(), pending.size());
  for (size_t i = 0; i < replayed.size(); ++i) {
    EXPECT_EQ(replayed[i].journal_segment, pending[i].journal_segment);
    EXPECT_EQ(replayed[i].journal_offset, pending[i].journal_offset);
    replayed[i].ReleaseJournaledBytes();
  }
  ASSERT_TRUE((*journal)->ReadSpanBytes(&replayed).ok());
  for (size_t i = 0; i < replayed.size(); ++i) EXPECT_EQ(replayed[i].span, pending[i].span);

  // Spans never journaled are left alone; spans of a truncated segment cannot be read back:
  // they stay released and the error says so.
  std::vector<SpanRecord> mixed = {pending.front(), pending.back()};
  mixed[0].ReleaseJournaledBytes();
  mixed[1].ReleaseJournaledBytes();
  SpanRecord plain;
  plain.span = "in memory";
  plain.ReleaseJournaledBytes();  // no journal copy: nothing released
  EXPECT_FALSE(plain.in_journal_only);
  mixed.push_back(plain);
  ASSERT_TRUE((*journal)->TruncateBefore(t0 + absl::Seconds(2)).ok());
  absl::Status read = (*journal)->ReadSpanBytes(&mixed);
  EXPECT_EQ(read.code(), absl::StatusCode::kNotFound) << read;
  EXPECT_TRUE(mixed[0].in_journal_only);   // its segment was deleted
  EXPECT_FALSE(mixed[1].in_journal_only);  // the newest segment stays
  EXPECT_EQ(mixed[1].span, pending.back().span);
  EXPECT_EQ(mixed[2].span, "in memory");
  EXPECT_EQ((*journal)->stats().read_back_errors.load(), 1u);
}

}  // namespace
}  // namespace tracekeep::storage
