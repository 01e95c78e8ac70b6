#include "collector/common/periodic_thread.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "gtest/gtest.h"

namespace tracekeep {
namespace {

TEST(PeriodicThreadTest, CallsRepeatedlyUntilStoppedAndNotAfter) {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  PeriodicThread thread;
  thread.Start(absl::Milliseconds(1), [&] {
    std::lock_guard<std::mutex> lock(mu);
    ++calls;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return calls >= 3; }));
  }
  EXPECT_TRUE(thread.Stop());
  const int after_stop = calls;
  EXPECT_FALSE(thread.Stop()) << "stopped already";
  EXPECT_EQ(calls, after_stop) << "no call after Stop() returned";
}

TEST(PeriodicThreadTest, StopWithoutStartDoesNothing) {
  PeriodicThread thread;
  EXPECT_FALSE(thread.Stop());
}

TEST(PeriodicThreadTest, StopDoesNotWaitForTheInterval) {
  std::atomic<int> calls{0};
  PeriodicThread thread;
  thread.Start(absl::Hours(1), [&] { ++calls; });
  EXPECT_TRUE(thread.Stop());  // returns at once: the wait is interrupted, nothing is called
  EXPECT_EQ(calls.load(), 0);
}

}  // namespace
}  // namespace tracekeep
