#include "collector/common/periodic_thread.h"

#include <utility>

namespace tracekeep {

void PeriodicThread::Start(absl::Duration interval, std::function<void()> fn) {
  thread_ = std::thread([this, interval, fn = std::move(fn)] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, absl::ToChronoNanoseconds(interval));
      if (stop_) break;
      lock.unlock();
      fn();
      lock.lock();
    }
  });
}

bool PeriodicThread::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || !thread_.joinable()) return false;
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  return true;
}

}  // namespace tracekeep
