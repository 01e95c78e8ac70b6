#include "collector/kafka/kafka_receiver.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/ids.h"
#include "collector/common/logging.h"
#include "collector/kafka/client_conf.h"
#include "collector/kafka/kafka_gateway.h"
#include "collector/kafka/offset_tracker.h"
#include "collector/pipeline/otlp_convert.h"

namespace tracekeep::kafka {

const char* SkipReasonName(SkipReason reason) {
  switch (reason) {
    case SkipReason::kMalformed:
      return "malformed";
    case SkipReason::kRefused:
      return "refused";
    case SkipReason::kCount:
      break;
  }
  return "unknown";
}

namespace {

using TopicPartitionKey = std::pair<std::string, int32_t>;

int ToMillis(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

// Owns the TopicPartition objects of a list the client API hands around as raw pointers.
struct PartitionList {
  std::vector<RdKafka::TopicPartition*> list;
  PartitionList() = default;
  PartitionList(const PartitionList&) = delete;
  PartitionList& operator=(const PartitionList&) = delete;
  ~PartitionList() { RdKafka::TopicPartition::destroy(list); }
};

}  // namespace

class KafkaReceiver::Impl final : public RdKafka::RebalanceCb {
 public:
  Impl(const KafkaReceiverOptions& options, SpanIntake* intake)
      : options_(options), intake_(intake) {}

  ~Impl() override { Shutdown(absl::InfiniteFuture()); }

  absl::Status Init() {
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> made =
        ClientConf("kafka receiver",
                   {
                       {"bootstrap.servers", absl::StrJoin(options_.brokers, ",")},
                       {"group.id", options_.group_id},
                       {"client.id", "tracekeep"},
                       {"partition.assignment.strategy", "cooperative-sticky"},
                       // Offsets are committed by hand, only up to records whose spans are durable.
                       {"enable.auto.commit", "false"},
                       {"enable.auto.offset.store", "false"},
                       {"auto.offset.reset", options_.start_at_earliest ? "earliest" : "latest"},
                       {"enable.partition.eof", "false"},
                       {"session.timeout.ms",
                        std::to_string(absl::ToInt64Milliseconds(options_.session_timeout))},
                       {"heartbeat.interval.ms",
                        std::to_string(std::max<int64_t>(
                            100, absl::ToInt64Milliseconds(options_.session_timeout) / 10))},
                   },
                   options_.client_properties);
    if (!made.ok()) return made.status();
    std::unique_ptr<RdKafka::Conf> conf = std::move(*made);
    std::string error;
    if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(this), error) !=
        RdKafka::Conf::CONF_OK) {
      return absl::InternalError(absl::StrCat("kafka receiver: rebalance_cb: ", error));
    }
    if (!options_.rekey_topic.empty()) {
      KafkaGatewayOptions g;
      g.brokers = options_.brokers;
      g.topic = options_.rekey_topic;
      g.client_properties = options_.client_properties;
      for (const char* consumer_only : {"session.timeout.ms", "heartbeat.interval.ms"}) {
        g.client_properties.erase(consumer_only);
      }
      absl::StatusOr<std::unique_ptr<KafkaGateway>> rekey = KafkaGateway::Create(g);
      if (!rekey.ok()) return rekey.status();
      rekey_ = std::move(*rekey);
    }
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
    if (consumer_ == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("kafka receiver: cannot create the consumer: ", error));
    }
    return absl::OkStatus();
  }

  absl::Status Start() {
    if (rekey_ != nullptr) {
      absl::Status started = rekey_->Start();
      if (!started.ok()) return started;
    }
    std::vector<std::string> topics = {options_.topic};
    if (!options_.rekey_topic.empty()) topics.push_back(options_.rekey_topic);
    const RdKafka::ErrorCode err = consumer_->subscribe(topics);
    if (err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("kafka receiver: subscribing to topic \"",
                                                 options_.topic, "\": ", RdKafka::err2str(err)));
    }
    started_ = true;
    TK_LOG(Info) << "kafka receiver: consuming topic " << options_.topic << " as group "
                 << options_.group_id << " from " << absl::StrJoin(options_.brokers, ",");
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  void Shutdown(absl::Time deadline) {
    if (shut_down_.exchange(true)) return;
    stop_.store(true);
    // The consumer thread's last commit and leaving the group (the revocation that close()
    // delivers commits durable progress) talk to Kafka: with Kafka gone they wait for the
    // client's own timeouts (session, socket: up to a minute). They run on a thread of their own,
    // waited for until `deadline`; past it the client is abandoned to the process's exit, its
    // last progress uncommitted (the partitions' next owner replays from the last commit).
    auto closed = std::make_shared<std::promise<void>>();
    std::future<void> done = closed->get_future();
    std::thread closer([this, closed] {
      if (thread_.joinable()) thread_.join();
      if (consumer_ != nullptr && started_) consumer_->close();
      closed->set_value();
    });
    if (done.wait_until(absl::ToChronoTime(deadline)) != std::future_status::ready) {
      abandoned_.store(true);
      closer.detach();
      TK_LOG(Warning) << "kafka receiver: leaving group " << options_.group_id
                      << " did not finish by the shutdown deadline (Kafka unreachable?); the "
                         "last progress is not committed, the next owner replays it";
      return;
    }
    closer.join();
    consumer_.reset();
    if (rekey_ != nullptr) rekey_->Shutdown(deadline);
  }

  // Shutdown gave up waiting for the client: it may still call back into this object.
  bool abandoned() const { return abandoned_.load(); }

  const KafkaReceiverStats& stats() const { return stats_; }
  std::string MemberId() const {
    std::lock_guard<std::mutex> lock(status_mu_);
    return member_id_;
  }

  std::vector<PartitionStatus> Partitions() const {
    std::lock_guard<std::mutex> lock(status_mu_);
    std::vector<PartitionStatus> out;
    for (const auto& [p, s] : status_) out.push_back(s);
    return out;
  }
  PartitionStatus Partition(const std::string& topic, int32_t partition) const {
    std::lock_guard<std::mutex> lock(status_mu_);
    auto it = status_.find({topic, partition});
    if (it != status_.end()) return it->second;
    PartitionStatus s;
    s.topic = topic;
    s.partition = partition;
    return s;
  }

  // Called by the client inside consume()/close(), on the consumer thread.
  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    stats_.rebalances.fetch_add(1, std::memory_order_relaxed);
    const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      for (RdKafka::TopicPartition* tp : partitions) Assigned({tp->topic(), tp->partition()});
      RdKafka::Error* error = nullptr;
      if (cooperative) {
        error = consumer->incremental_assign(partitions);
      } else {
        consumer->assign(partitions);
      }
      if (error != nullptr) {
        TK_LOG(Error) << "kafka receiver: assigning partitions: " << error->str();
        delete error;
      }
      {
        std::lock_guard<std::mutex> lock(status_mu_);
        member_id_ = consumer->memberid();
      }
      TK_LOG(Info) << "kafka receiver: assigned " << Describe(partitions) << " as member "
                   << consumer->memberid();
      return;
    }
    // Revoked (or lost): commit what is durable unless the partitions already have a new owner,
    // then forget their progress; the new owner replays the rest.
    const bool lost = consumer->assignment_lost();
    if (!lost) Commit(&partitions);
    for (RdKafka::TopicPartition* tp : partitions) Revoked({tp->topic(), tp->partition()});
    RdKafka::Error* error = nullptr;
    if (cooperative) {
      error = consumer->incremental_unassign(partitions);
    } else {
      consumer->unassign();
    }
    if (error != nullptr) {
      TK_LOG(Error) << "kafka receiver: unassigning partitions: " << error->str();
      delete error;
    }
    TK_LOG(Info) << "kafka receiver: " << (lost ? "lost " : "revoked ") << Describe(partitions);
  }

 private:
  enum class Handled { kDone, kRetry };

  std::string Describe(const std::vector<RdKafka::TopicPartition*>& partitions) const {
    std::vector<std::string> parts;
    for (RdKafka::TopicPartition* tp : partitions) {
      parts.push_back(absl::StrCat(tp->topic(), "/", tp->partition()));
    }
    return parts.empty() ? "no partitions" : absl::StrJoin(parts, ", ");
  }

  void Assigned(const TopicPartitionKey& tp) {
    progress_.erase(tp);
    progress_.emplace(tp, PartitionProgress());
    bool is_new = false;
    {
      std::lock_guard<std::mutex> lock(status_mu_);
      auto [it, inserted] = status_.try_emplace(tp);
      is_new = inserted;
      it->second.topic = tp.first;
      it->second.partition = tp.second;
      it->second.assigned = true;
      it->second.position = -1;
      it->second.high_watermark = -1;
    }
    if (is_new && options_.on_new_partition) options_.on_new_partition(tp.first, tp.second);
    if (options_.on_assigned) options_.on_assigned(tp.first, tp.second);
  }

  void Revoked(const TopicPartitionKey& tp) {
    progress_.erase(tp);
    // Handled but not flushed: never counted as done here (the new owner replays them), and
    // never applied to a later assignment of the partition.
    unflushed_.erase(std::remove_if(unflushed_.begin(), unflushed_.end(),
                                    [&tp](const HandledRecord& r) { return r.partition == tp; }),
                     unflushed_.end());
    // Records already fetched for it are the new owner's to handle.
    std::deque<std::unique_ptr<RdKafka::Message>> kept;
    for (auto& m : backlog_) {
      if (m->partition() != tp.second || m->topic_name() != tp.first) kept.push_back(std::move(m));
    }
    backlog_.swap(kept);
    {
      std::lock_guard<std::mutex> lock(status_mu_);
      auto it = status_.find(tp);
      if (it != status_.end()) it->second.assigned = false;
    }
    // After an abandoned shutdown the owner of the callback may be gone.
    if (options_.on_revoked && !abandoned_.load()) options_.on_revoked(tp.first, tp.second);
  }

  absl::Time DurableBefore() const {
    return options_.durable_before ? options_.durable_before() : absl::InfiniteFuture();
  }

  // Commits the durable progress of `only` (all owned partitions when null).
  void Commit(const std::vector<RdKafka::TopicPartition*>* only) {
    const absl::Time durable_before = DurableBefore();
    PartitionList offsets;
    for (auto& [key, progress] : progress_) {
      if (only != nullptr) {
        bool listed = false;
        for (RdKafka::TopicPartition* tp : *only) {
          listed |= tp->partition() == key.second && tp->topic() == key.first;
        }
        if (!listed) continue;
      }
      const int64_t offset = progress.Committable(durable_before);
      if (offset >= 0) {
        offsets.list.push_back(RdKafka::TopicPartition::create(key.first, key.second, offset));
      }
      std::lock_guard<std::mutex> lock(status_mu_);
      status_[key].oldest_uncommitted = progress.oldest_waiting();
    }
    if (offsets.list.empty()) return;
    const RdKafka::ErrorCode err = consumer_->commitSync(offsets.list);
    for (RdKafka::TopicPartition* tp : offsets.list) {
      const RdKafka::ErrorCode e = err != RdKafka::ERR_NO_ERROR ? err : tp->err();
      if (e != RdKafka::ERR_NO_ERROR) {
        stats_.commit_errors.fetch_add(1, std::memory_order_relaxed);
        TK_LOG(Warning) << "kafka receiver: committing offset " << tp->offset() << " of "
                        << tp->topic() << "/" << tp->partition() << ": " << RdKafka::err2str(e);
        continue;
      }
      stats_.commits.fetch_add(1, std::memory_order_relaxed);
      const TopicPartitionKey key{tp->topic(), tp->partition()};
      auto it = progress_.find(key);
      if (it != progress_.end()) it->second.Committed(tp->offset());
      std::lock_guard<std::mutex> lock(status_mu_);
      status_[key].committed = tp->offset();
    }
  }

  // Offers the spans of one record to the intake. kRetry: the intake is over capacity or
  // shutting down; offer the same record again later.
  Handled Handle(const RdKafka::Message& m) {
    auto it = progress_.find({m.topic_name(), m.partition()});
    if (it == progress_.end()) return Handled::kDone;  // revoked meanwhile
    PartitionProgress& progress = it->second;
    if (progress.position() >= 0 && m.offset() < progress.position()) {
      return Handled::kDone;  // fetched again after a pause: handled already
    }
    for (auto r = unflushed_.rbegin(); r != unflushed_.rend(); ++r) {
      if (r->partition.second == m.partition() && r->partition.first == m.topic_name()) {
        if (m.offset() <= r->offset) return Handled::kDone;  // handled, not flushed yet
        break;
      }
    }
    const absl::string_view payload(static_cast<const char*>(m.payload()), m.len());
    const int64_t spans = CountWireSpans(payload);
    const absl::Status precheck = intake_->Precheck(spans);
    if (IsRetryable(precheck)) return Handled::kRetry;

    absl::StatusOr<SplitResult> split = SplitWireRequest(payload);
    if (!split.ok()) {
      stats_.records_consumed.fetch_add(1, std::memory_order_relaxed);
      Skip(m, SkipReason::kMalformed, split.status().message());
      MarkHandled(m, absl::InfinitePast(), /*offered=*/false);
      return Handled::kDone;
    }
    absl::Time accepted_at = absl::InfinitePast();
    const int64_t valid = split->accepted_spans;
    if (valid > 0 && NeedsRekey(m, *split)) {
      // Durable once Kafka acknowledged the per-trace records: nothing to wait for after that.
      absl::Status produced = rekey_->Offer(std::move(split->traces), valid);
      if (IsRetryable(produced)) return Handled::kRetry;
      stats_.records_consumed.fetch_add(1, std::memory_order_relaxed);
      stats_.spans_received.fetch_add(static_cast<uint64_t>(valid + split->rejected()),
                                      std::memory_order_relaxed);
      if (!produced.ok()) {
        Skip(m, SkipReason::kRefused, produced.message());
      } else {
        stats_.records_rekeyed.fetch_add(1, std::memory_order_relaxed);
        stats_.spans_rekeyed.fetch_add(static_cast<uint64_t>(valid), std::memory_order_relaxed);
      }
      MarkHandled(m, absl::InfinitePast(), /*offered=*/false);
      return Handled::kDone;
    }
    if (valid > 0) {
      absl::Status offered = intake_->Offer(std::move(split->traces), valid);
      if (IsRetryable(offered)) return Handled::kRetry;
      if (!offered.ok()) {
        stats_.records_consumed.fetch_add(1, std::memory_order_relaxed);
        stats_.spans_received.fetch_add(static_cast<uint64_t>(valid + split->rejected()),
                                        std::memory_order_relaxed);
        Skip(m, SkipReason::kRefused, offered.message());
        MarkHandled(m, absl::InfinitePast(), /*offered=*/false);
        return Handled::kDone;
      }
      if (options_.durable_before) accepted_at = options_.clock->Now();
    }
    stats_.records_consumed.fetch_add(1, std::memory_order_relaxed);
    stats_.spans_received.fetch_add(static_cast<uint64_t>(valid + split->rejected()),
                                    std::memory_order_relaxed);
    stats_.spans_accepted.fetch_add(static_cast<uint64_t>(valid), std::memory_order_relaxed);
    if (split->rejected() > 0) {
      stats_.spans_rejected.fetch_add(static_cast<uint64_t>(split->rejected()),
                                      std::memory_order_relaxed);
      TK_LOG(Warning) << "kafka receiver: " << m.topic_name() << "/" << m.partition() << " offset "
                      << m.offset() << ": " << split->rejected()
                      << " spans skipped: " << split->error_message;
    }
    MarkHandled(m, accepted_at, /*offered=*/valid > 0);
    return Handled::kDone;
  }

  // Record `m` was handled; it counts as done once the intake flushed (FlushHandled).
  void MarkHandled(const RdKafka::Message& m, absl::Time accepted_at, bool offered) {
    const RdKafka::MessageTimestamp ts = m.timestamp();
    unflushed_.push_back({{m.topic_name(), m.partition()},
                          m.offset(),
                          accepted_at,
                          ts.type != RdKafka::MessageTimestamp::MSG_TIMESTAMP_NOT_AVAILABLE
                              ? absl::FromUnixMillis(ts.timestamp)
                              : absl::InfinitePast(),
                          offered});
  }

  // Asks the intake to make the effects of the records handled since the last call durable, then
  // counts them as done (their offsets may be committed). False: the intake cannot now (they stay
  // pending; call again later).
  bool FlushHandled() {
    if (unflushed_.empty()) return true;
    const absl::Status flushed = intake_->Flush();
    if (IsRetryable(flushed)) return false;
    if (!flushed.ok()) {
      // As when an Offer is refused for good: the records are skipped, counted.
      uint64_t lost = 0;
      for (const HandledRecord& r : unflushed_) lost += r.offered ? 1 : 0;
      stats_.records_skipped[static_cast<int>(SkipReason::kRefused)].fetch_add(
          lost, std::memory_order_relaxed);
      TK_LOG(Warning) << "kafka receiver: " << lost << " records of " << options_.topic
                      << " skipped, their effects could not be made durable: " << flushed;
    }
    for (const HandledRecord& r : unflushed_) {
      auto it = progress_.find(r.partition);
      if (it == progress_.end()) continue;
      it->second.Done(r.offset, flushed.ok() ? r.accepted_at : absl::InfinitePast(), r.record_time);
    }
    unflushed_.clear();
    return true;
  }

  // A record of the source topic that is not one trace keyed by its hex id: its traces may be
  // split over partitions, so they go through the re-key topic first.
  bool NeedsRekey(const RdKafka::Message& m, const SplitResult& split) const {
    if (rekey_ == nullptr || m.topic_name() != options_.topic) return false;
    if (split.traces.size() != 1) return true;
    const std::string* key = m.key();
    return key == nullptr || *key != ToHex(split.traces[0].trace_id);
  }

  static bool IsRetryable(const absl::Status& s) {
    return s.code() == absl::StatusCode::kResourceExhausted ||
           s.code() == absl::StatusCode::kUnavailable;
  }

  void Skip(const RdKafka::Message& m, SkipReason reason, absl::string_view why) {
    stats_.records_skipped[static_cast<int>(reason)].fetch_add(1, std::memory_order_relaxed);
    TK_LOG(Warning) << "kafka receiver: skipped the record at " << m.topic_name() << "/"
                    << m.partition() << " offset " << m.offset() << " (" << m.len() << " bytes, "
                    << SkipReasonName(reason) << "): " << why;
  }

  void SetPaused(bool paused) {
    if (paused == paused_) return;
    PartitionList assignment;
    consumer_->assignment(assignment.list);
    const RdKafka::ErrorCode err =
        paused ? consumer_->pause(assignment.list) : consumer_->resume(assignment.list);
    if (err != RdKafka::ERR_NO_ERROR) {
      TK_LOG(Warning) << "kafka receiver: " << (paused ? "pausing" : "resuming")
                      << " consumption: " << RdKafka::err2str(err);
    }
    paused_ = paused;
  }

  // Takes what the client has, waiting up to `timeout` for the first record: records go to the
  // backlog (up to max_poll_records), errors are counted.
  void Poll(absl::Duration timeout) {
    int wait_ms = ToMillis(timeout);
    for (int i = 0; i < std::max(1, options_.max_poll_records); ++i) {
      std::unique_ptr<RdKafka::Message> m(consumer_->consume(wait_ms));
      if (m == nullptr) return;
      switch (m->err()) {
        case RdKafka::ERR_NO_ERROR:
          backlog_.push_back(std::move(m));
          wait_ms = 0;  // then only what the client already fetched
          continue;
        case RdKafka::ERR__TIMED_OUT:
        case RdKafka::ERR__PARTITION_EOF:
          return;
        default:
          stats_.consume_errors.fetch_add(1, std::memory_order_relaxed);
          if (m->err() != last_error_) {
            TK_LOG(Warning) << "kafka receiver: consuming " << options_.topic << ": "
                            << m->errstr();
          }
          last_error_ = m->err();
          return;
      }
    }
  }

  void UpdateWatermarks() {
    std::lock_guard<std::mutex> lock(status_mu_);
    for (auto& [key, s] : status_) {
      if (!s.assigned) continue;
      auto it = progress_.find(key);
      if (it != progress_.end()) s.position = it->second.position();
      int64_t low = -1, high = -1;
      if (consumer_->get_watermark_offsets(key.first, key.second, &low, &high) ==
              RdKafka::ERR_NO_ERROR &&
          high >= 0) {
        s.high_watermark = high;
      }
    }
  }

  void Run() {
    absl::Time next_commit = absl::Now() + options_.commit_interval;
    // The wait before a refused record is offered again: doubles while the intake keeps refusing
    // (each refusal is counted by the intake too), up to a second.
    absl::Duration retry_wait = options_.poll_timeout;
    while (!stop_.load()) {
      if (backlog_.empty() && unflushed_.empty()) {
        SetPaused(false);
        Poll(options_.poll_timeout);
      }
      bool refused = false;
      while (!backlog_.empty() && !stop_.load()) {
        if (Handle(*backlog_.front()) == Handled::kRetry) {
          refused = true;
          break;
        }
        backlog_.pop_front();
      }
      // What was handled becomes durable (one write for the whole poll) before it counts as
      // done, and before the next poll (whose rebalance callbacks may commit).
      if (!FlushHandled()) refused = true;
      if (refused) {
        // Over capacity: stop fetching, keep serving the group, and offer the record (or the
        // flush) again after a wait.
        stats_.intake_waits.fetch_add(1, std::memory_order_relaxed);
        SetPaused(true);
        Poll(retry_wait);
        retry_wait = std::min(retry_wait * 2, std::max(options_.poll_timeout, absl::Seconds(1)));
      } else {
        retry_wait = options_.poll_timeout;
      }
      UpdateWatermarks();
      const absl::Time now = absl::Now();
      if (now >= next_commit) {
        Commit(nullptr);
        next_commit = now + options_.commit_interval;
      }
    }
    FlushHandled();
    Commit(nullptr);
  }

  const KafkaReceiverOptions options_;
  SpanIntake* const intake_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::unique_ptr<KafkaGateway> rekey_;  // null unless options_.rekey_topic is set
  KafkaReceiverStats stats_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> shut_down_{false};
  std::atomic<bool> abandoned_{false};
  bool started_ = false;
  std::thread thread_;
  // Consumer thread only (the rebalance callback runs on it too).
  std::map<TopicPartitionKey, PartitionProgress> progress_;
  std::deque<std::unique_ptr<RdKafka::Message>> backlog_;
  // Records handled since the intake's last Flush, in the order they were handled.
  struct HandledRecord {
    TopicPartitionKey partition;
    int64_t offset;
    absl::Time accepted_at;
    absl::Time record_time;
    bool offered;  // its spans went to the intake
  };
  std::vector<HandledRecord> unflushed_;
  bool paused_ = false;
  RdKafka::ErrorCode last_error_ = RdKafka::ERR_NO_ERROR;

  mutable std::mutex status_mu_;
  std::map<TopicPartitionKey, PartitionStatus> status_ ABSL_GUARDED_BY(status_mu_);
  std::string member_id_ ABSL_GUARDED_BY(status_mu_);
};

absl::StatusOr<std::unique_ptr<KafkaReceiver>> KafkaReceiver::Create(
    const KafkaReceiverOptions& options, SpanIntake* intake) {
  if (options.brokers.empty()) {
    return absl::InvalidArgumentError("kafka receiver: brokers must list at least one host:port");
  }
  if (options.topic.empty()) return absl::InvalidArgumentError("kafka receiver: topic is empty");
  if (options.rekey_topic == options.topic) {
    return absl::InvalidArgumentError("kafka receiver: rekey_topic must differ from topic, got \"" +
                                      options.topic + "\" for both");
  }
  if (options.group_id.empty()) {
    return absl::InvalidArgumentError("kafka receiver: group_id is empty");
  }
  if (options.commit_interval <= absl::ZeroDuration() ||
      options.poll_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "kafka receiver: commit_interval and poll_timeout must be > 0");
  }
  auto impl = std::make_unique<Impl>(options, intake);
  absl::Status s = impl->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<KafkaReceiver>(new KafkaReceiver(std::move(impl)));
}

KafkaReceiver::KafkaReceiver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaReceiver::~KafkaReceiver() {
  // Left to the process's exit: a thread of the abandoned client still uses it.
  if (impl_->abandoned()) (void)impl_.release();
}
absl::Status KafkaReceiver::Start() { return impl_->Start(); }
void KafkaReceiver::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }
const KafkaReceiverStats& KafkaReceiver::stats() const { return impl_->stats(); }
std::string KafkaReceiver::MemberId() const { return impl_->MemberId(); }
std::vector<PartitionStatus> KafkaReceiver::Partitions() const { return impl_->Partitions(); }
PartitionStatus KafkaReceiver::Partition(const std::string& topic, int32_t partition) const {
  return impl_->Partition(topic, partition);
}

}  // namespace tracekeep::kafka
