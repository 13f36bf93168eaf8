// The core's own thread pool: persistent std::threads, no OpenMP runtime (the torch wheel bundles
// its own libgomp, and a second one in the process is asking for trouble), and no libtorch, so the
// RDF builds without it. Private to cpp/src.
//
// Work is cut into a fixed number of chunks that the caller chooses independently of the thread
// count; threads claim chunks in any order, and callers reduce per-chunk results in chunk order.
// Results then depend neither on scheduling nor on the thread count.
#pragma once

#include <cstdint>
#include <type_traits>

namespace nanochart {

// Runs task(context, chunk, slot) for every chunk in [0, chunks) on at most `threads` threads, the
// calling thread included, and returns when all are done. `slot` tells which thread runs the
// chunk, for per-thread scratch: 0 <= slot < min(threads, chunks), the caller is slot 0. The
// first exception a chunk throws is rethrown here (the remaining chunks still run).
//
// With threads <= 1 or a single chunk the chunks run inline and the pool is never touched. They
// also run inline when called from inside a chunk, or while another thread is using the pool
// (the results are the same, only slower).
void run_chunks(int threads, int64_t chunks, void (*task)(void* context, int64_t chunk, int slot), void* context);

// The same for a callable f(chunk, slot).
template <typename F>
void parallel_chunks(int threads, int64_t chunks, F&& f) {
  if (threads <= 1 || chunks <= 1) {
    for (int64_t c = 0; c < chunks; ++c) f(c, 0);
    return;
  }
  using Callable = std::remove_reference_t<F>;
  run_chunks(
      threads, chunks, [](void* context, int64_t chunk, int slot) { (*static_cast<Callable*>(context))(chunk, slot); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

}  // namespace nanochart
