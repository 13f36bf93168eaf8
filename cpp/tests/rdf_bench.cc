// Times the RDF per call for 1, 2, ... threads: forward, and forward + backward as the CV runs them
// (the forward pass records the pairs, the backward pass reads them). Clusters of fcc Au, 200
// bins up to 16 angstrom, sigma 0.1. Prints a markdown table; not a test.
//
//   nanochart_rdf_bench [--threads MAX] [atoms ...]      (default: --threads 2, 147 309 561)
#include <cstdio>
#include <vector>

#include "bench.h"
#include "helpers.h"
#include "nanochart/rdf.h"

int main(int argc, char** argv) {
  nanochart::testing::BenchArgs args;
  if (!nanochart::testing::parse_bench_args(argc, argv, 1, args)) return 2;
  const nanochart::RdfSettings settings{0.0, 16.0, 200, 0.1, 6.0, "angstrom"};
  std::printf("| atoms | threads | forward (us) | forward+backward (us) | speed-up |\n|---|---|---|---|---|\n");
  for (const int64_t n : args.sizes) {
    const std::vector<double> x = nanochart::testing::fcc_cluster(n, 4.08, 0.1, 1);
    const std::vector<double> w = nanochart::testing::random_weights(settings.n_bins, 2);
    std::vector<double> g(200), dx(x.size()), strain(9);
    double serial = 0.0;
    for (int threads = 1; threads <= args.max_threads; ++threads) {
      const nanochart::Rdf rdf(settings, threads);
      nanochart::RdfRecord record;
      const double forward =
          nanochart::testing::per_call_us([&] { rdf.compute(x.data(), n, nanochart::Box(), g.data()); });
      const double both = nanochart::testing::per_call_us([&] {
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
