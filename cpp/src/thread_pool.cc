#include "thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace nanochart {
namespace {

using Task = void (*)(void*, int64_t, int);
using Clock = std::chrono::steady_clock;

// An idle worker polls this long before it sleeps: the RDF's forward and backward passes of one
// MD step come this close together, and a sleeping worker costs a futex wake-up (microseconds,
// more on a busy machine) where a polling one starts at once.
constexpr auto kPollBeforeSleep = std::chrono::microseconds(200);

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// One poll of a wait: pause instructions for the first few (a few microseconds), then yields, so
// that on a busy machine a waiting thread leaves its core to the threads it waits for (in a CPU
// cgroup, its own process's) instead of taking their time.
inline void pause_or_yield(int polls) {
  if (polls < 256) {
    relax();
  } else {
    std::this_thread::yield();
  }
}

template <typename Done>
void wait_until(Done&& done) {
  for (int polls = 0; !done(); ++polls) pause_or_yield(polls);
}

class Pool {
 public:
  Pool() = default;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  ~Pool() {
    stop_.store(true);
    for (auto& worker : workers_) wake(*worker, ++epoch_);
    for (auto& worker : workers_) worker->thread.join();
  }

  // One caller at a time; others (and chunks calling in again) run their chunks inline.
  bool try_acquire() { return !in_use_.exchange(true, std::memory_order_acquire); }
  void release() { in_use_.store(false, std::memory_order_release); }

  void run(int threads, int64_t chunks, Task task, void* context) {
    const int helpers = add_workers(static_cast<int>(std::min<int64_t>(threads, chunks)) - 1);
    // Workers left inside the previous job (woken late, they found it closed or finished) read
    // the job's fields no more once they are out.
    wait_until([&] { return inside_.load() == 0; });
    task_ = task;
    context_ = context;
    chunks_ = chunks;
    slots_ = helpers + 1;
    next_.store(0);
    done_.store(0);
    open_.store(true);
    ++epoch_;
    for (int w = 0; w < helpers; ++w) wake(*workers_[static_cast<size_t>(w)], epoch_);
    run_claimed_chunks(0);
    open_.store(false);
    wait_until([&] { return done_.load(std::memory_order_acquire) == chunks_; });
    if (error_) {
      std::exception_ptr error = std::move(error_);
      error_ = nullptr;
      std::rethrow_exception(error);
    }
  }

 private:
  struct alignas(64) Worker {
    std::thread thread;
    std::atomic<uint64_t> epoch{0};
    std::atomic<bool> sleeping{false};
    std::mutex mutex;
    std::condition_variable wake;
  };

  // Grows the pool to `wanted` workers if it can; returns how many there are (up to `wanted`).
  int add_workers(int wanted) {
    while (static_cast<int>(workers_.size()) < wanted) {
      auto worker = std::make_unique<Worker>();
      const int slot = static_cast<int>(workers_.size()) + 1;
      try {
        worker->thread = std::thread([this, w = worker.get(), slot] { work(*w, slot); });
      } catch (const std::system_error&) {
        break;  // no more threads to be had: run with those there are
      }
      workers_.push_back(std::move(worker));
    }
    return std::min(wanted, static_cast<int>(workers_.size()));
  }

  static void wake(Worker& worker, uint64_t epoch) {
    worker.epoch.store(epoch);
    // Seen as sleeping after the store: it went to sleep before the new epoch, so it needs the
    // notification (it holds the mutex from before it says it sleeps until it waits).
    if (worker.sleeping.load()) {
      {
        std::lock_guard<std::mutex> lock(worker.mutex);
      }
      worker.wake.notify_one();
    }
  }

  void work(Worker& self, int slot) {
    uint64_t seen = 0;
    for (;;) {
      const auto deadline = Clock::now() + kPollBeforeSleep;
      for (int polls = 1; self.epoch.load(std::memory_order_acquire) == seen; ++polls) {
        pause_or_yield(polls);
        if (polls % 16 == 0 && Clock::now() > deadline) {
          std::unique_lock<std::mutex> lock(self.mutex);
          self.sleeping.store(true);
          self.wake.wait(lock, [&] { return self.epoch.load() != seen; });
          self.sleeping.store(false);
        }
      }
      seen = self.epoch.load(std::memory_order_acquire);
      if (stop_.load()) return;
      // Inside first, then the check that the job is open: a caller that saw no worker inside
      // has closed the job before, so a worker that comes later finds it closed (or finds the
      // next job, complete, and joins that).
      inside_.fetch_add(1);
      if (open_.load() && slot < slots_) run_claimed_chunks(slot);
      inside_.fetch_sub(1);
    }
  }

  void run_claimed_chunks(int slot) {
    for (int64_t chunk = next_.fetch_add(1); chunk < chunks_; chunk = next_.fetch_add(1)) {
      try {
        task_(context_, chunk, slot);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> in_use_{false};
  std::atomic<bool> stop_{false};
  uint64_t epoch_ = 0;
  // The job: its fields are written only while it is closed and no worker is inside.
  Task task_ = nullptr;
  void* context_ = nullptr;
  int64_t chunks_ = 0;
  int slots_ = 0;
  std::atomic<bool> open_{false};
  std::atomic<int64_t> next_{0};  // the next chunk to claim
  std::atomic<int64_t> done_{0};  // chunks finished
  std::atomic<int> inside_{0};    // workers looking at the job
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// Constant-initialised, so it reads as null (run inline) before the owner makes the pool and
// after the owner's destructor, at exit or when a plugin holding the core is unloaded, has
// stopped and joined the workers.
std::atomic<Pool*> shared_pool{nullptr};

struct PoolOwner {
  PoolOwner() {
    shared_pool.store(new Pool);
    // A child of fork() has none of the workers, and a job in flight may have left the pool's
    // locks and counters mid-way: it starts a pool of its own and leaks the parent's, which it
    // cannot join.
    pthread_atfork(nullptr, nullptr, [] { shared_pool.store(new (std::nothrow) Pool); });
  }
  ~PoolOwner() { delete shared_pool.exchange(nullptr); }
};

Pool* pool() {
  static PoolOwner owner;
  return shared_pool.load();
}

}  // namespace

void run_chunks(int threads, int64_t chunks, Task task, void* context) {
  Pool* shared = threads > 1 && chunks > 1 ? pool() : nullptr;
  if (shared == nullptr || !shared->try_acquire()) {
    for (int64_t c = 0; c < chunks; ++c) task(context, c, 0);
    return;
  }
  struct Release {
    Pool* pool;
    ~Release() { pool->release(); }
  } release{shared};
  shared->run(threads, chunks, task, context);
}

}  // namespace nanochart
