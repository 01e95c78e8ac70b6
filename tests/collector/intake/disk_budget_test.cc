#include "collector/intake/disk_budget.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/collector/sampling/test_util.h"

namespace tracekeep::intake {
namespace {

using ::testing::HasSubstr;

// Counts what reaches the intake behind the budget.
class CountingIntake final : public SpanIntake {
 public:
  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) override {
    spans += span_count;
    return absl::OkStatus();
  }
  int64_t spans = 0;
};

std::vector<TraceSpans> Batch(int n, int spans) {
  std::vector<TraceSpans> v;
  v.push_back(sampling::MakeTrace(n, spans));
  return v;
}

struct Disk {
  uint64_t used = 0;
  uint64_t free = uint64_t{1} << 40;
  std::vector<std::string> measured;
};

absl::StatusOr<std::unique_ptr<DiskBudgetIntake>> Budget(const DiskBudgetOptions& options,
                                                         SpanIntake* inner, Disk* disk) {
  return DiskBudgetIntake::Create(
      options, inner,
      [disk](const std::vector<std::string>& paths) -> absl::StatusOr<uint64_t> {
        disk->measured = paths;
        return disk->used;
      },
      [disk](const std::string&) -> absl::StatusOr<uint64_t> { return disk->free; });
}

TEST(DiskBudgetTest, RefusesOverMaxDiskBytesAndAcceptsAgainOnceBelow) {
  CountingIntake inner;
  Disk disk;
  DiskBudgetOptions options;
  options.paths = {"/data/rocksdb", "/data/journal"};
  options.max_bytes = 1000;
  auto budget = Budget(options, &inner, &disk);
  ASSERT_TRUE(budget.ok()) << budget.status();

  disk.used = 1000;  // at the limit is still within it
  (*budget)->Refresh();
  EXPECT_EQ(disk.measured, options.paths);
  ASSERT_TRUE((*budget)->Offer(Batch(1, 3), 3).ok());
  EXPECT_EQ(inner.spans, 3);

  disk.used = 1001;
  (*budget)->Refresh();
  absl::Status refused = (*budget)->Offer(Batch(2, 4), 4);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("storage.max_disk_bytes"));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("1001 bytes"));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("/data/journal"));
  EXPECT_EQ(inner.spans, 3) << "a refused batch must not reach the intake";
  EXPECT_EQ((*budget)->stats().spans_refused_max_disk_bytes.load(), 4u);
  EXPECT_EQ((*budget)->pressure(), DiskPressure::kMaxDiskBytes);
  EXPECT_EQ((*budget)->stats().used_bytes.load(), 1001u);

  disk.used = 10;  // retention, export and decisions freed space
  (*budget)->Refresh();
  EXPECT_TRUE((*budget)->Offer(Batch(3, 2), 2).ok());
  EXPECT_EQ(inner.spans, 5);
  EXPECT_EQ((*budget)->pressure(), DiskPressure::kNone);
}

TEST(DiskBudgetTest, RefusesWhenTheFileSystemHasTooLittleFreeSpace) {
  CountingIntake inner;
  Disk disk;
  DiskBudgetOptions options;
  options.paths = {"/data/rocksdb"};
  options.min_free_bytes = 64 << 20;
  auto budget = Budget(options, &inner, &disk);
  ASSERT_TRUE(budget.ok()) << budget.status();

  disk.free = (64 << 20) - 1;
  (*budget)->Refresh();
  absl::Status refused = (*budget)->Offer(Batch(1, 5), 5);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("storage.min_free_disk_bytes"));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("/data/rocksdb"));
  EXPECT_EQ((*budget)->stats().spans_refused_min_free_bytes.load(), 5u);
  EXPECT_EQ(inner.spans, 0);

  disk.free = 64 << 20;
  (*budget)->Refresh();
  EXPECT_TRUE((*budget)->Offer(Batch(2, 1), 1).ok());
  EXPECT_EQ(inner.spans, 1);
}

TEST(DiskBudgetTest, WithoutLimitsNothingIsMeasuredOrRefused) {
  CountingIntake inner;
  Disk disk;
  disk.used = uint64_t{1} << 50;
  disk.free = 0;
  DiskBudgetOptions options;
  options.paths = {"/data"};
  auto budget = Budget(options, &inner, &disk);
  ASSERT_TRUE(budget.ok()) << budget.status();
  (*budget)->Refresh();
  EXPECT_TRUE(disk.measured.empty());
  EXPECT_TRUE((*budget)->Offer(Batch(1, 2), 2).ok());
  EXPECT_EQ(inner.spans, 2);
}

TEST(DiskBudgetTest, AFailedMeasurementIsCountedAndRefusesNothing) {
  CountingIntake inner;
  DiskBudgetOptions options;
  options.paths = {"/data"};
  options.max_bytes = 1;
  options.min_free_bytes = 1;
  auto budget = DiskBudgetIntake::Create(
      options, &inner,
      [](const std::vector<std::string>&) -> absl::StatusOr<uint64_t> {
        return absl::InternalError("boom");
      },
      [](const std::string&) -> absl::StatusOr<uint64_t> { return absl::InternalError("boom"); });
  ASSERT_TRUE(budget.ok()) << budget.status();
  (*budget)->Refresh();
  EXPECT_EQ((*budget)->stats().measurement_errors.load(), 2u);
  EXPECT_TRUE((*budget)->Offer(Batch(1, 1), 1).ok());
}

TEST(DiskBudgetTest, RejectsOptionsWithoutAPath) {
  CountingIntake inner;
  auto budget = DiskBudgetIntake::Create(DiskBudgetOptions(), &inner);
  EXPECT_EQ(budget.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DirectoryBytesTest, SumsRegularFilesRecursivelyAndIgnoresMissingPaths) {
  const std::filesystem::path root =
      std::filesystem::path(testing::TempDir()) / "disk_budget_test_dir";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "a" / "b");
  std::ofstream(root / "one") << std::string(100, 'x');
  std::ofstream(root / "a" / "b" / "two") << std::string(23, 'y');
  absl::StatusOr<uint64_t> bytes =
      DirectoryBytes({root.string(), (root / "does-not-exist").string()});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, 123u);
  absl::StatusOr<uint64_t> free = FreeBytes(root.string());
  ASSERT_TRUE(free.ok()) << free.status();
  EXPECT_GT(*free, 0u);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace tracekeep::intake
