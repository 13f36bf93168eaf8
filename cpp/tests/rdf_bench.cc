// Times the RDF per call for 1, 2, ... threads: forward, and forward + backward as the CV runs them
// (the forward pass records the pairs, the backward pass reads them). Clusters of fcc Au, 200
// bins up to 16 angstrom, sigma 0.1. Prints a markdown table; not a test.
//
//   nanochart_rdf_bench [--threads MAX] [atoms ...]      (default: --threads 2, 147 309 561)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "helpers.h"
#include "nanochart/rdf.h"

namespace {

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

}  // namespace

int main(int argc, char** argv) {
  int max_threads = 2;
  std::vector<int64_t> sizes;
  for (int a = 1; a < argc; ++a) {
    if (std::string(argv[a]) == "--threads" && a + 1 < argc) {
      max_threads = std::atoi(argv[++a]);
    } else if (std::atoll(argv[a]) >= 2) {
      sizes.push_back(std::atoll(argv[a]));
    } else {
      std::fprintf(stderr, "usage: %s [--threads MAX] [ATOMS ...]  (cluster sizes of at least 2 atoms)\n", argv[0]);
      return 2;
    }
  }
  if (max_threads < 1) {
    std::fprintf(stderr, "--threads takes a count of at least 1\n");
    return 2;
  }
  if (sizes.empty()) sizes = {147, 309, 561};
  const nanochart::RdfSettings settings{0.0, 16.0, 200, 0.1, 6.0, "angstrom"};
  std::printf("| atoms | threads | forward (us) | forward+backward (us) | speed-up |\n|---|---|---|---|---|\n");
  for (const int64_t n : sizes) {
    const std::vector<double> x = nanochart::testing::fcc_cluster(n, 4.08, 0.1, 1);
    const std::vector<double> w = nanochart::testing::random_weights(settings.n_bins, 2);
    std::vector<double> g(200), dx(x.size()), strain(9);
    double serial = 0.0;
    for (int threads = 1; threads <= max_threads; ++threads) {
      const nanochart::Rdf rdf(settings, threads);
      nanochart::RdfRecord record;
      const double forward = per_call_us([&] { rdf.compute(x.data(), n, nanochart::Box(), g.data()); });
      const double both = per_call_us([&] {
        rdf.compute(x.data(), n, nanochart::Box(), g.data(), {}, &record);
        rdf.backward(record, w.data(), dx.data(), strain.data());
      });
      if (threads == 1) serial = both;
      std::printf("| %lld | %d | %.1f | %.1f | %.2f |\n", static_cast<long long>(n), threads, forward, both,
                  serial / both);
    }
  }
  return 0;
}
