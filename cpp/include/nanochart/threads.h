// libtorch's intra-op thread count is process-wide; the core sets it for the duration of each
// call and puts the caller's value back, so a Python user's torch settings are left alone.
#pragma once

#include <ATen/Parallel.h>

namespace nanochart {

class ScopedThreadCount {
 public:
  explicit ScopedThreadCount(int threads) : previous_(at::get_num_threads()) {
    if (threads != previous_) at::set_num_threads(threads);
  }
  ~ScopedThreadCount() {
    if (at::get_num_threads() != previous_) at::set_num_threads(previous_);
  }
  ScopedThreadCount(const ScopedThreadCount&) = delete;
  ScopedThreadCount& operator=(const ScopedThreadCount&) = delete;

 private:
  int previous_;
};

}  // namespace nanochart
