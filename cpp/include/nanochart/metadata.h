// The metadata that travels inside every exported model as `nanochart.json` (docs/design.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nanochart/novelty.h"
#include "nanochart/rdf.h"

namespace nanochart {

struct ModelMetadata {
  int format_version = 1;
  RdfSettings rdf;  // rdf.length_unit is the model's length unit
  std::vector<std::string> cv_names;
  std::vector<std::string> elements;
  int64_t n_atoms = 0;
  // The optional "novelty" key: reference CVs, k, scale and threshold (absent in files exported
  // or calibrated before it existed).
  std::optional<Novelty> novelty;
  std::string json;  // the full text, optional keys included

  // Parses and checks the required keys; throws ModelError saying which key is missing or wrong.
  static ModelMetadata from_json(const std::string& text);

  // Size of the model's length unit in nanometres (PLUMED's default length unit).
  double length_unit_in_nm() const { return nanochart::length_unit_in_nm(rdf.length_unit); }
};

}  // namespace nanochart
