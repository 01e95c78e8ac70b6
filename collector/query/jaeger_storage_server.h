// Jaeger's remote storage API (jaeger.storage.v2 TraceReader and DependencyReader, see
// proto/jaeger/storage/v2/) served from tracekeep's store, so that a Jaeger v2 query service
// (deploy/jaeger-query.yaml) shows the kept traces directly.
#ifndef TRACEKEEP_COLLECTOR_QUERY_JAEGER_STORAGE_SERVER_H_
#define TRACEKEEP_COLLECTOR_QUERY_JAEGER_STORAGE_SERVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/security/access.h"
#include "storage/span_store.h"
#include "storage/trace_index.h"

namespace tracekeep::query {

struct JaegerStorageOptions {
  // host:port to listen on; port 0 picks a free port (see JaegerStorageServer::port()).
  // Default: 127.0.0.1:17271 (Jaeger's conventional remote storage port, loopback only).
  std::string endpoint = "127.0.0.1:17271";
  // Clients outside these networks get PERMISSION_DENIED. Default: empty (everyone who can reach
  // the endpoint).
  security::NetworkAllowList allowed_networks;
  // TLS when tls.cert_file is set; client certificates required when tls.client_ca_file is.
  // Default: plaintext.
  security::TlsSettings tls;
  // Traces a FindTraces returns when the request's search_depth is <= 0 (the Jaeger UI's limit).
  // Default: 20
  int default_search_depth = 20;
  // Traces a search may read to check its filters before it stops with what it found (a search
  // by an attribute that is not indexed reads every trace of the service in its time window).
  // Default: 10000
  uint64_t max_traces_examined = 10000;
  // The store's retention (storage.retention; zero = forever). Traces start-dated before now minus
  // this are not returned, found or counted in dependencies, even while compactions have not
  // removed them yet; services and operations are listed until their entries are removed.
  // Default: absl::ZeroDuration()
  absl::Duration retention = absl::ZeroDuration();
  // The clock of `retention`. Must outlive the server; nullptr = Clock::Real().
  // Default: nullptr
  const Clock* clock = nullptr;
  // A stream message stops before this many bytes: under gRPC's default 4 MiB receive limit,
  // which Jaeger's client cannot raise. A larger trace goes out in several consecutive messages.
  // Default: 3 MiB
  size_t max_chunk_bytes = size_t{3} << 20;
};

// Counters read by the metrics endpoint. Methods: GetTraces, GetServices, GetOperations,
// FindTraces, FindTraceIDs, GetDependencies (in that order).
struct JaegerStorageStats {
  static constexpr int kMethods = 6;
  static const char* const kMethodNames[kMethods];
  std::atomic<uint64_t> requests[kMethods] = {};
  std::atomic<uint64_t> failed[kMethods] = {};  // answered with an error status
  std::atomic<uint64_t> traces_returned{0};
  std::atomic<uint64_t> spans_returned{0};
  std::atomic<uint64_t> chunks_sent{0};
  std::atomic<uint64_t> traces_examined{0};     // read by searches to check their filters
  std::atomic<uint64_t> traces_skipped{0};      // ruled out by index summaries, unread
  std::atomic<uint64_t> searches_truncated{0};  // stopped at max_traces_examined
};

// Serves jaeger.storage.v2.TraceReader and DependencyReader:
//  - GetTraces: each known id's spans, one trace per stream message or several consecutive ones
//    (each under max_chunk_bytes); unknown ids skipped; time hints ignored. INVALID_ARGUMENT for
//    an id that does not have 16 bytes.
//  - GetServices, GetOperations (span_kind "" or server|client|producer|consumer|internal, else
//    INVALID_ARGUMENT).
//  - FindTraces / FindTraceIDs: collector/query/trace_search.h; service_name is required; an
//    inverted time window, negative or inverted durations are INVALID_ARGUMENT.
//  - GetDependencies: calls between services over [start_time, end_time] (end unset = now);
//    INVALID_ARGUMENT when end < start.
// Unset Timestamps (absent, or 0001-01-01T00:00:00Z as Jaeger sends them) count as absent.
class JaegerStorageServer {
 public:
  // Binds `options.endpoint` and starts serving. `store` and `index` must outlive the server.
  // Fails with kInvalidArgument for a malformed endpoint, kUnavailable when it cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<JaegerStorageServer>> Start(
      const JaegerStorageOptions& options, storage::SpanStore* store, storage::TraceIndex* index);
  ~JaegerStorageServer();
  JaegerStorageServer(const JaegerStorageServer&) = delete;
  JaegerStorageServer& operator=(const JaegerStorageServer&) = delete;

  int port() const;
  std::string address() const;
  const JaegerStorageStats& stats() const;
  // Stops accepting calls, lets running calls finish until `deadline`, then cancels the rest.
  // Idempotent.
  void Shutdown(absl::Time deadline);

 private:
  class Impl;
  explicit JaegerStorageServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracekeep::query

#endif  // TRACEKEEP_COLLECTOR_QUERY_JAEGER_STORAGE_SERVER_H_
