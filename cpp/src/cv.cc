#include "nanochart/cv.h"

#include <algorithm>

#include "nanochart/error.h"
#include "torch_threads.h"

namespace nanochart {

CollectiveVariable::CollectiveVariable(const std::string& model_path, CvOptions options)
    : options_(std::move(options)),
      encoder_(model_path, options_.engine),
      rdf_(encoder_.metadata().rdf, options_.num_threads) {  // throws for num_threads < 1
  options_.partition.validate();
  if (options_.partition.size > 1 && !options_.sum_over_ranks) {
    throw InputError("a pair partition over several ranks needs sum_over_ranks to add up the partial results");
  }
}

CollectiveVariable::~CollectiveVariable() = default;

const Novelty& CollectiveVariable::novelty() const {
  if (!has_novelty()) {
    throw ModelError(
        "the model has no novelty reference (its nanochart.json lacks \"novelty\": exported before "
        "nanochart had off-chart warnings, or never calibrated); add one with `nanochart calibrate-novelty "
        "MODEL --chart CHART_DIR --held-out HELD_OUT`");
  }
  return *metadata().novelty;
}

void CollectiveVariable::calculate(const double* positions, int64_t n_atoms, const Box& box, double* values,
                                   bool record_gradients) {
  recorded_ = false;
  std::vector<double> g(static_cast<size_t>(rdf_.n_bins()));
  rdf_record_.clear();
  rdf_.compute(positions, n_atoms, box, g.data(), options_.partition, record_gradients ? &rdf_record_ : nullptr);
  if (options_.sum_over_ranks) options_.sum_over_ranks(g.data(), g.size());
  ScopedThreadCount threads(options_.num_threads);
  if (!record_gradients) {
    encoder_.evaluate(g.data(), 1, values);
    return;
  }
  encoder_.forward_recorded(g.data(), values);
  positions_.assign(positions, positions + n_atoms * 3);
  n_atoms_ = n_atoms;
  box_ = box;
  recorded_ = true;
}

void CollectiveVariable::backpropagate(const double* dV_dg, double* dV_dx, double* dV_dstrain) {
  if (rdf_record_.empty()) {
    rdf_.backward(positions_.data(), n_atoms_, box_, dV_dg, dV_dx, dV_dstrain, options_.partition);
  } else {
    rdf_.backward(rdf_record_, dV_dg, dV_dx, dV_dstrain);
  }
  if (options_.sum_over_ranks) {
    options_.sum_over_ranks(dV_dx, static_cast<size_t>(n_atoms_) * 3);
    options_.sum_over_ranks(dV_dstrain, 9);
  }
}

bool CollectiveVariable::apply_bias(const double* dV_ds, double* forces, double* virial) {
  if (!recorded_) {
    throw Error("apply_bias() needs a calculate() with record_gradients first, on the same positions");
  }
  const bool any_force = std::any_of(dV_ds, dV_ds + n_cvs(), [](double x) { return x != 0.0; });
  if (!any_force) {
    std::fill(forces, forces + n_atoms_ * 3, 0.0);
    std::fill(virial, virial + 9, 0.0);
    return false;
  }
  std::vector<double> dV_dg(static_cast<size_t>(rdf_.n_bins()));
  {
    ScopedThreadCount threads(options_.num_threads);
    encoder_.vjp(dV_ds, dV_dg.data(), /*keep_graph=*/true);
  }
  backpropagate(dV_dg.data(), forces, virial);  // forces now hold dV/dx, virial dV/d(epsilon)
  for (int64_t a = 0; a < n_atoms_ * 3; ++a) forces[a] = -forces[a];
  return true;
}

void CollectiveVariable::jacobian(double* jacobian, double* box_derivatives) {
  if (!recorded_) {
    throw Error("jacobian() needs a calculate() with record_gradients first, on the same positions");
  }
  const int64_t d = n_cvs();
  std::vector<double> unit(static_cast<size_t>(d));
  std::vector<double> ds_dg(static_cast<size_t>(rdf_.n_bins()));
  for (int64_t c = 0; c < d; ++c) {
    std::fill(unit.begin(), unit.end(), 0.0);
    unit[static_cast<size_t>(c)] = 1.0;
    {
      ScopedThreadCount threads(options_.num_threads);
      encoder_.vjp(unit.data(), ds_dg.data(), /*keep_graph=*/true);
    }
    double* box_c = box_derivatives + c * 9;
    backpropagate(ds_dg.data(), jacobian + c * n_atoms_ * 3, box_c);
    for (int a = 0; a < 9; ++a) box_c[a] = -box_c[a];
  }
}

void CollectiveVariable::values(const double* positions, int64_t batch, int64_t n_atoms, const Box& box, double* out) {
  std::vector<double> g(static_cast<size_t>(std::max<int64_t>(batch, 0) * rdf_.n_bins()));
  rdf_.compute_batch(positions, batch, n_atoms, box, g.data(), options_.partition);
  if (options_.sum_over_ranks) options_.sum_over_ranks(g.data(), g.size());
  ScopedThreadCount threads(options_.num_threads);
  encoder_.evaluate(g.data(), batch, out);
}

}  // namespace nanochart
