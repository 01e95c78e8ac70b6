#include "collector/kafka/order_records.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "collector/common/logging.h"
#include "collector/kafka/client_conf.h"

namespace tracekeep::kafka {

class OrderRecordsView::Impl {
 public:
  explicit Impl(const OrderRecordsViewOptions& options) : options_(options) {}
  ~Impl() { Shutdown(absl::InfinitePast()); }

  absl::Status Init() {
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> made = ClientConf(
        "order records",
        {
            {"bootstrap.servers", absl::StrJoin(options_.brokers, ",")},
            // Required by the client; partitions are assigned by hand, the group is never joined.
            {"group.id", "tracekeep-order-records"},
            {"client.id", "tracekeep-order-records"},
            {"enable.auto.commit", "false"},
            {"enable.partition.eof", "false"},
            // Fresh high watermarks at least this often (WaitCaughtUp relies on it).
            {"fetch.wait.max.ms", "100"},
        },
        options_.client_properties);
    if (!made.ok()) return made.status();
    std::unique_ptr<RdKafka::Conf> conf = std::move(*made);
    std::string error;
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
    if (consumer_ == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("order records: cannot create the consumer: ", error));
    }
    return absl::OkStatus();
  }

  absl::Status Start() {
    std::vector<RdKafka::TopicPartition*> tps;
    for (int32_t p = 0; p < options_.partitions; ++p) {
      tps.push_back(
          RdKafka::TopicPartition::create(options_.topic, p, RdKafka::Topic::OFFSET_BEGINNING));
    }
    const RdKafka::ErrorCode err = consumer_->assign(tps);
    RdKafka::TopicPartition::destroy(tps);
    if (err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("order records: assigning topic \"",
                                                 options_.topic, "\": ", RdKafka::err2str(err)));
    }
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  void Shutdown(absl::Time) {
    if (shut_down_.exchange(true)) return;
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    if (consumer_ != nullptr) {
      consumer_->close();
      consumer_.reset();
    }
  }

  bool WaitCaughtUp(absl::Time deadline) {
    // The high watermarks as fetched after this call (fetch responses come at least every
    // fetch.wait.max.ms, 100 ms here), then until the table holds every record below them. Not
    // "until nothing is left to read": owners keep publishing.
    std::unique_lock<std::mutex> lock(mu_);
    const absl::Time fetched = absl::Now() + absl::Milliseconds(300);
    progress_.wait_until(lock, absl::ToChronoTime(std::min(fetched, deadline)),
                         [&] { return stop_.load(); });
    std::vector<int64_t> high(static_cast<size_t>(options_.partitions), -1);
    for (int32_t p = 0; p < options_.partitions; ++p) {
      int64_t low = -1;
      if (consumer_->get_watermark_offsets(options_.topic, p, &low, &high[p]) !=
              RdKafka::ERR_NO_ERROR ||
          high[p] <= low) {
        high[p] = -1;  // nothing fetched for it yet, or empty: nothing to wait for
      }
    }
    return progress_.wait_until(lock, absl::ToChronoTime(deadline), [&] {
      for (int32_t p = 0; p < options_.partitions; ++p) {
        if (high[p] >= 0 && read_through_[p] < high[p]) return false;
      }
      return true;
    });
  }

  absl::StatusOr<std::optional<std::string>> Get(const std::string& order_id) {
    return options_.table->Get(order_id);
  }
  const OrderRecordsViewStats& stats() const { return stats_; }

 private:
  void Run() {
    std::vector<storage::KvWrite> batch;
    while (!stop_.load()) {
      // What one poll brings, and what is already fetched, written as one batch.
      for (int timeout_ms = 100; batch.size() < 1000; timeout_ms = 0) {
        std::unique_ptr<RdKafka::Message> m(consumer_->consume(timeout_ms));
        if (m == nullptr || m->err() == RdKafka::ERR__TIMED_OUT) break;
        if (m->err() != RdKafka::ERR_NO_ERROR) {
          if (m->err() != last_error_) {
            TK_LOG(Warning) << "order records: consuming " << options_.topic << ": " << m->errstr();
          }
          last_error_ = m->err();
          break;
        }
        if (m->key() == nullptr) continue;
        stats_.records_read.fetch_add(1, std::memory_order_relaxed);
        batch.push_back(
            {*m->key(), std::string(static_cast<const char*>(m->payload()), m->len()), false});
      }
      if (!batch.empty()) {
        absl::Status s = options_.table->Write(batch);
        if (!s.ok() && stats_.write_errors.fetch_add(1, std::memory_order_relaxed) % 100 == 0) {
          TK_LOG(Warning) << "order records: writing " << batch.size() << " records: " << s;
        }
        batch.clear();
      }
      // Where each partition's reading stands (the next offset), once its records are written.
      std::vector<RdKafka::TopicPartition*> positions;
      for (int32_t p = 0; p < options_.partitions; ++p) {
        positions.push_back(RdKafka::TopicPartition::create(options_.topic, p));
      }
      if (consumer_->position(positions) == RdKafka::ERR_NO_ERROR) {
        std::lock_guard<std::mutex> lock(mu_);
        for (RdKafka::TopicPartition* tp : positions) {
          if (tp->offset() >= 0) read_through_[tp->partition()] = tp->offset();
        }
      }
      RdKafka::TopicPartition::destroy(positions);
      progress_.notify_all();
    }
  }

  const OrderRecordsViewOptions options_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  OrderRecordsViewStats stats_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> shut_down_{false};
  RdKafka::ErrorCode last_error_ = RdKafka::ERR_NO_ERROR;  // consumer thread only
  std::mutex mu_;
  std::condition_variable progress_;
  // By partition: the offset after the last record written to the table.
  std::vector<int64_t> read_through_ ABSL_GUARDED_BY(mu_) =
      std::vector<int64_t>(static_cast<size_t>(options_.partitions), 0);
};

absl::StatusOr<std::unique_ptr<OrderRecordsView>> OrderRecordsView::Create(
    const OrderRecordsViewOptions& options) {
  if (options.brokers.empty() || options.topic.empty() || options.table == nullptr ||
      options.partitions < 1) {
    return absl::InvalidArgumentError(
        "order records: brokers, topic, partitions and table must be set");
  }
  auto impl = std::make_unique<Impl>(options);
  absl::Status s = impl->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<OrderRecordsView>(new OrderRecordsView(std::move(impl)));
}

OrderRecordsView::OrderRecordsView(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OrderRecordsView::~OrderRecordsView() = default;
absl::Status OrderRecordsView::Start() { return impl_->Start(); }
void OrderRecordsView::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }
bool OrderRecordsView::WaitCaughtUp(absl::Time deadline) { return impl_->WaitCaughtUp(deadline); }
absl::StatusOr<std::optional<std::string>> OrderRecordsView::Get(const std::string& order_id) {
  return impl_->Get(order_id);
}
const OrderRecordsViewStats& OrderRecordsView::stats() const { return impl_->stats(); }

}  // namespace tracekeep::kafka
