// libtorch's intra-op thread count is process-wide; the encoder/CV part sets it for the duration
// of each call into libtorch and puts the caller's value back, so a Python user's torch settings
// are left alone. Private to the torch part of cpp/src (the RDF has its own thread pool).
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
