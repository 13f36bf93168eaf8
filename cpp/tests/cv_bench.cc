// Times the CV per call for 1, 2, ... threads with an exported model: values alone, and values +
// bias forces as PLUMED's RDF_ENCODER runs them (calculate with the gradients recorded, then
// apply_bias) on roughly spherical Au fcc clusters in angstrom, with the model's own RDF settings.
// Prints a markdown table; not a test. Built with the core's own flags, so `perf record` on it profiles the CV as the
// plugins run it.
//
//   nanochart_cv_bench MODEL.pt [--threads MAX] [atoms ...]   (default: --threads 2, 147 309 561)
#include <cstdio>
#include <vector>

#include "bench.h"
#include "helpers.h"
#include "nanochart/cv.h"
#include "nanochart/error.h"

namespace {

void run(const char* model, const nanochart::testing::BenchArgs& args) {
  using nanochart::testing::per_call_us;
  std::printf("| atoms | threads | values (us) | values+forces (us) | speed-up |\n|---|---|---|---|---|\n");
  for (const int64_t n : args.sizes) {
    const std::vector<double> x = nanochart::testing::fcc_cluster(n, 4.08, 0.1, 1);
    std::vector<double> forces(x.size()), virial(9);
    double serial = 0.0;
    for (int threads = 1; threads <= args.max_threads; ++threads) {
      nanochart::CvOptions options;
      options.num_threads = threads;
      nanochart::CollectiveVariable cv(model, options);
      if (n == args.sizes.front() && threads == 1) std::fprintf(stderr, "encoder engine: %s\n", cv.engine().c_str());
      std::vector<double> s(static_cast<size_t>(cv.n_cvs())), dV_ds(s.size(), 0.0);
      for (size_t d = 0; d < dV_ds.size(); ++d) dV_ds[d] = 1.0 / static_cast<double>(d + 1);
      const nanochart::Box box;
      const double values = per_call_us([&] { cv.calculate(x.data(), n, box, s.data(), false); });
      const double both = per_call_us([&] {
        cv.calculate(x.data(), n, box, s.data());
        cv.apply_bias(dV_ds.data(), forces.data(), virial.data());
      });
      if (threads == 1) serial = both;
      std::printf("| %lld | %d | %.1f | %.1f | %.2f |\n", static_cast<long long>(n), threads, values, both,
                  serial / both);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  nanochart::testing::BenchArgs args;
  if (argc < 2 || argv[1][0] == '-' || !nanochart::testing::parse_bench_args(argc, argv, 2, args)) {
    std::fprintf(stderr, "usage: %s MODEL.pt [--threads MAX] [ATOMS ...]\n", argv[0]);
    return 2;
  }
  try {
    run(argv[1], args);
  } catch (const nanochart::Error& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
