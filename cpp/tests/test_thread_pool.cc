// The core's thread pool: every chunk once, slots within bounds, errors, nesting, several callers
// at once, and fork().
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "thread_pool.h"

namespace nanochart {
namespace {

// Runs `chunks` chunks on `threads` threads; returns how often each chunk ran, and checks slots.
std::vector<int> run_counts(int threads, int64_t chunks, std::atomic<int>& bad_slots) {
  std::vector<std::atomic<int>> runs(static_cast<size_t>(chunks));
  const int64_t slots = std::min<int64_t>(threads, chunks);
  parallel_chunks(threads, chunks, [&](int64_t chunk, int slot) {
    runs[static_cast<size_t>(chunk)].fetch_add(1);
    if (slot < 0 || slot >= slots) bad_slots.fetch_add(1);
  });
  std::vector<int> out;
  for (auto& r : runs) out.push_back(r.load());
  return out;
}

TEST_CASE("Every chunk runs exactly once, on a slot below min(threads, chunks)", "[pool]") {
  std::atomic<int> bad_slots{0};
  for (const int threads : {1, 2, 3, 5}) {
    for (const int64_t chunks : {0, 1, 2, 7, 64, 1000}) {
      CAPTURE(threads, chunks);
      REQUIRE(run_counts(threads, chunks, bad_slots) == std::vector<int>(static_cast<size_t>(chunks), 1));
    }
  }
  // Fewer threads after more: the idle workers stay out of the slots they are not given.
  REQUIRE(run_counts(2, 500, bad_slots) == std::vector<int>(500, 1));
  REQUIRE(bad_slots.load() == 0);
}

TEST_CASE("More than one thread does the work", "[pool]") {
  // Chunks wait for each other: finishing needs two threads in them at once.
  std::atomic<int> arrived{0};
  std::atomic<bool> timed_out{false};
  parallel_chunks(2, 2, [&](int64_t, int) {
    arrived.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (arrived.load() < 2) {
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        break;
      }
    }
  });
  REQUIRE_FALSE(timed_out.load());
}

TEST_CASE("One thread runs on the caller alone", "[pool]") {
  const auto caller = std::this_thread::get_id();
  bool elsewhere = false;
  parallel_chunks(1, 50, [&](int64_t, int) { elsewhere = elsewhere || std::this_thread::get_id() != caller; });
  REQUIRE_FALSE(elsewhere);
}

TEST_CASE("An exception in a chunk reaches the caller, after all chunks ran", "[pool]") {
  for (const int threads : {1, 3}) {
    std::atomic<int> ran{0};
    REQUIRE_THROWS_WITH(parallel_chunks(threads, 40,
                                        [&](int64_t chunk, int) {
                                          ran.fetch_add(1);
                                          if (chunk == 17) throw std::runtime_error("chunk 17 failed");
                                        }),
                        "chunk 17 failed");
    REQUIRE(ran.load() == (threads == 1 ? 18 : 40));  // inline, the loop stops at the throw
  }
  // The pool works on afterwards.
  std::atomic<int> bad_slots{0};
  REQUIRE(run_counts(3, 30, bad_slots) == std::vector<int>(30, 1));
}

TEST_CASE("Nested calls and concurrent callers run to completion", "[pool]") {
  // A chunk that asks for the pool again runs its inner chunks inline.
  std::vector<std::atomic<int>> inner(8 * 16);
  parallel_chunks(3, 8, [&](int64_t outer, int) {
    parallel_chunks(3, 16, [&](int64_t chunk, int slot) {
      inner[static_cast<size_t>(outer * 16 + chunk)].fetch_add(1 + 100 * (slot != 0));
    });
  });
  for (auto& count : inner) REQUIRE(count.load() == 1);

  // Several threads calling at once: one has the pool, the others run inline; all finish.
  std::vector<std::thread> callers;
  std::vector<int64_t> sums(4, 0);
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&, c] {
      for (int repeat = 0; repeat < 200; ++repeat) {
        std::vector<int64_t> parts(32, 0);
        parallel_chunks(2, 32, [&](int64_t chunk, int) { parts[static_cast<size_t>(chunk)] = chunk; });
        for (const int64_t p : parts) sums[static_cast<size_t>(c)] += p;
      }
    });
  }
  for (auto& t : callers) t.join();
  REQUIRE(sums == std::vector<int64_t>(4, 200 * (31 * 32 / 2)));
}

TEST_CASE("A child of fork() has a working pool", "[pool]") {
  std::atomic<int> bad_slots{0};
  run_counts(2, 16, bad_slots);  // the parent's workers exist
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::atomic<int> runs{0};
    parallel_chunks(2, 100, [&](int64_t, int) { runs.fetch_add(1); });
    _exit(runs.load() == 100 ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace nanochart
