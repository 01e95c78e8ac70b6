#include "collector/exporter/otlp_exporter.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
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
#include "collector/common/status_macros.h"
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
  if (o.queue_max_bytes <= 0) {
    add("exporters.otlp.sending_queue.storage.max_bytes: must be > 0, got ", o.queue_max_bytes);
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

// The spans of one Consume() call (one entry of the durable queue), sent in order; a batch may
// take part of a chunk.
struct Chunk {
  uint64_t seq = 0;  // entry in the durable queue; 0 without one
  size_t count = 0;  // spans in the chunk
  // Empty while the chunk waits on disk only (beyond queue_size_spans, or left by a previous
  // run): read back when a batch first takes from it.
  std::vector<SpanRecord> spans;
  bool in_memory = true;
  size_t next = 0;      // first span not yet taken
  absl::Time enqueued;  // by the injected clock: batch age
};

// What a batch took from the chunks of the durable queue: (seq, spans).
using BatchParts = std::vector<std::pair<uint64_t, size_t>>;

// Moves the spans of a chunk built from `traces` back to where they came from, leaving `traces`
// as the caller passed it.
void RestoreSpans(std::vector<SpanRecord>&& spans, KeptTraces* traces) {
  if (traces->size() == 1) {
    (*traces)[0].spans = std::move(spans);
    return;
  }
  auto from = spans.begin();
  for (KeptTrace& t : *traces) {
    std::move(from, from + static_cast<std::ptrdiff_t>(t.spans.size()), t.spans.begin());
    from += static_cast<std::ptrdiff_t>(t.spans.size());
  }
}

// Bytes a batch is assumed to take before the store says how many it took.
uint64_t EstimateBytes(const KeptTraces& traces) {
  uint64_t n = 0;
  for (const KeptTrace& t : traces) {
    for (const SpanRecord& s : t.spans) n += s.span.size() + 32;
  }
  return n;
}

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
    case DropReason::kStorageError:
      return "storage_error";
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
  Impl(const OtlpExporterOptions& options, Clock* clock, QueueStore* queue, ExporterStats* stats)
      : options_(options),
        clock_(clock),
        queue_store_(queue),
        stats_(stats),
        rng_(std::random_device{}()) {
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

  // Takes over what a previous run left in the durable queue: it is sent first.
  absl::Status Recover() {
    if (queue_store_ == nullptr) return absl::OkStatus();
    TK_ASSIGN_OR_RETURN(std::vector<QueueEntryInfo> entries, queue_store_->List());
    std::lock_guard<std::mutex> lock(mu_);
    int64_t spans = 0;
    for (const QueueEntryInfo& e : entries) {
      Chunk& chunk = queue_.emplace_back();
      chunk.seq = e.seq;
      chunk.count = static_cast<size_t>(e.span_count);
      chunk.in_memory = false;
      chunk.enqueued = absl::InfinitePast();  // due at once
      stored_[e.seq] = StoredEntry{chunk.count, e.bytes, e.enqueued};
      queue_bytes_ += e.bytes;
      spans += e.span_count;
      next_seq_ = e.seq + 1;
    }
    queued_ += spans;
    stats_->spans_recovered.store(static_cast<uint64_t>(spans), std::memory_order_relaxed);
    UpdateGaugeLocked();
    if (!entries.empty()) {
      TK_LOG(Info) << "OTLP exporter to " << options_.endpoint << ": " << spans << " spans in "
                   << entries.size() << " batches (" << queue_bytes_ << " bytes) left in "
                   << queue_store_->Describe() << " by the previous run; sending them first";
    }
    return absl::OkStatus();
  }

  absl::Status Consume(KeptTraces&& traces) {
    int64_t n = 0;
    for (const KeptTrace& t : traces) n += static_cast<int64_t>(t.spans.size());
    if (n == 0) return absl::OkStatus();
    bool wake_sender = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        Drop(DropReason::kShutdown, n);
        return absl::AbortedError(absl::StrCat("OTLP exporter to ", options_.endpoint,
                                               " is shut down; ", n, " spans dropped"));
      }
      if (queue_store_ == nullptr && queued_ + in_flight_ + n > options_.queue_size_spans) {
        Drop(DropReason::kQueueFull, n);
        return absl::ResourceExhaustedError(absl::StrCat(
            "OTLP exporter to ", options_.endpoint, ": queue full (", queued_ + in_flight_, " of ",
            options_.queue_size_spans, " spans); ", n, " spans dropped"));
      }
      if (queue_store_ != nullptr &&
          queue_bytes_ + EstimateBytes(traces) > static_cast<uint64_t>(options_.queue_max_bytes)) {
        Drop(DropReason::kQueueFull, n);
        return absl::ResourceExhaustedError(absl::StrCat(
            "OTLP exporter to ", options_.endpoint, ": durable queue full (", queue_bytes_,
            " of max_bytes ", options_.queue_max_bytes, " bytes, ", stored_.size(), " batches); ",
            n, " kept spans not queued for export (they are in the span store)"));
      }
      Chunk& chunk = queue_.emplace_back();
      chunk.enqueued = clock_->Now();
      chunk.count = static_cast<size_t>(n);
      if (traces.size() == 1) {
        chunk.spans = std::move(traces[0].spans);
      } else {
        chunk.spans.reserve(n);
        for (KeptTrace& t : traces) {
          std::move(t.spans.begin(), t.spans.end(), std::back_inserter(chunk.spans));
        }
      }
      if (queue_store_ != nullptr) {
        const uint64_t seq = next_seq_;
        const absl::Time now = absl::Now();
        absl::StatusOr<uint64_t> bytes = queue_store_->Append(seq, now, chunk.spans);
        if (!bytes.ok() && bytes.status().code() == absl::StatusCode::kResourceExhausted) {
          // The disk is full or the database refuses writes until it resumes: nothing was
          // stored. Hand the spans back untouched (kUnavailable) for the sampler to offer again
          // once space is back (the write guard counts the refusal).
          RestoreSpans(std::move(chunk.spans), &traces);
          queue_.pop_back();
          if (append_errors_++ % kLogEveryN == 0) {
            TK_LOG(Warning) << "OTLP exporter to " << options_.endpoint << ": " << bytes.status()
                            << "; " << n << " kept spans handed back to be offered again ("
                            << append_errors_ << " refused writes so far, logged once per "
                            << kLogEveryN << ")";
          }
          return absl::UnavailableError(absl::StrCat("OTLP exporter to ", options_.endpoint, ": ",
                                                     bytes.status().message(), "; ", n,
                                                     " spans not taken, offer them again"));
        }
        if (!bytes.ok()) {
          queue_.pop_back();
          Drop(DropReason::kQueueFull, n);
          if (append_errors_++ % kLogEveryN == 0) {
            TK_LOG(Error) << "OTLP exporter to " << options_.endpoint << ": " << bytes.status()
                          << "; " << n << " kept spans not queued for export (" << append_errors_
                          << " failed writes so far, logged once per " << kLogEveryN << ")";
          }
          return absl::Status(bytes.status().code(),
                              absl::StrCat("OTLP exporter to ", options_.endpoint, ": ",
                                           bytes.status().message(), "; ", n, " spans dropped"));
        }
        ++next_seq_;
        chunk.seq = seq;
        stored_[seq] = StoredEntry{chunk.count, *bytes, now};
        queue_bytes_ += *bytes;
        // Memory holds at most queue_size_spans spans; the rest waits on disk only.
        if (in_memory_spans_ + n > options_.queue_size_spans) {
          chunk.spans = {};
          chunk.in_memory = false;
        } else {
          in_memory_spans_ += n;
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
    if (queue_store_ != nullptr) {
      std::lock_guard<std::mutex> relock(mu_);
      if (!stored_.empty()) {
        TK_LOG(Info) << "OTLP exporter to " << options_.endpoint << ": " << stored_.size()
                     << " batches (" << queue_bytes_ << " bytes) stay in "
                     << queue_store_->Describe() << " for the next start";
      }
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
    BatchParts parts;
    for (std::vector<SpanRecord> batch = NextBatch(&parts); !batch.empty();
         batch = NextBatch(&parts)) {
      const auto n = static_cast<int64_t>(batch.size());
      const bool resolved = Send(std::move(batch));
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ -= n;
      if (resolved) ResolveLocked(parts);
      UpdateGaugeLocked();
    }
    std::lock_guard<std::mutex> lock(mu_);
    sender_done_ = true;
    cv_.notify_all();
  }

  // Blocks until a batch is due (full, old enough, or shutting down) and takes it. Empty when
  // the sender should exit: shutting down with nothing queued, or past the shutdown deadline (what
  // is queued is then counted dropped).
  std::vector<SpanRecord> NextBatch(BatchParts* parts) {
    parts->clear();
    std::unique_lock<std::mutex> lock(mu_);
    std::vector<SpanRecord> batch;
    while (batch.empty()) {
      if (!WaitForBatchLocked(lock)) return {};
      const auto max = static_cast<size_t>(options_.send_batch_max_size);
      batch.reserve(std::min<size_t>(max, static_cast<size_t>(queued_)));
      while (batch.size() < max && !queue_.empty()) {
        Chunk& front = queue_.front();
        if (!front.in_memory && !LoadLocked(&front)) {  // unreadable: given up on, and counted
          queued_ -= static_cast<int64_t>(front.count);
          queue_.pop_front();
          continue;
        }
        const size_t take = std::min(front.count - front.next, max - batch.size());
        auto first = front.spans.begin() + static_cast<std::ptrdiff_t>(front.next);
        std::move(first, first + static_cast<std::ptrdiff_t>(take), std::back_inserter(batch));
        front.next += take;
        if (front.seq != 0) {
          parts->emplace_back(front.seq, take);
          in_memory_spans_ -= static_cast<int64_t>(take);
        }
        if (front.next == front.count) queue_.pop_front();
        queued_ -= static_cast<int64_t>(take);
      }
      in_flight_ += static_cast<int64_t>(batch.size());
      UpdateGaugeLocked();
    }
    return batch;
  }

  // Blocks until a batch is due. False when the sender should exit.
  bool WaitForBatchLocked(std::unique_lock<std::mutex>& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (true) {
      if (stopping_) {
        if (queued_ == 0) return false;
        if (absl::Now() >= deadline_) {
          DropQueuedLocked();
          return false;
        }
        return true;
      }
      if (queued_ >= options_.send_batch_size) return true;
      if (queued_ == 0) {
        cv_.wait(lock);
        continue;
      }
      const absl::Duration age = clock_->Now() - queue_.front().enqueued;
      if (age >= options_.batch_timeout) return true;
      // Bounded by batch_timeout so that a clock other than the wall clock is re-read.
      WaitFor(cv_, lock, std::min(options_.batch_timeout - age, options_.batch_timeout));
    }
  }

  // Reads a chunk that waits on disk only. False when it cannot be read: its spans are then
  // counted dropped (storage_error) and its entry removed.
  bool LoadLocked(Chunk* chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<std::vector<SpanRecord>> spans = queue_store_->Read(chunk->seq);
    if (spans.ok() && spans->size() == chunk->count) {
      chunk->spans = std::move(*spans);
      chunk->in_memory = true;
      in_memory_spans_ += static_cast<int64_t>(chunk->count);
      return true;
    }
    const size_t lost = chunk->count - chunk->next;
    TK_LOG(Error) << "OTLP exporter to " << options_.endpoint << ": cannot read back batch "
                  << chunk->seq << ": "
                  << (spans.ok()
                          ? absl::StrCat("holds ", spans->size(), " spans, expected ", chunk->count)
                          : spans.status().ToString())
                  << "; " << lost << " spans dropped";
    Drop(DropReason::kStorageError, lost);
    ResolveLocked({{chunk->seq, lost}});
    return false;
  }

  // The backend took (or finally refused) these spans: entries all of whose spans are resolved
  // are removed from the durable queue.
  void ResolveLocked(const BatchParts& parts) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& [seq, n] : parts) {
      auto it = stored_.find(seq);
      if (it == stored_.end()) continue;
      it->second.unresolved -= std::min(n, it->second.unresolved);
      if (it->second.unresolved > 0) continue;
      if (absl::Status s = queue_store_->Remove(seq); !s.ok()) {
        // It stays on disk and is sent again after a restart: a duplicate, not a loss.
        TK_LOG(Error) << "OTLP exporter to " << options_.endpoint << ": " << s;
      }
      queue_bytes_ -= std::min(queue_bytes_, it->second.bytes);
      stored_.erase(it);
    }
  }

  // Sends one batch until the backend acknowledges it or it is given up on (and counted): true.
  // False when shutdown's deadline stopped it: without a durable queue the spans are then counted
  // dropped (shutdown); with one they stay queued for the next start.
  bool Send(std::vector<SpanRecord> batch) {
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
          DropAtShutdown(n);
          return false;
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
        return true;
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
        return true;
      }
      if (PastShutdownDeadline()) {  // e.g. the request was cancelled by Shutdown()
        DropAtShutdown(n);
        return false;
      }
      if (!options_.retry_enabled) {
        Drop(DropReason::kRetriesExhausted, n);
        LogRetryableFailure(status, "retry disabled, dropped " + std::to_string(n) + " spans");
        return true;
      }
      // The server's RetryInfo.retry_delay replaces the backoff interval for this wait.
      const std::optional<absl::Duration> server_delay =
          RetryDelayFromStatusDetails(status.error_details());
      const absl::Duration wait = server_delay.has_value() ? *server_delay : Jitter(interval);
      interval = std::min(interval * options_.multiplier, options_.max_interval);
      const absl::Duration elapsed = clock_->Now() - first_attempt;
      if (queue_store_ == nullptr && options_.max_elapsed_time > absl::ZeroDuration() &&
          elapsed + wait > options_.max_elapsed_time) {
        Drop(DropReason::kRetriesExhausted, n);
        TK_LOG(Error) << "OTLP export to " << options_.endpoint << " still failing after "
                      << absl::FormatDuration(elapsed) << " and " << attempt + 1 << " attempts ("
                      << CodeName(status.error_code()) << ": " << status.error_message()
                      << "); dropped " << n << " spans";
        ++failed_attempts_;
        return true;
      }
      LogRetryableFailure(status, absl::StrCat("retrying in ", absl::FormatDuration(wait)));
      if (!WaitForRetry(absl::Now() + wait)) {
        DropAtShutdown(n);
        return false;
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

  // Spans not sent by the shutdown deadline: lost without a durable queue, kept in it otherwise.
  void DropAtShutdown(uint64_t n) {
    if (queue_store_ == nullptr) Drop(DropReason::kShutdown, n);
  }

  void DropQueuedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queued_ > 0) DropAtShutdown(static_cast<uint64_t>(queued_));
    queue_.clear();
    queued_ = 0;
    UpdateGaugeLocked();
  }

  void UpdateGaugeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    stats_->queue_spans.store(static_cast<uint64_t>(queued_ + in_flight_),
                              std::memory_order_relaxed);
    if (queue_store_ == nullptr) return;
    stats_->queue_bytes.store(queue_bytes_, std::memory_order_relaxed);
    stats_->queue_batches.store(stored_.size(), std::memory_order_relaxed);
    stats_->oldest_enqueued_unix_nanos.store(
        stored_.empty() ? 0 : absl::ToUnixNanos(stored_.begin()->second.enqueued),
        std::memory_order_relaxed);
  }

  // An entry of the durable queue, until all its spans are acknowledged or given up on.
  struct StoredEntry {
    size_t unresolved = 0;  // spans not yet acknowledged or given up on
    uint64_t bytes = 0;
    absl::Time enqueued;  // wall clock
  };

  const OtlpExporterOptions options_;
  Clock* const clock_;
  QueueStore* const queue_store_;  // null: in memory only
  ExporterStats* const stats_;
  std::vector<std::pair<std::string, std::string>> headers_;  // keys lowercase
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<otlp::TraceService::Stub> stub_;

  // Used by the sender thread only.
  std::mt19937_64 rng_;
  uint64_t failed_attempts_ = 0;  // retryable failures since the last success
  uint64_t permanent_errors_ = 0;
  uint64_t rejections_ = 0;
  uint64_t append_errors_ = 0;  // under mu_

  std::mutex mu_;
  // Signals new spans, shutdown, and the sender's exit.
  std::condition_variable cv_;
  std::deque<Chunk> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;     // spans in queue_
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // spans of the batch being sent
  // Durable queue: entries by seq, their total stored bytes, spans held in chunks in memory.
  std::map<uint64_t, StoredEntry> stored_ ABSL_GUARDED_BY(mu_);
  uint64_t queue_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t in_memory_spans_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool sender_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();  // wall clock
  grpc::ClientContext* active_call_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread sender_;
};

absl::StatusOr<std::unique_ptr<OtlpExporter>> OtlpExporter::Create(
    const OtlpExporterOptions& options, Clock* clock, QueueStore* queue) {
  std::vector<std::string> problems = Validate(options);
  if (clock == nullptr) problems.push_back("OTLP exporter: clock must not be null");
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  }
  std::unique_ptr<OtlpExporter> exporter(new OtlpExporter(options, clock, queue));
  TK_RETURN_IF_ERROR(exporter->impl_->Recover());
  return exporter;
}

OtlpExporter::OtlpExporter(const OtlpExporterOptions& options, Clock* clock, QueueStore* queue)
    : impl_(std::make_unique<Impl>(options, clock, queue, &stats_)) {}

OtlpExporter::~OtlpExporter() = default;

absl::Status OtlpExporter::Consume(KeptTraces&& traces) {
  return impl_->Consume(std::move(traces));
}

absl::Status OtlpExporter::Start() { return impl_->Start(); }

void OtlpExporter::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }

}  // namespace tracekeep::exporter
