// The novelty score (nanochart/novelty.h) and its place in the model metadata: distances worked
// out by hand, the checks on its fields, and metadata with and without it.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "nanochart/error.h"
#include "nanochart/metadata.h"
#include "nanochart/novelty.h"

namespace nanochart {
namespace {

// Ten points on the x axis of a 2-CV chart, at x = 0, 1, ..., 9.
Novelty line_reference(int64_t k, double scale, double threshold) {
  Novelty novelty;
  novelty.n_cvs = 2;
  novelty.k = k;
  novelty.scale = scale;
  novelty.threshold = threshold;
  for (int i = 0; i < 10; ++i) novelty.reference.insert(novelty.reference.end(), {double(i), 0.0});
  return novelty;
}

TEST_CASE("Novelty is the mean distance to the k nearest reference points over the scale", "[novelty]") {
  const Novelty novelty = line_reference(3, 2.0, 1.0);
  novelty.validate();
  REQUIRE(novelty.n_reference() == 10);
  const double near[2] = {4.2, 0.0};  // nearest: 4, 5 and 3, at 0.2, 0.8 and 1.2
  REQUIRE(novelty.score(near) == Approx((0.2 + 0.8 + 1.2) / 3 / 2.0).epsilon(1e-14));
  const double off[2] = {0.0, 3.0};  // nearest: 0, 1 and 2, at 3, sqrt(10) and sqrt(13)
  const double expected = (3.0 + std::sqrt(10.0) + std::sqrt(13.0)) / 3 / 2.0;
  REQUIRE(novelty.score(off) == Approx(expected).epsilon(1e-14));
  REQUIRE_FALSE(novelty.off_chart(novelty.score(near)));
  REQUIRE(novelty.off_chart(novelty.score(off)));

  // The order of the reference does not matter; a batch gives what single calls give.
  Novelty reversed = novelty;
  for (int i = 0; i < 10; ++i) reversed.reference[2 * i] = 9.0 - i;
  REQUIRE(reversed.score(off) == Approx(expected).epsilon(1e-14));
  const std::vector<double> batch = {4.2, 0.0, 0.0, 3.0, 20.0, -1.0};
  std::vector<double> out(3);
  novelty.scores(batch.data(), 3, out.data());
  REQUIRE(out[0] == novelty.score(near));
  REQUIRE(out[1] == novelty.score(off));
  // Far beyond the end: the three nearest are 9, 8, 7.
  const double far = (std::hypot(11.0, 1.0) + std::hypot(12.0, 1.0) + std::hypot(13.0, 1.0)) / 3 / 2.0;
  REQUIRE(out[2] == Approx(far).epsilon(1e-14));

  // k = 1 on a reference point: zero.
  const Novelty nearest = line_reference(1, 1.0, 1.0);
  const double on[2] = {7.0, 0.0};
  REQUIRE(nearest.score(on) == 0.0);
}

TEST_CASE("A novelty whose fields do not fit together is refused, saying which", "[novelty][errors]") {
  REQUIRE_THROWS_WITH(line_reference(11, 1.0, 1.0).validate(), Catch::Contains("k must be between 1 and the 10"));
  REQUIRE_THROWS_WITH(line_reference(0, 1.0, 1.0).validate(), Catch::Contains("k must be between 1"));
  REQUIRE_THROWS_WITH(line_reference(3, 0.0, 1.0).validate(), Catch::Contains("scale must be positive"));
  REQUIRE_THROWS_WITH(line_reference(3, 1.0, -2.0).validate(), Catch::Contains("threshold must be positive"));
  Novelty ragged = line_reference(3, 1.0, 1.0);
  ragged.reference.push_back(1.0);
  REQUIRE_THROWS_AS(ragged.validate(), InputError);
  REQUIRE_THROWS_WITH(ragged.validate(), Catch::Contains("whole rows of 2 CVs, got 21 numbers"));
}

std::string metadata_json(const std::string& novelty) {
  return R"({"format_version": 1, "rdf": {"r_min": 0, "r_max": 16, "n_bins": 200, "sigma": 0.1},
             "cv_names": ["cv1", "cv2"], "elements": ["Au"], "n_atoms": 147)" +
         (novelty.empty() ? std::string() : ", \"novelty\": " + novelty) + "}";
}

TEST_CASE("The model metadata carries an optional novelty reference", "[novelty][metadata]") {
  // Older files have none: they load as before.
  REQUIRE_FALSE(ModelMetadata::from_json(metadata_json("")).novelty.has_value());

  const auto meta = ModelMetadata::from_json(metadata_json(
      R"({"k": 2, "scale": 0.5, "threshold": 3, "calibration": {"percentile": 99},
          "reference_cvs": [[0, 0], [1, 0], [0, 2]]})"));
  REQUIRE(meta.novelty.has_value());
  const Novelty& novelty = *meta.novelty;
  REQUIRE(novelty.n_cvs == 2);
  REQUIRE(novelty.n_reference() == 3);
  REQUIRE(novelty.reference == std::vector<double>{0, 0, 1, 0, 0, 2});
  const double point[2] = {0.0, 1.0};  // nearest: (0, 0) and (0, 2) at 1, then (1, 0)
  REQUIRE(novelty.score(point) == Approx(1.0 / 0.5).epsilon(1e-14));

  REQUIRE_THROWS_WITH(
      ModelMetadata::from_json(metadata_json(R"({"k": 1, "scale": 1, "threshold": 1, "reference_cvs": [[0, 0, 0]]})")),
      Catch::Contains("\"novelty.reference_cvs\" must be a list of rows of 2 numbers"));
  REQUIRE_THROWS_WITH(
      ModelMetadata::from_json(metadata_json(R"({"k": 4, "scale": 1, "threshold": 1, "reference_cvs": [[0, 0]]})")),
      Catch::Contains("unusable novelty calibration: novelty: k must be between 1 and the 1"));
  REQUIRE_THROWS_AS(ModelMetadata::from_json(metadata_json(R"({"k": 1, "scale": 1, "reference_cvs": [[0, 0]]})")),
                    ModelError);
  REQUIRE_THROWS_WITH(ModelMetadata::from_json(metadata_json(R"([1, 2])")),
                      Catch::Contains("key \"novelty\" must be an object"));
}

}  // namespace
}  // namespace nanochart
