// What the RDF part refuses, and the messages that say why: settings, inputs, cells, metadata.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "helpers.h"
#include "nanochart/error.h"
#include "nanochart/metadata.h"
#include "nanochart/rdf.h"

namespace nanochart {
namespace {

using Catch::Contains;

RdfSettings with(void (*change)(RdfSettings&)) {
  RdfSettings s;
  change(s);
  return s;
}

TEST_CASE("Impossible RDF settings are refused, naming the setting", "[errors]") {
  const std::vector<std::pair<RdfSettings, std::string>> cases = {
      {with([](RdfSettings& s) { s.r_max = s.r_min; }), "RDF grid needs r_max > r_min"},
      {with([](RdfSettings& s) { s.r_max = NAN; }), "RDF grid needs r_max > r_min (both finite)"},
      {with([](RdfSettings& s) { s.r_min = -1.0; }), "RDF grid needs r_min >= 0, got -1"},
      {with([](RdfSettings& s) { s.n_bins = 1; }), "RDF grid needs n_bins >= 2, got 1"},
      {with([](RdfSettings& s) { s.sigma = 0.0; }), "RDF smearing needs sigma > 0"},
      {with([](RdfSettings& s) { s.n_bins = 4; }), "more than 20 sigma"},
      {with([](RdfSettings& s) { s.cutoff_sigmas = 25.0; }), "needs 0 < cutoff_sigmas <= 20, got 25"},
      {with([](RdfSettings& s) { s.length_unit = "furlong"; }), "unknown length_unit \"furlong\""},
  };
  for (const auto& [settings, message] : cases) {
    CAPTURE(message);
    REQUIRE_THROWS_AS(settings.validate(), InputError);
    REQUIRE_THROWS_WITH(Rdf(settings), Contains(message));
  }
  REQUIRE_NOTHROW(RdfSettings().validate());
  REQUIRE_THROWS_WITH(Rdf(RdfSettings(), 0), "num_threads must be at least 1, got 0");
  Rdf rdf{RdfSettings()};
  REQUIRE_THROWS_WITH(rdf.set_num_threads(-2), "num_threads must be at least 1, got -2");
  REQUIRE(rdf.num_threads() == 1);
}

TEST_CASE("Length units and their size", "[errors]") {
  REQUIRE(length_unit_in_nm("angstrom") == 0.1);
  REQUIRE(length_unit_in_nm("A") == 0.1);
  REQUIRE(length_unit_in_nm("nm") == 1.0);
  REQUIRE(length_unit_in_nm("bohr") == Approx(0.0529177));
  REQUIRE_THROWS_WITH(length_unit_in_nm("Angstrom"), "unknown length_unit \"Angstrom\"; use angstrom, nm or bohr");
}

TEST_CASE("Non-finite positions are refused, naming the atom", "[errors]") {
  const Rdf rdf{RdfSettings()};
  std::vector<double> x = testing::fcc_cluster(13, 4.08, 0.0, 1);
  std::vector<double> g(200), dx(x.size()), strain(9), w(200, 1.0);
  for (const double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    x[3 * 4 + 2] = bad;
    const std::string message = "atom 4 has a NaN or infinite coordinate";
    REQUIRE_THROWS_WITH(rdf.compute(x.data(), 13, Box(), g.data()), Contains(message));
    REQUIRE_THROWS_WITH(rdf.backward(x.data(), 13, Box(), w.data(), dx.data(), strain.data()), Contains(message));
    REQUIRE_THROWS_AS(check_finite_positions(x.data(), 13), InputError);
  }
  // In a batch, the error names the structure too.
  std::vector<double> batch = testing::fcc_cluster(13, 4.08, 0.0, 1);
  batch.insert(batch.end(), x.begin(), x.end());
  std::vector<double> gs(400);
  for (const int threads : {1, 2}) {
    REQUIRE_THROWS_WITH(Rdf(RdfSettings(), threads).compute_batch(batch.data(), 2, 13, Box(), gs.data()),
                        "structure 1 of the batch: atom 4 has a NaN or infinite coordinate; check the structure");
  }
  REQUIRE_THROWS_WITH(rdf.compute_batch(batch.data(), 0, 13, Box(), gs.data()), Contains("the batch is empty"));
}

TEST_CASE("Too few atoms, bad partitions and bad cells are refused", "[errors]") {
  const Rdf rdf{RdfSettings()};
  std::vector<double> x = testing::fcc_cluster(4, 4.08, 0.0, 1), g(200);
  REQUIRE_THROWS_WITH(rdf.compute(x.data(), 1, Box(), g.data()), "the RDF needs at least 2 atoms, got 1");
  REQUIRE_THROWS_WITH(rdf.compute(x.data(), 4, Box(), g.data(), PairPartition{3, 3}),
                      "invalid pair partition: rank 3 of 3");
  REQUIRE_THROWS_WITH(rdf.compute(x.data(), 4, Box(), g.data(), PairPartition{0, 0}),
                      "invalid pair partition: rank 0 of 0");
  REQUIRE_THROWS_WITH(Box({1, 0, 0, 0, 1, 0, 1, 1, 0}), Contains("do not span 3D space"));
  REQUIRE_THROWS_WITH(Box({1, 0, 0, 0, NAN, 0, 0, 0, 1}), Contains("NaN or infinite"));
}

std::string metadata(const std::string& rdf_extra = "", const std::string& drop = "") {
  std::string rdf = R"("r_min": 0.0, "r_max": 16.0, "n_bins": 200, "sigma": 0.1)" + rdf_extra;
  std::vector<std::pair<std::string, std::string>> keys = {{"format_version", "1"},
                                                           {"rdf", "{" + rdf + "}"},
                                                           {"cv_names", R"(["cv1", "cv2"])"},
                                                           {"elements", R"(["Au"])"},
                                                           {"n_atoms", "147"}};
  std::string text = "{";
  for (const auto& [key, value] : keys) {
    if (key == drop) continue;
    text += (text.size() > 1 ? ", \"" : "\"") + key + "\": " + value;
  }
  return text + "}";
}

TEST_CASE("Model metadata: the required keys and what they mean", "[metadata]") {
  const ModelMetadata meta = ModelMetadata::from_json(metadata());
  REQUIRE(meta.rdf.n_bins == 200);
  REQUIRE(meta.rdf.cutoff_sigmas == 6.0);  // optional, defaulted
  REQUIRE(meta.rdf.length_unit == "angstrom");
  REQUIRE(meta.length_unit_in_nm() == 0.1);
  REQUIRE(meta.cv_names == std::vector<std::string>{"cv1", "cv2"});
  REQUIRE(meta.n_atoms == 147);
  const ModelMetadata nm = ModelMetadata::from_json(metadata(R"(, "length_unit": "nm", "cutoff_sigmas": 5)"));
  REQUIRE(nm.rdf.length_unit == "nm");
  REQUIRE(nm.length_unit_in_nm() == 1.0);
  REQUIRE(nm.rdf.cutoff_sigmas == 5.0);
}

TEST_CASE("Model metadata errors name the key", "[metadata][errors]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {metadata("", "rdf"), "lacks the required key \"rdf\""},
      {metadata("", "cv_names"), "lacks the required key \"cv_names\""},
      {metadata("", "elements"), "lacks the required key \"elements\""},
      {metadata("", "n_atoms"), "lacks the required key \"n_atoms\""},
      {metadata("", "format_version"), "lacks the required key \"format_version\""},
      {R"({"format_version": 1, "rdf": {"r_min": 0, "r_max": 16, "sigma": 0.1}})",
       "lacks the required key \"rdf.n_bins\""},
      {metadata(R"(, "length_unit": 7)"), "key \"rdf.length_unit\" must be a string, found a number"},
      {metadata(R"(, "length_unit": "furlong")"), "has impossible RDF settings: unknown length_unit \"furlong\""},
      {metadata(R"(, "sigma": -1)"), "has impossible RDF settings: RDF smearing needs sigma > 0"},
      {R"({"format_version": 7})", "has format_version 7"},
      {"{oops", "is not valid JSON: invalid JSON at byte"},
      {"[1, 2]", "must be a JSON object"},
  };
  for (const auto& [text, message] : cases) {
    CAPTURE(text);
    REQUIRE_THROWS_AS(ModelMetadata::from_json(text), ModelError);
    REQUIRE_THROWS_WITH(ModelMetadata::from_json(text), Contains("model metadata (nanochart.json) " + message));
  }
}

}  // namespace
}  // namespace nanochart
