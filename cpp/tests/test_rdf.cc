// The RDF and its backward pass against direct calculations: the definition, finite differences,
// the strain identity, MPI shares, thread counts and the pair record.
#include <catch2/catch.hpp>

#include "helpers.h"
#include "nanochart/rdf.h"

namespace nanochart {
namespace {

using testing::max_relative;

const RdfSettings kSettings{0.0, 12.0, 150, 0.12, 6.0, "angstrom"};

struct Gradients {
  std::vector<double> dx, strain;
};

Gradients backward(const Rdf& rdf, const std::vector<double>& x, const Box& box, const std::vector<double>& w,
                   PairPartition partition = {}) {
  Gradients out{std::vector<double>(x.size()), std::vector<double>(9)};
  rdf.backward(x.data(), static_cast<int64_t>(x.size() / 3), box, w.data(), out.dx.data(), out.strain.data(),
               partition);
  return out;
}

std::vector<double> compute(const Rdf& rdf, const std::vector<double>& x, const Box& box = {},
                            PairPartition partition = {}, RdfRecord* record = nullptr) {
  std::vector<double> g(static_cast<size_t>(rdf.n_bins()));
  rdf.compute(x.data(), static_cast<int64_t>(x.size() / 3), box, g.data(), partition, record);
  return g;
}

// A triclinic cell, and positions inside it.
Box skewed_box() { return Box({9.0, 0.0, 0.0, 1.5, 8.5, 0.0, -1.0, 0.8, 9.5}); }

std::vector<double> inside(const Box& box, int64_t n, uint32_t seed) {
  const std::vector<double> fractional = testing::random_cluster(n, 1.0, 0.0, seed);
  std::vector<double> x(fractional.size(), 0.0);
  const auto& h = box.rows();
  for (size_t a = 0; a < x.size(); a += 3) {
    for (int c = 0; c < 3; ++c) {
      for (int r = 0; r < 3; ++r) x[a + c] += fractional[a + r] * h[3 * r + c];
    }
  }
  return x;
}

TEST_CASE("RDF equals the double loop of its definition for small clusters", "[rdf]") {
  for (const int64_t n : {2, 3, 7, 20, 41}) {
    const auto x = testing::random_cluster(n, 6.0, 0.8, static_cast<uint32_t>(n));
    // At 6 sigma the truncation stays within 1e-7 of the peak; at 14 sigma the window is wider
    // than the loops' fixed widths, and the truncation is far below rounding.
    for (const double cutoff : {6.0, 14.0}) {
      RdfSettings settings = kSettings;
      settings.cutoff_sigmas = cutoff;
      const std::vector<double> reference = testing::reference_rdf(x, settings);
      CAPTURE(n, cutoff);
      REQUIRE(max_relative(compute(Rdf(settings), x), reference) < (cutoff == 6.0 ? 1e-7 : 1e-12));
    }
  }
}

TEST_CASE("RDF on a grid much finer than sigma: windows of more than 64 groups of bins", "[rdf]") {
  // h = spacing / sigma = 0.0125: a pair's window spans 321 bins at a 2-sigma cutoff, 81 groups,
  // past the 64 whose cutoff mask is kept as bits. The cut is at 2 sigma so that a bin kept or
  // dropped by mistake shows (the Gaussian is still 0.14 of its peak there).
  const RdfSettings settings{0.0, 12.0, 8000, 0.12, 2.0, "angstrom"};
  for (const int64_t n : {9, 30}) {
    const auto x = testing::random_cluster(n, 6.0, 0.8, static_cast<uint32_t>(n));
    CAPTURE(n);
    REQUIRE(max_relative(compute(Rdf(settings), x), testing::reference_rdf(x, settings, {}, true)) < 1e-12);
  }
}

TEST_CASE("RDF of a periodic box takes the minimum image", "[rdf]") {
  const Box orthorhombic({8.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 10.0});
  for (const Box& box : {orthorhombic, skewed_box()}) {
    const auto x = inside(box, 24, 5);
    RdfSettings settings = kSettings;
    settings.cutoff_sigmas = 14.0;
    const std::vector<double> g = compute(Rdf(settings), x, box);
    CAPTURE(box.orthorhombic());
    REQUIRE(max_relative(g, testing::reference_rdf(x, settings, box)) < 1e-12);
    // Not the same as without the box: some pairs are closer through the boundary.
    REQUIRE(max_relative(g, testing::reference_rdf(x, settings)) > 1e-3);
  }
}

TEST_CASE("RDF integrates to one when the grid covers every pair", "[rdf]") {
  const auto x = testing::fcc_cluster(55, 4.08, 0.1, 3);
  const RdfSettings settings{0.0, 16.0, 400, 0.1, 6.0, "angstrom"};
  const std::vector<double> g = compute(Rdf(settings), x);
  double integral = 0.0;  // trapezoid rule; the Gaussians are sampled 2.5 points per sigma
  for (size_t k = 0; k + 1 < g.size(); ++k) integral += 0.5 * (g[k] + g[k + 1]) * settings.spacing();
  REQUIRE(integral == Approx(1.0).epsilon(1e-6));
}

TEST_CASE("RDF backward pass equals central finite differences", "[rdf][gradients]") {
  const Rdf rdf(kSettings);
  const std::vector<double> w = testing::random_weights(kSettings.n_bins, 11);
  const auto loss = [&](const std::vector<double>& y, const Box& box) { return testing::dot(w, compute(rdf, y, box)); };

  SECTION("positions, cluster and periodic box") {
    const Box box({7.0, 0.0, 0.0, 0.0, 7.5, 0.0, 0.0, 0.0, 8.0});
    for (const bool periodic : {false, true}) {
      const Box cell = periodic ? box : Box();
      const auto x = periodic ? inside(box, 18, 2) : testing::fcc_cluster(19, 4.08, 0.3, 2);
      const Gradients analytic = backward(rdf, x, cell, w);
      const auto numeric = testing::central_differences(x, 1e-5, [&](const auto& y) { return loss(y, cell); });
      CAPTURE(periodic);
      REQUIRE(max_relative(analytic.dx, numeric) < 1e-7);
    }
  }

  SECTION("homogeneous strain of a triclinic cell") {
    const Box box = skewed_box();
    const auto x = inside(box, 16, 4);
    const Gradients analytic = backward(rdf, x, box, w);
    // x -> x (1 + epsilon), cell rows alike: y_a = x_a + sum_b x_b epsilon_ba.
    const auto strained = [&](const std::vector<double>& epsilon) {
      const auto deform = [&](const double* in, double* out, size_t n) {
        for (size_t a = 0; a < n; a += 3) {
          for (int c = 0; c < 3; ++c) {
            out[a + c] = in[a + c];
            for (int b = 0; b < 3; ++b) out[a + c] += in[a + b] * epsilon[3 * b + c];
          }
        }
      };
      std::vector<double> y(x.size());
      deform(x.data(), y.data(), x.size());
      std::array<double, 9> rows{};
      deform(box.rows().data(), rows.data(), 9);
      return loss(y, Box(rows));
    };
    const auto numeric = testing::central_differences(std::vector<double>(9, 0.0), 1e-6, strained);
    REQUIRE(max_relative(analytic.strain, numeric) < 1e-7);
  }
}

TEST_CASE("Strain derivative of a cluster is sum_i x_i (x) dL/dx_i", "[rdf][gradients]") {
  const Rdf rdf(kSettings);
  const auto x = testing::fcc_cluster(43, 4.08, 0.2, 8);
  const Gradients out = backward(rdf, x, Box(), testing::random_weights(kSettings.n_bins, 3));
  std::vector<double> identity(9, 0.0);
  for (size_t a = 0; a < x.size(); a += 3) {
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) identity[3 * r + c] += x[a + r] * out.dx[a + c];
    }
  }
  REQUIRE(max_relative(out.strain, identity) < 1e-12);
  // Translation invariance: the forces sum to zero.
  for (int c = 0; c < 3; ++c) {
    double total = 0.0, size = 0.0;
    for (size_t a = 0; a < x.size(); a += 3) {
      total += out.dx[a + c];
      size = std::max(size, std::abs(out.dx[a + c]));
    }
    REQUIRE(std::abs(total) < 1e-12 * size);
  }
}

TEST_CASE("MPI shares of the pairs add up to the whole", "[rdf][partition]") {
  const Rdf rdf(kSettings, 2);
  const auto x = testing::fcc_cluster(147, 4.08, 0.1, 1);
  const Box box({30.0, 0.0, 0.0, 0.0, 31.0, 0.0, 0.0, 0.0, 32.0});
  const std::vector<double> w = testing::random_weights(kSettings.n_bins, 5);
  const std::vector<double> whole = compute(rdf, x, box);
  const Gradients whole_gradients = backward(rdf, x, box, w);
  for (const int size : {2, 3, 7}) {
    std::vector<double> g(whole.size(), 0.0), dx(x.size(), 0.0), strain(9, 0.0), dx_recorded(x.size(), 0.0);
    for (int rank = 0; rank < size; ++rank) {
      const PairPartition partition{rank, size};
      RdfRecord record;
      const std::vector<double> share = compute(rdf, x, box, partition, &record);
      REQUIRE(*std::max_element(share.begin(), share.end()) > 0.0);  // every rank owns pairs
      const Gradients part = backward(rdf, x, box, w, partition);
      std::vector<double> recorded(x.size()), recorded_strain(9);
      rdf.backward(record, w.data(), recorded.data(), recorded_strain.data());
      for (size_t k = 0; k < g.size(); ++k) g[k] += share[k];
      for (size_t k = 0; k < dx.size(); ++k) dx[k] += part.dx[k], dx_recorded[k] += recorded[k];
      for (size_t k = 0; k < 9; ++k) strain[k] += part.strain[k];
    }
    CAPTURE(size);
    REQUIRE(max_relative(g, whole) < 1e-13);
    REQUIRE(max_relative(dx, whole_gradients.dx) < 1e-12);
    REQUIRE(max_relative(dx_recorded, whole_gradients.dx) < 1e-12);
    REQUIRE(max_relative(strain, whole_gradients.strain) < 1e-12);
  }
}

TEST_CASE("Thread counts give bit-identical results", "[rdf][threads]") {
  // Sizes with one chunk, a few, and the most; a cluster and a periodic box; an MPI share.
  for (const int64_t n : {5, 147, 309, 1200}) {
    const auto x = testing::fcc_cluster(n, 4.08, 0.15, static_cast<uint32_t>(n));
    const Box box({40.0, 0.0, 0.0, 0.0, 41.0, 0.0, 0.0, 0.0, 42.0});
    const std::vector<double> w = testing::random_weights(kSettings.n_bins, 9);
    for (const PairPartition partition : {PairPartition{0, 1}, PairPartition{1, 3}}) {
      const Rdf serial(kSettings, 1);
      const std::vector<double> g1 = compute(serial, x, box, partition);
      const Gradients b1 = backward(serial, x, box, w, partition);
      for (const int threads : {2, 3, 8}) {
        const Rdf parallel(kSettings, threads);
        CAPTURE(n, partition.rank, partition.size, threads);
        REQUIRE(compute(parallel, x, box, partition) == g1);
        const Gradients b = backward(parallel, x, box, w, partition);
        REQUIRE(b.dx == b1.dx);
        REQUIRE(b.strain == b1.strain);
        RdfRecord record;
        REQUIRE(compute(parallel, x, box, partition, &record) == g1);
        if (n * (n - 1) / 2 > RdfRecord::kMaxPairs) continue;  // too many pairs to record
        std::vector<double> dx(x.size()), strain(9);
        parallel.backward(record, w.data(), dx.data(), strain.data());
        REQUIRE(dx == b1.dx);
        REQUIRE(strain == b1.strain);
      }
    }
  }
}

TEST_CASE("compute_batch equals one compute per structure, for any thread count", "[rdf][threads]") {
  const int64_t n = 60, batch = 7;
  std::vector<double> positions;
  for (int64_t b = 0; b < batch; ++b) {
    const auto x = testing::fcc_cluster(n, 4.08, 0.3, static_cast<uint32_t>(100 + b));
    positions.insert(positions.end(), x.begin(), x.end());
  }
  const Rdf serial(kSettings);
  std::vector<double> expected;
  for (int64_t b = 0; b < batch; ++b) {
    const std::vector<double> x(positions.begin() + 3 * n * b, positions.begin() + 3 * n * (b + 1));
    const std::vector<double> g = compute(serial, x);
    expected.insert(expected.end(), g.begin(), g.end());
  }
  for (const int threads : {1, 2, 3}) {
    std::vector<double> g(static_cast<size_t>(batch * kSettings.n_bins));
    Rdf(kSettings, threads).compute_batch(positions.data(), batch, n, Box(), g.data());
    CAPTURE(threads);
    REQUIRE(g == expected);
  }
}

TEST_CASE("Backward pass from the pair record equals the recomputing one", "[rdf][record]") {
  const Rdf rdf(kSettings);
  const std::vector<double> w = testing::random_weights(kSettings.n_bins, 21);
  for (const bool periodic : {false, true}) {
    const Box box = periodic ? skewed_box() : Box();
    const auto x = periodic ? inside(box, 80, 6) : testing::fcc_cluster(80, 4.08, 0.2, 6);
    RdfRecord record;
    REQUIRE(record.empty());
    const std::vector<double> g = compute(rdf, x, box, {}, &record);
    REQUIRE_FALSE(record.empty());
    REQUIRE(g == compute(rdf, x, box));
    std::vector<double> dx(x.size()), strain(9);
    rdf.backward(record, w.data(), dx.data(), strain.data());
    const Gradients recomputed = backward(rdf, x, box, w);
    CAPTURE(periodic);
    REQUIRE(dx == recomputed.dx);
    REQUIRE(strain == recomputed.strain);
  }
}

TEST_CASE("Structures with too many pairs are not recorded", "[rdf][record]") {
  // 725 atoms have 262,450 pairs, just over RdfRecord::kMaxPairs.
  const auto x = testing::fcc_cluster(725, 4.08, 0.0, 1);
  const Rdf rdf(kSettings);
  RdfRecord record;
  compute(rdf, testing::fcc_cluster(20, 4.08, 0.0, 1), {}, {}, &record);
  REQUIRE_FALSE(record.empty());
  REQUIRE(compute(rdf, x, {}, {}, &record) == compute(rdf, x));
  REQUIRE(record.empty());
  std::vector<double> dx(x.size()), strain(9);
  const std::vector<double> w(static_cast<size_t>(kSettings.n_bins), 1.0);
  REQUIRE_THROWS_WITH(rdf.backward(record, w.data(), dx.data(), strain.data()),
                      Catch::Contains("needs a record filled by compute()"));
}

}  // namespace
}  // namespace nanochart
