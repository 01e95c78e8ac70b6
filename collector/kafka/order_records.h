// The cluster's order records, readable on every member: each order's owner publishes its record
// (a v1::Order, keyed by order id) into a records topic every time it writes it, and every member
// reads the whole topic into a table of its own. `tracekeepctl order get` on a member that does
// not own the order answers from that table. The topic should be compacted (cleanup.policy=
// compact): only the latest record of an order matters.
#ifndef TRACEKEEP_COLLECTOR_KAFKA_ORDER_RECORDS_H_
#define TRACEKEEP_COLLECTOR_KAFKA_ORDER_RECORDS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/pipeline/consumer.h"
#include "storage/kv_table.h"

namespace tracekeep::kafka {

struct OrderRecordsViewOptions {
  // Bootstrap brokers, host:port. Required.
  std::vector<std::string> brokers;
  // The records topic and its partition count. Required.
  std::string topic;
  int32_t partitions = 1;
  // Where the latest record of every order is kept (a column family). Not owned; must outlive
  // the view.
  storage::KvTable* table = nullptr;
  // Further librdkafka properties, set last (tests).
  std::map<std::string, std::string> client_properties;
};

struct OrderRecordsViewStats {
  std::atomic<uint64_t> records_read{0};
  std::atomic<uint64_t> write_errors{0};
};

// Reads every partition of the records topic from its beginning (no consumer group: every member
// reads all of it) into the table.
class OrderRecordsView final : public Component {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OrderRecordsView>> Create(
      const OrderRecordsViewOptions& options);
  ~OrderRecordsView() override;

  absl::Status Start() override;
  void Shutdown(absl::Time deadline) override;

  // Returns once every record the topic held when called has been read into the table, or
  // false at `deadline`: an owner taking over a partition first reads the records its previous
  // owner published.
  bool WaitCaughtUp(absl::Time deadline);

  // The latest record of `order_id` read so far (serialized v1::Order); nullopt when none.
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> Get(const std::string& order_id);
  const OrderRecordsViewStats& stats() const;

 private:
  class Impl;
  explicit OrderRecordsView(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracekeep::kafka

#endif  // TRACEKEEP_COLLECTOR_KAFKA_ORDER_RECORDS_H_
