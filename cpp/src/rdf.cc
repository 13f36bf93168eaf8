#include "nanochart/rdf.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nanochart/error.h"
#include "rdf_kernel.h"

namespace nanochart {
namespace {

constexpr double kSqrtTwoPi = 2.5066282746310002;

// Rows are visited in folded pairs (t, N-1-t) so that every task owns N-1 pairs: the triangular
// pair loop is then balanced over MPI ranks and threads alike. Rank `rank` of `size` owns the
// folded rows t with t % size == rank.
template <typename RowVisit>
void for_each_owned_row(int64_t n_atoms, const PairPartition& partition, RowVisit&& visit) {
  const int64_t folded_rows = (n_atoms + 1) / 2;
  const int64_t owned =
      folded_rows > partition.rank ? (folded_rows - partition.rank + partition.size - 1) / partition.size : 0;
  at::parallel_for(0, owned, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t row = partition.rank + task * partition.size;
      const int64_t mirror = n_atoms - 1 - row;
      visit(row);
      if (mirror != row) visit(mirror);
    }
  });
}

void check_inputs(const double* positions, int64_t n_atoms, const PairPartition& p) {
  if (n_atoms < 2) {
    throw InputError("the RDF needs at least 2 atoms, got " + std::to_string(n_atoms));
  }
  p.validate();
  check_finite_positions(positions, n_atoms);
}

double pair_count(int64_t n_atoms) { return 0.5 * static_cast<double>(n_atoms) * static_cast<double>(n_atoms - 1); }

// One scratch slot per worker thread. Inside an enclosing parallel region (the structure loop
// of Rdf::compute_batch) at::parallel_for runs inline on the calling thread, whose
// at::get_thread_num() is its id in the outer loop: one slot, always slot 0, serves then.
int scratch_slots() { return at::in_parallel_region() ? 1 : at::get_num_threads(); }
int scratch_slot(int slots) { return slots == 1 ? 0 : at::get_thread_num(); }

}  // namespace

void RdfSettings::validate() const {
  if (!std::isfinite(r_min) || !std::isfinite(r_max) || !(r_max > r_min)) {
    throw InputError("RDF grid needs r_max > r_min (both finite), got r_min=" + std::to_string(r_min) +
                     ", r_max=" + std::to_string(r_max));
  }
  if (r_min < 0.0) throw InputError("RDF grid needs r_min >= 0, got " + std::to_string(r_min));
  if (n_bins < 2) throw InputError("RDF grid needs n_bins >= 2, got " + std::to_string(n_bins));
  if (!std::isfinite(sigma) || !(sigma > 0.0)) {
    throw InputError("RDF smearing needs sigma > 0, got " + std::to_string(sigma));
  }
  if (spacing() > 20.0 * sigma) {
    throw InputError("RDF bins are " + std::to_string(spacing()) + " apart, more than 20 sigma (sigma=" +
                     std::to_string(sigma) + "): the grid would miss the Gaussians between bins; use more bins");
  }
  // Beyond 20 sigma a Gaussian is below 1e-87 of its peak: a larger cutoff changes nothing but
  // the cost (and would take the kernel's exponentials out of their range).
  if (!std::isfinite(cutoff_sigmas) || !(cutoff_sigmas > 0.0) || cutoff_sigmas > 20.0) {
    throw InputError("RDF kernel truncation needs 0 < cutoff_sigmas <= 20, got " + std::to_string(cutoff_sigmas));
  }
}

void PairPartition::validate() const {
  if (size < 1 || rank < 0 || rank >= size) {
    throw InputError("invalid pair partition: rank " + std::to_string(rank) + " of " + std::to_string(size));
  }
}

void check_finite_positions(const double* positions, int64_t n_atoms) {
  for (int64_t i = 0; i < n_atoms * 3; ++i) {
    if (!std::isfinite(positions[i])) {
      throw InputError("atom " + std::to_string(i / 3) + " has a NaN or infinite coordinate; check the structure");
    }
  }
}

Rdf::Rdf(const RdfSettings& settings) : settings_(settings) { settings_.validate(); }

RdfRecord::RdfRecord() = default;
RdfRecord::~RdfRecord() = default;
RdfRecord::RdfRecord(RdfRecord&&) noexcept = default;
RdfRecord& RdfRecord::operator=(RdfRecord&&) noexcept = default;

void Rdf::compute(const double* positions, int64_t n_atoms, const Box& box, double* g, PairPartition partition,
                  RdfRecord* record) const {
  check_inputs(positions, n_atoms, partition);
  const kernel::Grid grid(settings_);
  const kernel::Coordinates coords(positions, n_atoms);
  const int slots = scratch_slots();
  const int64_t n_pairs = static_cast<int64_t>(pair_count(n_atoms));
  if (record && n_pairs > RdfRecord::kMaxPairs) {
    record->clear();
    record = nullptr;
  }
  if (record) {
    if (!record->pairs_ || record->pairs_->capacity() != n_pairs) {
      record->pairs_ = std::make_unique<kernel::PairArrays>(n_pairs);
    }
    record->n_atoms_ = n_atoms;
    record->partition_ = partition;
  }
  // Rows write either into the record, each at its own pairs, or into per-thread scratch.
  std::vector<kernel::PairArrays> scratch;
  std::vector<kernel::CentreTable> sums;
  for (int t = 0; t < slots; ++t) {
    if (!record) scratch.emplace_back(n_atoms);
    sums.emplace_back(grid);
  }
  for_each_owned_row(n_atoms, partition, [&](int64_t i) {
    const int thread = scratch_slot(slots);
    const int64_t count = n_atoms - i - 1;
    const kernel::Row row = record ? kernel::Row(*record->pairs_, kernel::first_pair_of_row(i, n_atoms), nullptr)
                                   : kernel::Row(scratch[thread], 0, nullptr);
    kernel::fill_row(grid, coords, i, box, row);
    kernel::accumulate(grid, count, row, sums[thread]);
  });
  if (record) record->filled_ = true;
  std::fill(g, g + settings_.n_bins, 0.0);
  for (const auto& part : sums) kernel::add_to_rdf(grid, part, g);
  const double norm = 1.0 / (pair_count(n_atoms) * settings_.sigma * kSqrtTwoPi);
  for (int64_t k = 0; k < settings_.n_bins; ++k) g[k] *= norm;
}

void Rdf::compute_batch(const double* positions, int64_t batch, int64_t n_atoms, const Box& box, double* g,
                        PairPartition partition) const {
  if (batch < 1) throw InputError("the batch is empty: no structures to featurise");
  const int64_t m = settings_.n_bins;
  // Structures are independent: parallelise over them (each pair loop then runs inline).
  std::vector<std::string> errors(static_cast<size_t>(batch));
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      try {
        compute(positions + b * n_atoms * 3, n_atoms, box, g + b * m, partition);
      } catch (const InputError& e) {
        errors[static_cast<size_t>(b)] = e.what();
      }
    }
  });
  for (int64_t b = 0; b < batch; ++b) {
    if (!errors[static_cast<size_t>(b)].empty()) {
      throw InputError("structure " + std::to_string(b) + " of the batch: " + errors[static_cast<size_t>(b)]);
    }
  }
}

namespace {

// The backward pass over the owned rows; prepare_row(grid, i, thread, dL_dr scratch) returns row i
// with its separations and kernel parameters in place (recomputed, or from a record).
template <typename PrepareRow>
void backward_rows(const RdfSettings& settings, int64_t n_atoms, const PairPartition& partition, const double* dL_dg,
                   double* dL_dx, double* dL_dstrain, PrepareRow&& prepare_row) {
  const kernel::Grid grid(settings);
  const std::vector<double> padded_w = kernel::padded_weights(grid, dL_dg);
  const int slots = scratch_slots();
  std::vector<std::vector<double>> dL_dr(static_cast<size_t>(slots), std::vector<double>(static_cast<size_t>(n_atoms)));
  std::vector<kernel::AtomGradients> sums;
  for (int t = 0; t < slots; ++t) sums.emplace_back(n_atoms);
  // dK/dr = K x / sigma, with the kernel normalisation 1 / (P sigma sqrt(2 pi)).
  const double scale = 1.0 / (pair_count(n_atoms) * settings.sigma * kSqrtTwoPi * settings.sigma);
  for_each_owned_row(n_atoms, partition, [&](int64_t i) {
    const int thread = scratch_slot(slots);
    const int64_t count = n_atoms - i - 1;
    const kernel::Row row = prepare_row(grid, i, thread, dL_dr[static_cast<size_t>(thread)].data());
    kernel::pair_gradients(grid, count, row, padded_w.data());
    kernel::scatter_gradients(i, count, scale, row, sums[thread]);
  });
  std::fill(dL_dx, dL_dx + n_atoms * 3, 0.0);
  double strain[6] = {0, 0, 0, 0, 0, 0};
  for (const auto& part : sums) {
    for (int64_t a = 0; a < n_atoms; ++a) {
      dL_dx[3 * a] += part.x[a];
      dL_dx[3 * a + 1] += part.y[a];
      dL_dx[3 * a + 2] += part.z[a];
    }
    for (int c = 0; c < 6; ++c) strain[c] += part.strain[c];
  }
  const double full[9] = {strain[0], strain[3], strain[4], strain[3], strain[1],
                          strain[5], strain[4], strain[5], strain[2]};
  std::copy(full, full + 9, dL_dstrain);
}

}  // namespace

void Rdf::backward(const double* positions, int64_t n_atoms, const Box& box, const double* dL_dg, double* dL_dx,
                   double* dL_dstrain, PairPartition partition) const {
  check_inputs(positions, n_atoms, partition);
  const kernel::Coordinates coords(positions, n_atoms);
  std::vector<kernel::PairArrays> scratch;
  for (int t = 0; t < scratch_slots(); ++t) scratch.emplace_back(n_atoms);
  backward_rows(settings_, n_atoms, partition, dL_dg, dL_dx, dL_dstrain,
                [&](const kernel::Grid& grid, int64_t i, int thread, double* dL_dr) {
                  const kernel::Row row(scratch[thread], 0, dL_dr);
                  kernel::fill_row(grid, coords, i, box, row);
                  return row;
                });
}

void Rdf::backward(const RdfRecord& record, const double* dL_dg, double* dL_dx, double* dL_dstrain) const {
  if (record.empty()) throw Error("Rdf::backward needs a record filled by compute()");
  const int64_t n_atoms = record.n_atoms_;
  backward_rows(settings_, n_atoms, record.partition_, dL_dg, dL_dx, dL_dstrain,
                [&](const kernel::Grid&, int64_t i, int, double* dL_dr) {
                  return kernel::Row(*record.pairs_, kernel::first_pair_of_row(i, n_atoms), dL_dr);
                });
}

}  // namespace nanochart
