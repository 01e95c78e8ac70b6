// An order's record as the tracker keeps it in memory: the fields of v1::Order (order.proto) in
// flat structs, names (states, services, attribute keys) as numbers into the tracker shard's
// NameTable and ids inline. A state event is one 48-byte struct instead of a message with four
// heap strings, so recording and judging an order allocates little and chases no pointers. The
// record is converted to v1::Order only to be written, published or shown.
#ifndef TRACEKEEP_COLLECTOR_ORDERS_ORDER_RECORD_H_
#define TRACEKEEP_COLLECTOR_ORDERS_ORDER_RECORD_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "collector/common/ids.h"
#include "tracekeep/orders/v1/order.pb.h"

namespace tracekeep::orders {

using ::tracekeep::SpanIdBytes;
using ::tracekeep::TraceIdBytes;

using NameId = uint16_t;
inline constexpr NameId kNoName = 0xffff;

// The names records of one tracker shard refer to by number. The configured states come first,
// numbered as in OrdersConfig::states, so a state is known when its number is below their count;
// then every other state, service name and attribute key met, in the order met. Bounded: past
// kMaxNames distinct names, further ones all read as kOverflowName (a client inventing states or
// service names cannot grow it without end; anomaly details keep the real text). Not
// thread-safe: used under the shard's lock.
class NameTable {
 public:
  static constexpr size_t kMaxNames = 0xfff0;
  static constexpr char kOverflowName[] = "(too many distinct names)";

  explicit NameTable(const std::vector<std::string>& first);
  NameTable(const NameTable&) = delete;
  NameTable& operator=(const NameTable&) = delete;

  // The number of `name`, added when new.
  NameId Intern(absl::string_view name);
  // The number of `name`, or kNoName when it was never interned.
  NameId Find(absl::string_view name) const;
  // The name of `id` ("" for kNoName).
  const std::string& Name(NameId id) const;
  size_t size() const { return names_.size(); }

 private:
  std::deque<std::string> names_;  // stable addresses: the index holds views of them
  absl::flat_hash_map<absl::string_view, NameId> index_;
  NameId overflow_ = kNoName;
};

struct OrderRecord {
  struct State {
    int64_t time_unix_nanos = 0;
    int64_t arrival_unix_nanos = 0;
    TraceIdBytes trace_id;
    SpanIdBytes span_id;
    NameId state = kNoName;
    NameId service = kNoName;
  };
  struct Invariant {
    std::string value;
    int64_t time_unix_nanos = 0;
    TraceIdBytes trace_id;
    NameId key = kNoName;
    NameId service = kNoName;
  };
  struct Anomaly {
    std::string type;
    std::string detail;
    int64_t detected_unix_nanos = 0;
  };

  std::string order_id;
  std::vector<State> states;  // in arrival order
  std::vector<Invariant> invariants;
  std::vector<TraceIdBytes> trace_ids;
  std::vector<TraceIdBytes> kept_trace_ids;
  std::vector<Anomaly> anomalies;
  int64_t first_arrival_unix_nanos = 0;
  int64_t last_arrival_unix_nanos = 0;
  int64_t resolved_unix_nanos = 0;
  int64_t current_state_unix_nanos = 0;
  int64_t deadline_unix_nanos = 0;
  v1::Order::Resolution resolution = v1::Order::ACTIVE;
  NameId current_state = kNoName;
  bool force_keep = false;

  bool HasAnomaly(absl::string_view type) const {
    for (const Anomaly& a : anomalies) {
      if (a.type == type) return true;
    }
    return false;
  }

  void ToProto(const NameTable& names, v1::Order* out) const;
  // Appends what ToProto(names).SerializeAsString() gives, byte for byte, without building the
  // message (the tracker writes thousands of records a second; the message's strings and
  // sub-messages were most of the cost of writing one).
  void AppendSerialized(const NameTable& names, std::string* out) const;
  v1::Order ToProto(const NameTable& names) const {
    v1::Order o;
    ToProto(names, &o);
    return o;
  }
  // The names of `o` are interned into `names`.
  static OrderRecord FromProto(const v1::Order& o, NameTable* names);
};

}  // namespace tracekeep::orders

#endif  // TRACEKEEP_COLLECTOR_ORDERS_ORDER_RECORD_H_
