// How far a structure lies from the model's training structures on the chart (docs/design.md,
// "Off-chart warnings"): the mean CV-space distance from its CVs to the k nearest reference
// points (training structures' CVs), over a scale; off the chart above a calibrated threshold.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nanochart {

struct Novelty {
  int64_t n_cvs = 0;
  int64_t k = 5;
  std::vector<double> reference;  // n_reference() x n_cvs, row-major, in CV units
  double scale = 1.0;             // CV units per unit of novelty
  double threshold = 0.0;         // novelty above which a structure is off the chart

  int64_t n_reference() const { return n_cvs > 0 ? static_cast<int64_t>(reference.size()) / n_cvs : 0; }

  // Throws InputError when the fields do not fit together (what is wrong, in the message).
  void validate() const;

  // Novelty of one point (n_cvs values): a brute-force scan of the reference, a few microseconds
  // for the few thousand points a model file carries.
  double score(const double* cvs) const;

  // Novelty of a batch (batch x n_cvs) -> out (batch).
  void scores(const double* cvs, int64_t batch, double* out) const;

  bool off_chart(double novelty) const { return novelty > threshold; }
};

}  // namespace nanochart
