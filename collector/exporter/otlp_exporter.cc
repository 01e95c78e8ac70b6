#include "collector/exporter/otlp_exporter.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "collector/common/logging.h"
#include "collector/pipeline/otlp_convert.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace tracekeep::exporter {
namespace {

namespace otlp = ::opentelemetry::proto::collector::trace::v1;

// The codes the OTLP specification calls retryable.
bool IsRetryable(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DATA_LOSS:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::vector<std::pair<const char*, const std::atomic<uint64_t>*>> ExporterStats::DroppedByReason()
    const {
  return {{"queue_full", &dropped_queue_full},
          {"retries_exhausted", &dropped_retries_exhausted},
          {"permanent_error", &dropped_permanent_error},
          {"rejected", &dropped_rejected},
          {"shutdown", &dropped_shutdown}};
}

class OtlpExporter::Impl {
 public:
  Impl(const OtlpExporterOptions& options, Clock* clock, ExporterStats* stats)
      : options_(options), clock_(clock), stats_(stats), rng_(std::random_device{}()) {
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(-1);
    if (options_.compression == "gzip") args.SetCompressionAlgorithm(GRPC_COMPRESS_GZIP);
    channel_ = grpc::CreateCustomChannel(options_.endpoint, grpc::InsecureChannelCredentials(),
                                         args);
    stub_ = otlp::TraceService::NewStub(channel_);
  }

  absl::Status Consume(KeptTraces&& traces) {
    int64_t n = 0;
    for (const KeptTrace& t : traces) n += static_cast<int64_t>(t.spans.size());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        stats_->dropped_shutdown.fetch_add(n);
        return absl::UnavailableError("exporter is shutting down");
      }
      if (queued_ + n > options_.queue_size_spans) {
        stats_->dropped_queue_full.fetch_add(n);
        return absl::ResourceExhaustedError(absl::StrCat(
            "export queue full (", options_.queue_size_spans, " spans); ", n, " spans dropped"));
      }
      if (queue_.empty()) oldest_ = clock_->Now();
      for (KeptTrace& t : traces) {
        for (SpanRecord& s : t.spans) queue_.push_back(std::move(s));
      }
      queued_ += n;
      stats_->queue_spans.store(queued_);
    }
    cv_.notify_one();
    return absl::OkStatus();
  }

  void Start() { thread_ = std::thread([this] { Run(); }); }

  void Shutdown(absl::Time deadline) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      deadline_ = deadline;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
      thread_.join();
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      stats_->dropped_shutdown.fetch_add(queue_.size());
      queue_.clear();
      queued_ = 0;
      stats_->queue_spans.store(0);
    }
  }

 private:
  void Run() {
    while (true) {
      std::vector<SpanRecord> batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        while (true) {
          if (stopping_ && queue_.empty()) return;
          if (stopping_ || queued_ >= options_.send_batch_size) break;
          if (!queue_.empty()) {
            const absl::Time due = oldest_ + options_.batch_timeout;
            const absl::Duration left = due - clock_->Now();
            if (left <= absl::ZeroDuration()) break;
            cv_.wait_for(lock, absl::ToChronoNanoseconds(std::min(left, absl::Milliseconds(100))));
          } else {
            cv_.wait(lock);
          }
        }
        const size_t n =
            std::min(queue_.size(), static_cast<size_t>(options_.send_batch_max_size));
        batch.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        queued_ -= static_cast<int64_t>(n);
        stats_->queue_spans.store(queued_);
        oldest_ = clock_->Now();
      }
      Send(batch);
    }
  }

  // Sends one batch until it is acknowledged, permanently refused, or given up on.
  void Send(const std::vector<SpanRecord>& batch) {
    std::vector<const SpanRecord*> spans;
    spans.reserve(batch.size());
    for (const SpanRecord& s : batch) spans.push_back(&s);
    otlp::ExportTraceServiceRequest request;
    BuildRequest(spans, &request);
    const uint64_t n = batch.size();
    const absl::Time first_try = clock_->Now();
    absl::Duration interval = options_.initial_interval;
    while (true) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
      for (const auto& [key, value] : options_.headers) context.AddMetadata(key, value);
      otlp::ExportTraceServiceResponse response;
      stats_->requests_sent.fetch_add(1);
      const grpc::Status status = stub_->Export(&context, request, &response);
      if (status.ok()) {
        const auto rejected = static_cast<uint64_t>(
            std::max<int64_t>(0, response.partial_success().rejected_spans()));
        stats_->spans_exported.fetch_add(n - std::min(n, rejected));
        if (rejected > 0) {
          stats_->dropped_rejected.fetch_add(std::min(n, rejected));
          TK_LOG(Warning) << "backend " << options_.endpoint << " rejected " << rejected
                          << " spans: " << response.partial_success().error_message();
        }
        return;
      }
      stats_->requests_failed.fetch_add(1);
      if (!IsRetryable(status.error_code())) {
        stats_->dropped_permanent_error.fetch_add(n);
        TK_LOG(Error) << "export to " << options_.endpoint << " failed permanently (code "
                      << status.error_code() << "): " << status.error_message() << "; " << n
                      << " spans dropped";
        return;
      }
      if (!options_.retry_enabled) {
        stats_->dropped_retries_exhausted.fetch_add(n);
        return;
      }
      std::uniform_real_distribution<double> jitter(1 - options_.randomization_factor,
                                                    1 + options_.randomization_factor);
      const absl::Duration wait = interval * jitter(rng_);
      interval = std::min(interval * options_.multiplier, options_.max_interval);
      if (options_.max_elapsed_time > absl::ZeroDuration() &&
          clock_->Now() + wait - first_try > options_.max_elapsed_time) {
        stats_->dropped_retries_exhausted.fetch_add(n);
        TK_LOG(Error) << "export to " << options_.endpoint << " still failing after "
                      << absl::FormatDuration(clock_->Now() - first_try) << " ("
                      << status.error_message() << "); " << n << " spans dropped";
        return;
      }
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, absl::ToChronoNanoseconds(wait), [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ && absl::Now() >= deadline_;
        });
        if (stopping_ && absl::Now() >= deadline_) {
          stats_->dropped_shutdown.fetch_add(n);
          stats_->dropped_shutdown.fetch_add(queue_.size());
          queue_.clear();
          queued_ = 0;
          stats_->queue_spans.store(0);
          return;
        }
      }
      stats_->retries.fetch_add(1);
      TK_LOG(Debug) << "export to " << options_.endpoint << " failed (" << status.error_message()
                    << "); retrying";
    }
  }

  const OtlpExporterOptions options_;
  Clock* const clock_;
  ExporterStats* const stats_;
  std::mt19937_64 rng_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<otlp::TraceService::Stub> stub_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SpanRecord> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time oldest_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<OtlpExporter>> OtlpExporter::Create(
    const OtlpExporterOptions& options, Clock* clock) {
  if (options.endpoint.empty()) {
    return absl::InvalidArgumentError("exporters.otlp.endpoint: must be set");
  }
  if (!options.insecure) {
    return absl::UnimplementedError(
        "exporters.otlp.tls.insecure: false (TLS) is not supported yet");
  }
  if (options.compression != "gzip" && options.compression != "none") {
    return absl::InvalidArgumentError(absl::StrCat(
        "exporters.otlp.compression: must be gzip or none, got \"", options.compression, "\""));
  }
  if (options.send_batch_size <= 0 || options.send_batch_max_size < options.send_batch_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "exporters.otlp.batch: need 0 < send_batch_size <= send_batch_max_size, got ",
        options.send_batch_size, " and ", options.send_batch_max_size));
  }
  auto exporter = std::unique_ptr<OtlpExporter>(new OtlpExporter(options, clock));
  return exporter;
}

OtlpExporter::OtlpExporter(const OtlpExporterOptions& options, Clock* clock)
    : impl_(std::make_unique<Impl>(options, clock, &stats_)) {}

OtlpExporter::~OtlpExporter() { Shutdown(absl::Now()); }

absl::Status OtlpExporter::Consume(KeptTraces&& traces) { return impl_->Consume(std::move(traces)); }

absl::Status OtlpExporter::Start() {
  impl_->Start();
  return absl::OkStatus();
}

void OtlpExporter::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }

}  // namespace tracekeep::exporter
