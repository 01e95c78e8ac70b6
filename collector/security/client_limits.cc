#include "collector/security/client_limits.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tracekeep::security {

ClientLimits::ClientLimits(const ClientLimitsOptions& options, Clock* clock)
    : options_(options), clock_(clock) {}

ClientLimits::Client& ClientLimits::Get(absl::string_view name) {
  auto it = clients_.find(name);
  if (it != clients_.end()) return it->second;
  Client& c = clients_[std::string(name)];
  auto limit = options_.clients.find(std::string(name));
  c.limit = limit != options_.clients.end() ? limit->second : options_.default_limit;
  c.spans.capacity = c.spans.level = std::max(0.0, c.limit.spans_per_second);
  c.bytes.capacity = c.bytes.level = std::max(0.0, c.limit.bytes_per_second);
  c.refilled = clock_->Now();
  return c;
}

void ClientLimits::Register(absl::string_view client) {
  absl::MutexLock lock(&mu_);
  Get(client);
}

absl::Status ClientLimits::Admit(absl::string_view name, int64_t spans, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  Client& c = Get(name);
  c.counters.requests.fetch_add(1, std::memory_order_relaxed);
  c.counters.spans.fetch_add(static_cast<uint64_t>(spans), std::memory_order_relaxed);
  c.counters.bytes.fetch_add(static_cast<uint64_t>(bytes), std::memory_order_relaxed);
  if (c.limit.unlimited()) return absl::OkStatus();
  const absl::Time now = clock_->Now();
  const double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - c.refilled));
  c.refilled = now;
  for (Bucket* b : {&c.spans, &c.bytes}) {
    if (b->capacity > 0) b->level = std::min(b->capacity, b->level + elapsed * b->capacity);
  }
  const bool spans_over = c.spans.capacity > 0 && c.spans.level <= 0;
  const bool bytes_over = c.bytes.capacity > 0 && c.bytes.level <= 0;
  if (spans_over || bytes_over) {
    c.counters.refused_requests.fetch_add(1, std::memory_order_relaxed);
    c.counters.refused_spans.fetch_add(static_cast<uint64_t>(spans), std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        spans_over ? absl::StrCat("client \"", name, "\" is over its limit of ",
                                  c.limit.spans_per_second, " spans/s, retry later")
                   : absl::StrCat("client \"", name, "\" is over its limit of ",
                                  c.limit.bytes_per_second, " bytes/s, retry later"));
  }
  if (c.spans.capacity > 0) c.spans.level -= static_cast<double>(spans);
  if (c.bytes.capacity > 0) c.bytes.level -= static_cast<double>(bytes);
  return absl::OkStatus();
}

std::vector<std::pair<std::string, const ClientCounters*>> ClientLimits::Counters() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, const ClientCounters*>> out;
  for (const auto& [name, c] : clients_) out.emplace_back(name, &c.counters);
  std::sort(out.begin(), out.end());
  return out;
}

const ClientCounters* ClientLimits::CountersOf(absl::string_view client) const {
  absl::MutexLock lock(&mu_);
  auto it = clients_.find(client);
  return it == clients_.end() ? nullptr : &it->second.counters;
}

}  // namespace tracekeep::security
