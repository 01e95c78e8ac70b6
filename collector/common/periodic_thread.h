// A thread that calls a function every `interval` until it is stopped: the background work of
// components (journal truncation, disk measurements).
#ifndef TRACEKEEP_COLLECTOR_COMMON_PERIODIC_THREAD_H_
#define TRACEKEEP_COLLECTOR_COMMON_PERIODIC_THREAD_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace tracekeep {

class PeriodicThread {
 public:
  PeriodicThread() = default;
  ~PeriodicThread() { Stop(); }
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  // Calls `fn` every `interval` (the first call one interval from now) on a new thread. Call at
  // most once.
  void Start(absl::Duration interval, std::function<void()> fn);
  // Wakes the thread, lets a running call finish, joins it. Returns false when the thread was
  // not running (never started, or stopped already).
  bool Stop();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tracekeep

#endif  // TRACEKEEP_COLLECTOR_COMMON_PERIODIC_THREAD_H_
