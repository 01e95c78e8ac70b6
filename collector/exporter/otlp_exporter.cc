#include "collector/exporter/otlp_exporter.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/logging.h"
#include "collector/exporter/retry_info.h"
#include "collector/pipeline/otlp_convert.h"
#include "collector/security/grpc_security.h"
#include "google/protobuf/arena.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace tracekeep::exporter {
namespace {

namespace otlp = ::opentelemetry::proto::collector::trace::v1;

// Permanent failures are logged for the first one and then once per this many.
constexpr uint64_t kLogEveryN = 100;

// The codes the OTLP specification calls retryable. The specification retries RESOURCE_EXHAUSTED
// only when the server sends RetryInfo; tracekeep always retries it (a throttling backend should
// not cost kept traces), waiting the server's retry_delay when one is given.
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

// "UNAVAILABLE", "INVALID_ARGUMENT", ...: gRPC and absl share the numbering.
std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// Waits on `cv` for at most `d` (capped, so that an infinite deadline cannot overflow).
void WaitFor(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, absl::Duration d) {
  cv.wait_for(lock, absl::ToChronoNanoseconds(std::min(d, absl::Hours(1))));
}

int64_t ToMillisAtLeastOne(absl::Duration d) {
  return std::max<int64_t>(1, absl::ToInt64Milliseconds(d));
}

// gRPC metadata keys: lowercase letters, digits, '-', '_', '.'; "grpc-" is reserved.
bool IsValidHeaderKey(absl::string_view key) {
  if (key.empty() || absl::StartsWith(key, "grpc-")) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_' || c == '.';
  });
}

// Values of text keys are printable ASCII; "-bin" keys carry any bytes.
bool IsValidHeaderValue(absl::string_view key, absl::string_view value) {
  if (absl::EndsWith(key, "-bin")) return true;
  return std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

std::vector<std::string> Validate(const OtlpExporterOptions& o) {
  std::vector<std::string> problems;
  auto add = [&problems](auto&&... parts) { problems.push_back(absl::StrCat(parts...)); };
  if (o.endpoint.empty()) {
    add("exporters.otlp.endpoint: must be set (host:port)");
  } else if (absl::StartsWith(o.endpoint, "http://") || absl::StartsWith(o.endpoint, "https://")) {
    add("exporters.otlp.endpoint: must be host:port without a scheme, got \"", o.endpoint, "\"");
  }
  if (o.insecure && (!o.ca_file.empty() || !o.cert_file.empty())) {
    add("exporters.otlp.tls: ca_file/cert_file need insecure: false");
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    add("exporters.otlp.tls: cert_file and key_file must be set together");
  }
  for (const auto& [key, file] : {std::pair<const char*, const std::string*>{"ca_file", &o.ca_file},
                                  {"cert_file", &o.cert_file},
                                  {"key_file", &o.key_file}}) {
    if (!file->empty() && access(file->c_str(), R_OK) != 0) {
      add("exporters.otlp.tls.", key, ": cannot read \"", *file, "\"");
    }
  }
  for (const auto& [key, value] : o.headers) {
    const std::string lower = absl::AsciiStrToLower(key);
    if (!IsValidHeaderKey(lower)) {
      add("exporters.otlp.headers: key must be letters, digits, '-', '_', '.' and not start with "
          "\"grpc-\", got \"",
          key, "\"");
    } else if (!IsValidHeaderValue(lower, value)) {
      add("exporters.otlp.headers.", key,
          ": value must be printable ASCII (or the key end in -bin), got ", value.size(),
          " bytes with a control character");
    }
  }
  if (o.timeout <= absl::ZeroDuration()) {
    add("exporters.otlp.timeout: must be > 0, got ", absl::FormatDuration(o.timeout));
  }
  if (o.compression != "gzip" && o.compression != "none") {
    add("exporters.otlp.compression: must be gzip or none, got \"", o.compression, "\"");
  }
  if (o.send_batch_size <= 0) {
    add("exporters.otlp.batch.send_batch_size: must be > 0, got ", o.send_batch_size);
  }
  if (o.send_batch_max_size < o.send_batch_size) {
    add("exporters.otlp.batch.send_batch_max_size: must be >= send_batch_size (", o.send_batch_size,
        "), got ", o.send_batch_max_size);
  }
  if (o.batch_timeout < absl::ZeroDuration()) {
    add("exporters.otlp.batch.timeout: must be >= 0, got ", absl::FormatDuration(o.batch_timeout));
  }
  if (o.queue_size_spans <= 0) {
    add("exporters.otlp.sending_queue.queue_size_spans: must be > 0, got ", o.queue_size_spans);
  }
  if (o.initial_interval <= absl::ZeroDuration()) {
    add("exporters.otlp.retry_on_failure.initial_interval: must be > 0, got ",
        absl::FormatDuration(o.initial_interval));
  }
  if (o.max_interval < o.initial_interval) {
    add("exporters.otlp.retry_on_failure.max_interval: must be >= initial_interval (",
        absl::FormatDuration(o.initial_interval), "), got ", absl::FormatDuration(o.max_interval));
  }
  if (!(o.multiplier >= 1.0)) {
    add("exporters.otlp.retry_on_failure.multiplier: must be >= 1, got ", o.multiplier);
  }
  if (!(o.randomization_factor >= 0.0 && o.randomization_factor <= 1.0)) {
    add("exporters.otlp.retry_on_failure.randomization_factor: must be in [0, 1], got ",
        o.randomization_factor);
  }
  if (o.max_elapsed_time < absl::ZeroDuration()) {
    add("exporters.otlp.retry_on_failure.max_elapsed_time: must be >= 0 (0 = no limit), got ",
        absl::FormatDuration(o.max_elapsed_time));
  }
  return problems;
}

// The spans of one Consume() call, sent in order; a batch may take part of a chunk.
struct Chunk {
  std::vector<SpanRecord> spans;
  size_t next = 0;      // first span not yet taken
  absl::Time enqueued;  // by the injected clock: batch age
};

}  // namespace

const char* DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kQueueFull:
      return "queue_full";
    case DropReason::kRetriesExhausted:
      return "retries_exhausted";
    case DropReason::kPermanentError:
      return "permanent_error";
    case DropReason::kRejected:
      return "rejected";
    case DropReason::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

std::vector<std::pair<const char*, const std::atomic<uint64_t>*>> ExporterStats::DroppedByReason()
    const {
  std::vector<std::pair<const char*, const std::atomic<uint64_t>*>> out;
  for (int r = 0; r < kNumDropReasons; ++r) {
    out.emplace_back(DropReasonName(static_cast<DropReason>(r)), &spans_dropped[r]);
  }
  return out;
}

class OtlpExporter::Impl {
 public:
  Impl(const OtlpExporterOptions& options, Clock* clock, ExporterStats* stats)
      : options_(options), clock_(clock), stats_(stats), rng_(std::random_device{}()) {
    for (const auto& [key, value] : options_.headers) {
      headers_.emplace_back(absl::AsciiStrToLower(key), value);
    }
    grpc::ChannelArguments args;
    if (options_.compression == "gzip") args.SetCompressionAlgorithm(GRPC_COMPRESS_GZIP);
    // Reconnect to a backend that was down about as eagerly as export requests are retried.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                static_cast<int>(ToMillisAtLeastOne(options_.initial_interval)));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                static_cast<int>(ToMillisAtLeastOne(options_.max_interval)));
    security::ClientTlsSettings tls;
    tls.use_tls = !options_.insecure;
    tls.ca_file = options_.ca_file;
    tls.cert_file = options_.cert_file;
    tls.key_file = options_.key_file;
    auto credentials = security::MakeChannelCredentials(tls);  // files checked by Create()
    channel_ = grpc::CreateCustomChannel(
        options_.endpoint, credentials.ok() ? *credentials : grpc::InsecureChannelCredentials(),
        args);
    stub_ = otlp::TraceService::NewStub(channel_);
  }

  ~Impl() { Shutdown(absl::Now()); }

  absl::Status Consume(KeptTraces&& traces) {
    int64_t n = 0;
    for (const KeptTrace& t : traces) n += static_cast<int64_t>(t.spans.size());
    if (n == 0) return absl::OkStatus();
    bool wake_sender = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        Drop(DropReason::kShutdown, n);
        return absl::UnavailableError(absl::StrCat("OTLP exporter to ", options_.endpoint,
                                                   " is shut down; ", n, " spans dropped"));
      }
      if (queued_ + in_flight_ + n > options_.queue_size_spans) {
        Drop(DropReason::kQueueFull, n);
        return absl::ResourceExhaustedError(absl::StrCat(
            "OTLP exporter to ", options_.endpoint, ": queue full (", queued_ + in_flight_, " of ",
            options_.queue_size_spans, " spans); ", n, " spans dropped"));
      }
      Chunk& chunk = queue_.emplace_back();
      chunk.enqueued = clock_->Now();
      if (traces.size() == 1) {
        chunk.spans = std::move(traces[0].spans);
      } else {
        chunk.spans.reserve(n);
        for (KeptTrace& t : traces) {
          std::move(t.spans.begin(), t.spans.end(), std::back_inserter(chunk.spans));
        }
      }
      // The sender waits without a timeout only on an empty queue, and otherwise needs waking
      // only when a full batch is ready.
      wake_sender = queued_ == 0 ||
                    (queued_ < options_.send_batch_size && queued_ + n >= options_.send_batch_size);
      queued_ += n;
      UpdateGaugeLocked();
    }
    if (wake_sender) cv_.notify_all();
    return absl::OkStatus();
  }

  absl::Status Start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return absl::FailedPreconditionError("OTLP exporter: Start() after Shutdown()");
    }
    if (started_) return absl::FailedPreconditionError("OTLP exporter: Start() called twice");
    started_ = true;
    sender_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  void Shutdown(absl::Time deadline) {
    const uint64_t dropped_before = stats_->dropped(DropReason::kShutdown);
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    deadline_ = deadline;
    cv_.notify_all();
    if (started_) {
      WaitForSenderLocked(lock, deadline);
    } else {
      DropQueuedLocked();
    }
    lock.unlock();
    if (const uint64_t dropped = stats_->dropped(DropReason::kShutdown) - dropped_before;
        dropped > 0) {
      TK_LOG(Warning) << "OTLP exporter to " << options_.endpoint << ": " << dropped
                      << " spans not sent by the shutdown deadline, dropped";
    }
  }

 private:
  // Lets the sender flush until `deadline`, cancels a request still in flight then, and joins
  // the sender, which counts what is left.
  void WaitForSenderLocked(std::unique_lock<std::mutex>& lock, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (absl::Time now = absl::Now(); !sender_done_ && now < deadline; now = absl::Now()) {
      WaitFor(cv_, lock, deadline - now);
    }
    if (!sender_done_ && active_call_ != nullptr) active_call_->TryCancel();
    lock.unlock();
    sender_.join();
    lock.lock();
  }

  void Run() {
    for (std::vector<SpanRecord> batch = NextBatch(); !batch.empty(); batch = NextBatch()) {
      const auto n = static_cast<int64_t>(batch.size());
      Send(std::move(batch));
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ -= n;
      UpdateGaugeLocked();
    }
    std::lock_guard<std::mutex> lock(mu_);
    sender_done_ = true;
    cv_.notify_all();
  }

  // Blocks until a batch is due (full, old enough, or shutting down) and takes it. Empty when
  // the sender should exit: shutting down with nothing queued, or past the shutdown deadline (what
  // is queued is then counted dropped).
  std::vector<SpanRecord> NextBatch() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (stopping_) {
        if (queued_ == 0) return {};
        if (absl::Now() >= deadline_) {
          DropQueuedLocked();
          return {};
        }
        break;
      }
      if (queued_ >= options_.send_batch_size) break;
      if (queued_ == 0) {
        cv_.wait(lock);
        continue;
      }
      const absl::Duration age = clock_->Now() - queue_.front().enqueued;
      if (age >= options_.batch_timeout) break;
      // Bounded by batch_timeout so that a clock other than the wall clock is re-read.
      WaitFor(cv_, lock, std::min(options_.batch_timeout - age, options_.batch_timeout));
    }
    const int64_t n = std::min<int64_t>(queued_, options_.send_batch_max_size);
    std::vector<SpanRecord> batch;
    batch.reserve(n);
    while (static_cast<int64_t>(batch.size()) < n) {
      Chunk& front = queue_.front();
      const size_t take = std::min(front.spans.size() - front.next, n - batch.size());
      auto first = front.spans.begin() + static_cast<std::ptrdiff_t>(front.next);
      std::move(first, first + static_cast<std::ptrdiff_t>(take), std::back_inserter(batch));
      front.next += take;
      if (front.next == front.spans.size()) queue_.pop_front();
    }
    queued_ -= n;
    in_flight_ += n;
    return batch;
  }

  // Sends one batch until the backend acknowledges it or it is given up on (and counted).
  void Send(std::vector<SpanRecord> batch) {
    const auto n = static_cast<uint64_t>(batch.size());
    google::protobuf::Arena arena;
    auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportTraceServiceRequest>(&arena);
    {
      std::vector<const SpanRecord*> spans;
      spans.reserve(batch.size());
      for (const SpanRecord& s : batch) spans.push_back(&s);
      BuildRequest(spans, request);
    }
    batch = {};  // the request holds copies

    auto* response =
        google::protobuf::Arena::CreateMessage<otlp::ExportTraceServiceResponse>(&arena);
    const absl::Time first_attempt = clock_->Now();
    absl::Duration interval = options_.initial_interval;
    for (int attempt = 0;; ++attempt) {
      grpc::ClientContext context;
      for (const auto& [key, value] : headers_) context.AddMetadata(key, value);
      {
        std::lock_guard<std::mutex> lock(mu_);
        const absl::Time now = absl::Now();
        if (stopping_ && now >= deadline_) {
          Drop(DropReason::kShutdown, n);
          return;
        }
        absl::Time call_deadline = now + options_.timeout;
        if (stopping_) call_deadline = std::min(call_deadline, deadline_);
        context.set_deadline(absl::ToChronoTime(call_deadline));
        active_call_ = &context;
      }
      if (attempt > 0) stats_->retries.fetch_add(1, std::memory_order_relaxed);
      stats_->requests_sent.fetch_add(1, std::memory_order_relaxed);
      response->Clear();
      const grpc::Status status = stub_->Export(&context, *request, response);
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_call_ = nullptr;
      }

      if (status.ok()) {
        OnSuccess(*response, n);
        return;
      }
      stats_->requests_failed.fetch_add(1, std::memory_order_relaxed);
      if (!IsRetryable(status.error_code())) {
        Drop(DropReason::kPermanentError, n);
        if (permanent_errors_++ % kLogEveryN == 0) {
          TK_LOG(Error) << "OTLP export to " << options_.endpoint << " failed permanently with "
                        << CodeName(status.error_code()) << ": " << status.error_message()
                        << "; dropped " << n << " spans (" << permanent_errors_
                        << " permanent failures so far, logged once per " << kLogEveryN << ")";
        }
        return;
      }
      if (PastShutdownDeadline()) {  // e.g. the request was cancelled by Shutdown()
        Drop(DropReason::kShutdown, n);
        return;
      }
      if (!options_.retry_enabled) {
        Drop(DropReason::kRetriesExhausted, n);
        LogRetryableFailure(status, "retry disabled, dropped " + std::to_string(n) + " spans");
        return;
      }
      // The server's RetryInfo.retry_delay replaces the backoff interval for this wait.
      const std::optional<absl::Duration> server_delay =
          RetryDelayFromStatusDetails(status.error_details());
      const absl::Duration wait = server_delay.has_value() ? *server_delay : Jitter(interval);
      interval = std::min(interval * options_.multiplier, options_.max_interval);
      const absl::Duration elapsed = clock_->Now() - first_attempt;
      if (options_.max_elapsed_time > absl::ZeroDuration() &&
          elapsed + wait > options_.max_elapsed_time) {
        Drop(DropReason::kRetriesExhausted, n);
        TK_LOG(Error) << "OTLP export to " << options_.endpoint << " still failing after "
                      << absl::FormatDuration(elapsed) << " and " << attempt + 1 << " attempts ("
                      << CodeName(status.error_code()) << ": " << status.error_message()
                      << "); dropped " << n << " spans";
        ++failed_attempts_;
        return;
      }
      LogRetryableFailure(status, absl::StrCat("retrying in ", absl::FormatDuration(wait)));
      if (!WaitForRetry(absl::Now() + wait)) {
        Drop(DropReason::kShutdown, n);
        return;
      }
    }
  }

  void OnSuccess(const otlp::ExportTraceServiceResponse& response, uint64_t n) {
    const uint64_t rejected = std::min<uint64_t>(
        n,
        static_cast<uint64_t>(std::max<int64_t>(0, response.partial_success().rejected_spans())));
    stats_->spans_exported.fetch_add(n - rejected, std::memory_order_relaxed);
    if (rejected > 0) {
      Drop(DropReason::kRejected, rejected);
      if (rejections_++ % kLogEveryN == 0) {
        TK_LOG(Warning) << "OTLP backend " << options_.endpoint << " rejected " << rejected
                        << " of " << n << " spans: " << response.partial_success().error_message()
                        << " (logged once per " << kLogEveryN << ")";
      }
    }
    if (failed_attempts_ > 0) {
      TK_LOG(Info) << "OTLP export to " << options_.endpoint << " recovered after "
                   << failed_attempts_ << " failed attempts";
      failed_attempts_ = 0;
    }
  }

  // Warns on the first failure after a success; later ones of the same outage at debug level.
  void LogRetryableFailure(const grpc::Status& status, const std::string& what) {
    if (failed_attempts_++ == 0) {
      TK_LOG(Warning) << "OTLP export to " << options_.endpoint << " failed with "
                      << CodeName(status.error_code()) << ": " << status.error_message() << "; "
                      << what;
    } else {
      TK_LOG(Debug) << "OTLP export to " << options_.endpoint << " failed again ("
                    << failed_attempts_ << " attempts) with " << CodeName(status.error_code())
                    << ": " << status.error_message() << "; " << what;
    }
  }

  absl::Duration Jitter(absl::Duration interval) {
    const double f = options_.randomization_factor;
    std::uniform_real_distribution<double> factor(1.0 - f, 1.0 + f);
    return interval * factor(rng_);
  }

  bool PastShutdownDeadline() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_ && absl::Now() >= deadline_;
  }

  // Waits until `wake`, or less if shutdown's deadline comes first. False when that deadline has
  // passed: no retry may start.
  bool WaitForRetry(absl::Time wake) {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      const absl::Time now = absl::Now();
      if (stopping_ && now >= deadline_) return false;
      const absl::Time until = stopping_ ? std::min(wake, deadline_) : wake;
      if (now >= until) return true;
      WaitFor(cv_, lock, until - now);
    }
  }

  void Drop(DropReason reason, uint64_t n) {
    stats_->spans_dropped[static_cast<int>(reason)].fetch_add(n, std::memory_order_relaxed);
  }

  void DropQueuedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queued_ > 0) Drop(DropReason::kShutdown, static_cast<uint64_t>(queued_));
    queue_.clear();
    queued_ = 0;
    UpdateGaugeLocked();
  }

  void UpdateGaugeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    stats_->queue_spans.store(static_cast<uint64_t>(queued_ + in_flight_),
                              std::memory_order_relaxed);
  }

  const OtlpExporterOptions options_;
  Clock* const clock_;
  ExporterStats* const stats_;
  std::vector<std::pair<std::string, std::string>> headers_;  // keys lowercase
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<otlp::TraceService::Stub> stub_;

  // Used by the sender thread only.
  std::mt19937_64 rng_;
  uint64_t failed_attempts_ = 0;  // retryable failures since the last success
  uint64_t permanent_errors_ = 0;
  uint64_t rejections_ = 0;

  std::mutex mu_;
  // Signals new spans, shutdown, and the sender's exit.
  std::condition_variable cv_;
  std::deque<Chunk> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;     // spans in queue_
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // spans of the batch being sent
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool sender_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();  // wall clock
  grpc::ClientContext* active_call_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread sender_;
};

absl::StatusOr<std::unique_ptr<OtlpExporter>> OtlpExporter::Create(
    const OtlpExporterOptions& options, Clock* clock) {
  std::vector<std::string> problems = Validate(options);
  if (clock == nullptr) problems.push_back("OTLP exporter: clock must not be null");
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  }
  return std::unique_ptr<OtlpExporter>(new OtlpExporter(options, clock));
}

OtlpExporter::OtlpExporter(const OtlpExporterOptions& options, Clock* clock)
    : impl_(std::make_unique<Impl>(options, clock, &stats_)) {}

OtlpExporter::~OtlpExporter() = default;

absl::Status OtlpExporter::Consume(KeptTraces&& traces) {
  return impl_->Consume(std::move(traces));
}

absl::Status OtlpExporter::Start() { return impl_->Start(); }

void OtlpExporter::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }

}  // namespace tracekeep::exporter
