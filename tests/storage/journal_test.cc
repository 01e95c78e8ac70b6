#include "storage/journal.h"

#include <cstdlib>

#include "collector/common/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
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

// A full disk: the append that fails and every later one are refused with kResourceExhausted
// naming the journal (no crash: RocksDB 7.8 aborts on a write after a failed WAL write, see
// storage/write_guard.h); what was journaled before stays; once space is freed and the resume
// interval has passed, appends succeed again, and everything replays after a reopen.
TEST(JournalTest, FullDiskRefusesAppendsAndResumesOnceSpaceIsFreed) {
  SmallFs fs;
  if (std::string why = fs.Mount(8); !why.empty()) GTEST_SKIP() << why << " (needs root)";
  FakeClock clock;
  JournalOptions options;
  options.path = fs.dir() + "/journal";
  options.clock = &clock;
  options.resume_interval = absl::Seconds(1);
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

    // Later appends (and erasures) are refused without writing, also after the resume interval
    // while the disk is still full.
    for (int i = 0; i < 3; ++i) {
      absl::Status refused = (*journal)->Append(Batch(20, 1, 1), t0).status();
      EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
      EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr(options.path));
      EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("space"));
      clock.Advance(absl::Seconds(1));
    }
    EXPECT_EQ((*journal)->TruncateBefore(t0).code(), absl::StatusCode::kResourceExhausted);
    EXPECT_GE((*journal)->stats().append_errors.load(), 4u);

    fs.Free();
    // Within the interval of the last attempt nothing is retried.
    EXPECT_EQ((*journal)->Append(Batch(30, 1, 1), t0).status().code(),
              absl::StatusCode::kResourceExhausted);
    clock.Advance(absl::Seconds(1));
    absl::StatusOr<std::string> resumed = (*journal)->Append(Batch(40, 1, 2), t0);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    ASSERT_TRUE((*journal)->Append(Batch(50, 1, 2), t0).ok());
  }
  // Nothing written before the failure is lost; the appends after it are there too.
  absl::StatusOr<std::unique_ptr<Journal>> reopened = Journal::Open(options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  std::vector<std::string> trace_ids;
  ASSERT_TRUE((*reopened)
                  ->Replay([&](std::vector<TraceSpans>&& traces, absl::Time) {
                    for (const TraceSpans& t : traces) trace_ids.push_back(t.trace_id);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_THAT(trace_ids, ::testing::IsSupersetOf(
                             {std::string(16, 1), std::string(16, 41), std::string(16, 51)}));
  EXPECT_THAT(trace_ids, ::testing::Not(::testing::Contains(std::string(16, 21))));
}

}  // namespace
}  // namespace tracekeep::storage
