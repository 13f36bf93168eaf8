// The collective variable with the shipped Au147 model (models/au147/au147.pt): values, forces
// against finite differences, the virial, the Jacobian, batches, thread counts and engines.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "helpers.h"
#include "nanochart/cv.h"
#include "nanochart/error.h"

namespace nanochart {
namespace {

using testing::max_relative;

constexpr int64_t kAtoms = 147;

std::vector<double> values_of(CollectiveVariable& cv, const std::vector<double>& x) {
  std::vector<double> s(static_cast<size_t>(cv.n_cvs()));
  cv.calculate(x.data(), static_cast<int64_t>(x.size() / 3), Box(), s.data(), false);
  return s;
}

TEST_CASE("The shipped model loads with its metadata and runs natively", "[cv]") {
  CollectiveVariable cv(NANOCHART_AU147_MODEL);
  REQUIRE(cv.n_cvs() == 3);
  REQUIRE(cv.metadata().cv_names == std::vector<std::string>{"cv1", "cv2", "cv3"});
  REQUIRE(cv.metadata().n_atoms == kAtoms);
  REQUIRE(cv.metadata().rdf.length_unit == "angstrom");
  REQUIRE(cv.rdf().n_bins() == 200);
  REQUIRE(cv.engine().rfind("native", 0) == 0);
  // Different structures, different CVs.
  const auto a = values_of(cv, testing::fcc_cluster(kAtoms, 4.08, 0.05, 1));
  const auto b = values_of(cv, testing::fcc_cluster(kAtoms, 4.08, 0.4, 2));
  REQUIRE(max_relative(a, b) > 1e-3);
}

TEST_CASE("Bias forces and virial equal finite differences of the bias", "[cv][gradients]") {
  CollectiveVariable cv(NANOCHART_AU147_MODEL);
  const auto x = testing::fcc_cluster(kAtoms, 4.08, 0.2, 3);
  const std::vector<double> dV_ds = {0.7, -1.3, 0.4};
  std::vector<double> s(3), forces(x.size()), virial(9);
  cv.calculate(x.data(), kAtoms, Box(), s.data());
  REQUIRE(cv.apply_bias(dV_ds.data(), forces.data(), virial.data()));
  REQUIRE(s == values_of(cv, x));

  const auto bias = [&](const std::vector<double>& y) { return testing::dot(dV_ds, values_of(cv, y)); };
  // A small step: the kernels' truncation makes the RDF jump by ~1e-8 of a peak where a pair
  // changes its nearest bin, which the model's input scaling magnifies in the empty bins.
  std::vector<double> minus_forces = testing::central_differences(x, 1e-6, bias);
  for (auto& f : minus_forces) f = -f;
  REQUIRE(max_relative(forces, minus_forces) < 1e-6);
  // The virial, dV/d(epsilon), of a cluster: -sum_i x_i (x) F_i.
  std::vector<double> expected(9, 0.0);
  for (size_t a = 0; a < x.size(); a += 3) {
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) expected[3 * r + c] -= x[a + r] * forces[a + c];
    }
  }
  REQUIRE(max_relative(virial, expected) < 1e-10);

  // The Jacobian's rows combine into the same forces; its box derivatives into the virial.
  std::vector<double> jacobian(3 * x.size()), box_derivatives(27);
  cv.calculate(x.data(), kAtoms, Box(), s.data());  // the finite differences recorded nothing
  cv.jacobian(jacobian.data(), box_derivatives.data());
  std::vector<double> combined(x.size(), 0.0), combined_virial(9, 0.0);
  for (size_t d = 0; d < 3; ++d) {
    for (size_t a = 0; a < x.size(); ++a) combined[a] -= dV_ds[d] * jacobian[d * x.size() + a];
    for (size_t a = 0; a < 9; ++a) combined_virial[a] -= dV_ds[d] * box_derivatives[d * 9 + a];
  }
  REQUIRE(max_relative(combined, forces) < 1e-12);
  REQUIRE(max_relative(combined_virial, virial) < 1e-12);

  // No force on the CV: no backward pass, zeros.
  const std::vector<double> zero(3, 0.0);
  REQUIRE_FALSE(cv.apply_bias(zero.data(), forces.data(), virial.data()));
  REQUIRE(forces == std::vector<double>(x.size(), 0.0));
}

TEST_CASE("Thread counts, batches and engines agree", "[cv][threads]") {
  std::vector<double> batch;
  for (uint32_t b = 0; b < 3; ++b) {
    const auto x = testing::fcc_cluster(kAtoms, 4.08, 0.1 + 0.1 * b, 10 + b);
    batch.insert(batch.end(), x.begin(), x.end());
  }
  const std::vector<double> x(batch.begin(), batch.begin() + 3 * kAtoms);
  const std::vector<double> dV_ds = {1.0, 0.5, -2.0};
  std::vector<std::vector<double>> results;
  for (const int threads : {1, 2, 3}) {
    CvOptions options;
    options.num_threads = threads;
    CollectiveVariable cv(NANOCHART_AU147_MODEL, options);
    REQUIRE(cv.num_threads() == threads);
    REQUIRE(cv.rdf().num_threads() == threads);
    std::vector<double> s(3), forces(x.size()), virial(9), many(9);
    cv.calculate(x.data(), kAtoms, Box(), s.data());
    cv.apply_bias(dV_ds.data(), forces.data(), virial.data());
    cv.values(batch.data(), 3, kAtoms, Box(), many.data());
    REQUIRE(std::vector<double>(many.begin(), many.begin() + 3) == s);
    for (int b = 0; b < 3; ++b) {
      const std::vector<double> one(batch.begin() + 3 * kAtoms * b, batch.begin() + 3 * kAtoms * (b + 1));
      REQUIRE(std::vector<double>(many.begin() + 3 * b, many.begin() + 3 * b + 3) == values_of(cv, one));
    }
    s.insert(s.end(), forces.begin(), forces.end());
    s.insert(s.end(), virial.begin(), virial.end());
    results.push_back(s);
  }
  REQUIRE(results[1] == results[0]);
  REQUIRE(results[2] == results[0]);

  CvOptions libtorch;
  libtorch.engine = EncoderEngine::kLibtorch;
  CollectiveVariable reference(NANOCHART_AU147_MODEL, libtorch);
  REQUIRE(reference.engine() == "libtorch (requested)");
  std::vector<double> s(3), forces(x.size()), virial(9);
  reference.calculate(x.data(), kAtoms, Box(), s.data());
  reference.apply_bias(dV_ds.data(), forces.data(), virial.data());
  s.insert(s.end(), forces.begin(), forces.end());
  s.insert(s.end(), virial.begin(), virial.end());
  REQUIRE(max_relative(s, results[0]) < 1e-9);
}

TEST_CASE("CV errors say what is wrong", "[cv][errors]") {
  REQUIRE_THROWS_AS(CollectiveVariable("/no/such/model.pt"), FileError);
  CvOptions no_threads;
  no_threads.num_threads = 0;
  REQUIRE_THROWS_WITH(CollectiveVariable(NANOCHART_AU147_MODEL, no_threads), "num_threads must be at least 1, got 0");
  CvOptions split;
  split.partition = {0, 2};
  REQUIRE_THROWS_WITH(CollectiveVariable(NANOCHART_AU147_MODEL, split), Catch::Contains("needs sum_over_ranks"));
  CollectiveVariable cv(NANOCHART_AU147_MODEL);
  std::vector<double> dV_ds(3, 1.0), forces(3 * kAtoms), virial(9);
  REQUIRE_THROWS_WITH(cv.apply_bias(dV_ds.data(), forces.data(), virial.data()),
                      Catch::Contains("apply_bias() needs a calculate()"));
}

TEST_CASE("The shipped model carries its novelty reference", "[cv][novelty]") {
  CollectiveVariable cv(NANOCHART_AU147_MODEL);
  REQUIRE(cv.has_novelty());
  const Novelty& novelty = cv.novelty();
  REQUIRE(novelty.n_cvs == 3);
  REQUIRE(novelty.k == 5);
  REQUIRE(novelty.n_reference() == 4000);  // 11 277 training structures, subsampled evenly
  REQUIRE(novelty.threshold > 1.0);
  // A training structure is on the chart; a cluster on a lattice 20% larger than gold's is not
  // (compressed ones are flagged less reliably by this model: the card's "Off-chart warnings").
  REQUIRE_FALSE(novelty.off_chart(novelty.score(novelty.reference.data() + 3 * 1234)));
  const auto stretched = values_of(cv, testing::fcc_cluster(kAtoms, 1.2 * 4.08, 0.05, 4));
  REQUIRE(novelty.off_chart(novelty.score(stretched.data())));
}

}  // namespace
}  // namespace nanochart
