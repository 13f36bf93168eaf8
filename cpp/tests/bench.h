// Timing for the benchmark programs (not tests).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace nanochart::testing {

// Median over 7 rounds of the mean time per call in microseconds; rounds of about 0.2 s.
template <typename F>
double per_call_us(F&& call) {
  using Clock = std::chrono::steady_clock;
  const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  auto start = Clock::now();
  call();
  call();
  const int calls = std::max(2, static_cast<int>(0.2 / std::max(seconds(Clock::now() - start) / 2, 1e-9)));
  std::vector<double> rounds;
  for (int r = 0; r < 7; ++r) {
    start = Clock::now();
    for (int c = 0; c < calls; ++c) call();
    rounds.push_back(seconds(Clock::now() - start) / calls * 1e6);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

// The benchmarks' command line from argv[first] on: [--threads MAX] [ATOMS ...]. Returns false,
// having printed why, on anything else.
struct BenchArgs {
  int max_threads = 2;
  std::vector<int64_t> sizes = {147, 309, 561};
};

inline bool parse_bench_args(int argc, char** argv, int first, BenchArgs& args) {
  std::vector<int64_t> sizes;
  for (int a = first; a < argc; ++a) {
    if (std::string(argv[a]) == "--threads" && a + 1 < argc) {
      args.max_threads = std::atoi(argv[++a]);
    } else if (std::atoll(argv[a]) >= 2) {
      sizes.push_back(std::atoll(argv[a]));
    } else {
      std::fprintf(stderr,
                   "unexpected argument %s: expected [--threads MAX] [ATOMS ...] (cluster sizes of at least 2)\n",
                   argv[a]);
      return false;
    }
  }
  if (args.max_threads < 1) {
    std::fprintf(stderr, "--threads takes a count of at least 1\n");
    return false;
  }
  if (!sizes.empty()) args.sizes = sizes;
  return true;
}

}  // namespace nanochart::testing
