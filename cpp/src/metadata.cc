#include "nanochart/metadata.h"

#include <cmath>

#include "json.h"
#include "nanochart/error.h"

namespace nanochart {
namespace {

constexpr int kFormatVersion = 1;

[[noreturn]] void bad(const std::string& what) { throw ModelError("model metadata (nanochart.json) " + what); }

const json::Value& require(const json::Value& parent, const std::string& key, json::Value::Kind kind,
                           const std::string& where) {
  const json::Value* value = parent.find(key);
  if (value == nullptr) bad("lacks the required key \"" + where + key + "\"");
  if (value->kind != kind) {
    bad("key \"" + where + key + "\" must be " + json::kind_name(kind) + ", found " + json::kind_name(value->kind));
  }
  return *value;
}

double require_number(const json::Value& parent, const std::string& key, const std::string& where) {
  return require(parent, key, json::Value::Kind::Number, where).number;
}

std::vector<std::string> require_strings(const json::Value& parent, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& item : require(parent, key, json::Value::Kind::Array, "").array) {
    if (item.kind != json::Value::Kind::String) bad("key \"" + key + "\" must be a list of strings");
    out.push_back(item.string);
  }
  return out;
}

int64_t require_integer(const json::Value& parent, const std::string& key, const std::string& where) {
  const double value = require_number(parent, key, where);
  if (value != std::floor(value)) bad("key \"" + where + key + "\" must be a whole number");
  return static_cast<int64_t>(value);
}

Novelty parse_novelty(const json::Value& node, int64_t n_cvs) {
  Novelty novelty;
  novelty.n_cvs = n_cvs;
  novelty.k = require_integer(node, "k", "novelty.");
  novelty.scale = require_number(node, "scale", "novelty.");
  novelty.threshold = require_number(node, "threshold", "novelty.");
  const auto& rows = require(node, "reference_cvs", json::Value::Kind::Array, "novelty.").array;
  novelty.reference.reserve(rows.size() * static_cast<size_t>(n_cvs));
  for (const auto& row : rows) {
    if (row.kind != json::Value::Kind::Array || static_cast<int64_t>(row.array.size()) != n_cvs) {
      bad("key \"novelty.reference_cvs\" must be a list of rows of " + std::to_string(n_cvs) + " numbers (one per CV)");
    }
    for (const auto& x : row.array) {
      if (x.kind != json::Value::Kind::Number) bad("key \"novelty.reference_cvs\" must hold numbers only");
      novelty.reference.push_back(x.number);
    }
  }
  try {
    novelty.validate();
  } catch (const InputError& e) {
    bad(std::string("has an unusable novelty calibration: ") + e.what());
  }
  return novelty;
}

}  // namespace

ModelMetadata ModelMetadata::from_json(const std::string& text) {
  json::Value root;
  try {
    root = json::parse(text);
  } catch (const std::runtime_error& e) {
    bad(std::string("is not valid JSON: ") + e.what());
  }
  if (root.kind != json::Value::Kind::Object) bad("must be a JSON object");

  ModelMetadata meta;
  meta.json = text;
  meta.format_version = static_cast<int>(require_integer(root, "format_version", ""));
  if (meta.format_version != kFormatVersion) {
    bad("has format_version " + std::to_string(meta.format_version) + "; this nanochart reads version " +
        std::to_string(kFormatVersion) + " (upgrade nanochart or re-export the model)");
  }
  const json::Value& rdf = require(root, "rdf", json::Value::Kind::Object, "");
  meta.rdf.r_min = require_number(rdf, "r_min", "rdf.");
  meta.rdf.r_max = require_number(rdf, "r_max", "rdf.");
  meta.rdf.n_bins = require_integer(rdf, "n_bins", "rdf.");
  meta.rdf.sigma = require_number(rdf, "sigma", "rdf.");
  if (rdf.find("cutoff_sigmas") != nullptr) meta.rdf.cutoff_sigmas = require_number(rdf, "cutoff_sigmas", "rdf.");
  if (rdf.find("length_unit") != nullptr) {
    meta.rdf.length_unit = require(rdf, "length_unit", json::Value::Kind::String, "rdf.").string;
  }
  try {
    meta.rdf.validate();
  } catch (const InputError& e) {
    bad(std::string("has impossible RDF settings: ") + e.what());
  }

  meta.cv_names = require_strings(root, "cv_names");
  if (meta.cv_names.empty()) bad("key \"cv_names\" is empty: a model needs at least one CV");
  meta.elements = require_strings(root, "elements");
  meta.n_atoms = require_integer(root, "n_atoms", "");
  if (meta.n_atoms < 2) bad("key \"n_atoms\" must be at least 2");
  if (root.find("novelty") != nullptr) {
    meta.novelty = parse_novelty(require(root, "novelty", json::Value::Kind::Object, ""),
                                 static_cast<int64_t>(meta.cv_names.size()));
  }
  return meta;
}

}  // namespace nanochart
