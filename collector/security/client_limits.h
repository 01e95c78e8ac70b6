// Per-client intake limits (spans/s, bytes/s) for authenticated OTLP clients, so that one noisy
// service is refused (with the retryable OTLP status) before it fills the intake shared by all.
// Also keeps each client's counters for the tracekeep_receiver_client_* metrics.
#ifndef TRACEKEEP_COLLECTOR_SECURITY_CLIENT_LIMITS_H_
#define TRACEKEEP_COLLECTOR_SECURITY_CLIENT_LIMITS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "collector/common/clock.h"

namespace tracekeep::security {

// Rates of one client. 0 = unlimited. A client may exceed a rate by one second's worth in a
// burst (token bucket of capacity = rate, refilled continuously).
struct RateLimit {
  double spans_per_second = 0;
  double bytes_per_second = 0;
  bool unlimited() const { return spans_per_second <= 0 && bytes_per_second <= 0; }
};

struct ClientLimitsOptions {
  // Applies to every client without an entry in `clients`. Default: unlimited.
  RateLimit default_limit;
  // By client name (the names of the OTLP token file).
  std::map<std::string, RateLimit> clients;
};

// Counters of one client, updated once per request.
struct ClientCounters {
  std::atomic<uint64_t> requests{0};          // authenticated requests
  std::atomic<uint64_t> spans{0};             // spans in them
  std::atomic<uint64_t> bytes{0};             // their size (decompressed)
  std::atomic<uint64_t> refused_requests{0};  // refused by the client's rate limit
  std::atomic<uint64_t> refused_spans{0};
};

// Thread-safe: one short lock per request.
class ClientLimits {
 public:
  ClientLimits(const ClientLimitsOptions& options, Clock* clock);

  // Counts a request of `spans` spans and `bytes` bytes from `client` and admits it, or refuses it
  // with kResourceExhausted (naming the client and the limit) when the client is over one of its
  // rates. A refused request takes nothing from the buckets. A request larger than a bucket is
  // admitted when the bucket is full (and empties it below zero: the client then waits).
  [[nodiscard]] absl::Status Admit(absl::string_view client, int64_t spans, int64_t bytes);

  // Makes sure `client`'s counters exist (so its series are exported from the start).
  void Register(absl::string_view client);
  // The counters of every client seen or registered so far, by name. Stable pointers.
  std::vector<std::pair<std::string, const ClientCounters*>> Counters() const;
  const ClientCounters* CountersOf(absl::string_view client) const;

 private:
  struct Bucket {
    double capacity = 0;  // = rate; 0 = unlimited
    double level = 0;
  };
  struct Client {
    RateLimit limit;
    Bucket spans;
    Bucket bytes;
    absl::Time refilled;
    ClientCounters counters;
  };
  Client& Get(absl::string_view client) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ClientLimitsOptions options_;
  Clock* const clock_;
  mutable absl::Mutex mu_;
  absl::node_hash_map<std::string, Client> clients_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tracekeep::security

#endif  // TRACEKEEP_COLLECTOR_SECURITY_CLIENT_LIMITS_H_
