#include "collector/intake/disk_budget.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/logging.h"

namespace tracekeep::intake {
namespace {

std::string Mib(uint64_t bytes) {
  return absl::StrCat(bytes, " bytes (", bytes / (1024 * 1024), " MiB)");
}

}  // namespace

const char* DiskPressureName(DiskPressure pressure) {
  switch (pressure) {
    case DiskPressure::kNone:
      return "none";
    case DiskPressure::kMaxDiskBytes:
      return "max_disk_bytes";
    case DiskPressure::kMinFreeBytes:
      return "min_free_disk_bytes";
  }
  return "unknown";
}

absl::StatusOr<uint64_t> DirectoryBytes(const std::vector<std::string>& paths) {
  uint64_t total = 0;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    std::filesystem::recursive_directory_iterator it(
        path, std::filesystem::directory_options::skip_permission_denied, ec);
    if (ec) return absl::InternalError(absl::StrCat("reading \"", path, "\": ", ec.message()));
    for (; it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      std::error_code file_ec;
      if (!it->is_regular_file(file_ec)) continue;
      const uintmax_t size = it->file_size(file_ec);
      if (!file_ec) total += size;  // a file removed meanwhile (compaction) counts 0
    }
    // Files disappear while RocksDB compacts: an iteration cut short counts what it saw.
  }
  return total;
}

absl::StatusOr<uint64_t> FreeBytes(const std::string& path) {
  std::error_code ec;
  const std::filesystem::space_info space = std::filesystem::space(path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("free space of the file system of \"", path, "\": ", ec.message()));
  }
  return static_cast<uint64_t>(space.available);
}

absl::StatusOr<std::unique_ptr<DiskBudgetIntake>> DiskBudgetIntake::Create(
    const DiskBudgetOptions& options, SpanIntake* inner, UsageFn usage, FreeFn free) {
  if (options.paths.empty()) {
    return absl::InvalidArgumentError("disk budget: no directory to measure");
  }
  if (options.refresh_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("disk budget: refresh_interval must be > 0, got ",
                     absl::FormatDuration(options.refresh_interval)));
  }
  if (usage == nullptr) usage = DirectoryBytes;
  if (free == nullptr) free = FreeBytes;
  return std::unique_ptr<DiskBudgetIntake>(
      new DiskBudgetIntake(options, inner, std::move(usage), std::move(free)));
}

DiskBudgetIntake::DiskBudgetIntake(const DiskBudgetOptions& options, SpanIntake* inner,
                                   UsageFn usage, FreeFn free)
    : options_(options), inner_(inner), usage_(std::move(usage)), free_(std::move(free)) {}

DiskBudgetIntake::~DiskBudgetIntake() { Shutdown(absl::InfiniteFuture()); }

absl::Status DiskBudgetIntake::Offer(std::vector<TraceSpans>&& traces, int64_t span_count) {
  const auto pressure = static_cast<DiskPressure>(stats_.pressure.load(std::memory_order_acquire));
  if (pressure == DiskPressure::kNone) return inner_->Offer(std::move(traces), span_count);
  (pressure == DiskPressure::kMaxDiskBytes ? stats_.spans_refused_max_disk_bytes
                                           : stats_.spans_refused_min_free_bytes)
      .fetch_add(span_count, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  return absl::ResourceExhaustedError(refusal_);
}

void DiskBudgetIntake::Refresh() {
  DiskPressure pressure = DiskPressure::kNone;
  std::string why;
  if (options_.max_bytes != 0) {
    absl::StatusOr<uint64_t> used = usage_(options_.paths);
    if (used.ok()) {
      stats_.used_bytes.store(*used, std::memory_order_relaxed);
      if (*used > options_.max_bytes) {
        pressure = DiskPressure::kMaxDiskBytes;
        why = absl::StrCat("disk budget exceeded: tracekeep's data (",
                           absl::StrJoin(options_.paths, ", "), ") uses ", Mib(*used),
                           ", storage.max_disk_bytes is ", Mib(options_.max_bytes),
                           "; retry later (space returns as traces are decided, exported and "
                           "expire)");
      }
    } else {
      stats_.measurement_errors.fetch_add(1, std::memory_order_relaxed);
      TK_LOG(Warning) << "disk budget: " << used.status();
    }
  }
  if (options_.min_free_bytes != 0) {
    absl::StatusOr<uint64_t> free = free_(options_.paths[0]);
    if (free.ok()) {
      stats_.free_bytes.store(*free, std::memory_order_relaxed);
      if (*free < options_.min_free_bytes && pressure == DiskPressure::kNone) {
        pressure = DiskPressure::kMinFreeBytes;
        why = absl::StrCat("disk nearly full: the file system of \"", options_.paths[0], "\" has ",
                           Mib(*free), " free, storage.min_free_disk_bytes is ",
                           Mib(options_.min_free_bytes), "; retry later");
      }
    } else {
      stats_.measurement_errors.fetch_add(1, std::memory_order_relaxed);
      TK_LOG(Warning) << "disk budget: " << free.status();
    }
  }
  const auto before = static_cast<DiskPressure>(stats_.pressure.load());
  {
    std::lock_guard<std::mutex> lock(mu_);
    refusal_ = why;  // set before the state, so a refusal never reads an empty message
  }
  stats_.pressure.store(static_cast<int>(pressure), std::memory_order_release);
  if (pressure != before) {
    if (pressure == DiskPressure::kNone) {
      TK_LOG(Info) << "disk budget: back within " << DiskPressureName(before)
                   << "; accepting data again";
    } else {
      TK_LOG(Warning) << why << " (refusing new data with RESOURCE_EXHAUSTED)";
    }
  }
}

absl::Status DiskBudgetIntake::Start() {
  Refresh();
  refresher_.Start(options_.refresh_interval, [this] { Refresh(); });
  return absl::OkStatus();
}

void DiskBudgetIntake::Shutdown(absl::Time /*deadline*/) { refresher_.Stop(); }

}  // namespace tracekeep::intake
