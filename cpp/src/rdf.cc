#include "nanochart/rdf.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nanochart/error.h"
#include "rdf_kernel.h"
#include "thread_pool.h"

namespace nanochart {
namespace {

constexpr double kSqrtTwoPi = 2.5066282746310002;

// Rows are visited in folded pairs (t, N-1-t), tasks of N-1 pairs each, so that the triangular
// pair loop is balanced over MPI ranks and threads alike. Rank `rank` of `size` owns the folded
// rows t with t % size == rank. Its tasks are cut into chunks of consecutive tasks: the unit a
// thread takes at a time, and the unit of the partial sums, which are added in chunk order. The
// chunk count depends on the structure's size and MPI share alone, so results are the same for
// any thread count.
class RowChunks {
 public:
  // A chunk costs about a microsecond on top of its pairs (clearing and adding its partial sums),
  // some 100 pairs' work: about sqrt(pairs) / 24 chunks keeps that near 2% or less at one thread
  // and gives a few hundred atoms enough chunks to share; a multiple of 4 shares evenly between 2
  // or 4 threads. No chunk under kMinPairs pairs, none beyond kMaxChunks.
  static constexpr int64_t kMinPairs = 2048;
  static constexpr int64_t kMaxChunks = 64;

  RowChunks(int64_t n_atoms, const PairPartition& partition) : n_atoms_(n_atoms), partition_(partition) {
    const int64_t folded_rows = (n_atoms + 1) / 2;
    tasks_ = folded_rows > partition.rank ? (folded_rows - partition.rank + partition.size - 1) / partition.size : 0;
    const int64_t pairs = tasks_ * (n_atoms - 1);
    const int64_t by_size = 4 * std::max<int64_t>(1, std::llround(std::sqrt(static_cast<double>(pairs)) / 96.0));
    chunks_ = std::clamp<int64_t>(std::min(by_size, pairs / kMinPairs), 1,
                                  std::max<int64_t>(1, std::min(tasks_, kMaxChunks)));
  }

  int64_t count() const { return chunks_; }

  // visit(i) for every row i of the chunk.
  template <typename RowVisit>
  void visit(int64_t chunk, RowVisit&& visit) const {
    for (int64_t task = chunk * tasks_ / chunks_; task < (chunk + 1) * tasks_ / chunks_; ++task) {
      const int64_t row = partition_.rank + task * partition_.size;
      const int64_t mirror = n_atoms_ - 1 - row;
      visit(row);
      if (mirror != row) visit(mirror);
    }
  }

 private:
  int64_t n_atoms_;
  PairPartition partition_;
  int64_t tasks_;
  int64_t chunks_;
};

// sum[k] += part[k]: how per-chunk partial sums are added, in chunk order.
void add_to(int64_t count, const double* __restrict part, double* __restrict sum) {
  for (int64_t k = 0; k < count; ++k) sum[k] += part[k];
}

int check_threads(int num_threads) {
  if (num_threads < 1) throw InputError("num_threads must be at least 1, got " + std::to_string(num_threads));
  return num_threads;
}

void check_inputs(const double* positions, int64_t n_atoms, const PairPartition& p) {
  if (n_atoms < 2) {
    throw InputError("the RDF needs at least 2 atoms, got " + std::to_string(n_atoms));
  }
  p.validate();
  check_finite_positions(positions, n_atoms);
}

double pair_count(int64_t n_atoms) { return 0.5 * static_cast<double>(n_atoms) * static_cast<double>(n_atoms - 1); }

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
  length_unit_in_nm(length_unit);
}

double length_unit_in_nm(const std::string& unit) {
  if (unit == "angstrom" || unit == "A") return 0.1;
  if (unit == "nm") return 1.0;
  if (unit == "bohr") return 0.052917721067;
  throw InputError("unknown length_unit \"" + unit + "\"; use angstrom, nm or bohr");
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

Rdf::Rdf(const RdfSettings& settings, int num_threads) : settings_(settings), num_threads_(check_threads(num_threads)) {
  settings_.validate();
}

void Rdf::set_num_threads(int num_threads) { num_threads_ = check_threads(num_threads); }

RdfRecord::RdfRecord() = default;
RdfRecord::~RdfRecord() = default;
RdfRecord::RdfRecord(RdfRecord&&) noexcept = default;
RdfRecord& RdfRecord::operator=(RdfRecord&&) noexcept = default;

void Rdf::compute(const double* positions, int64_t n_atoms, const Box& box, double* g, PairPartition partition,
                  RdfRecord* record) const {
  compute_on(num_threads_, positions, n_atoms, box, g, partition, record);
}

void Rdf::compute_on(int threads, const double* positions, int64_t n_atoms, const Box& box, double* g,
                     const PairPartition& partition, RdfRecord* record) const {
  check_inputs(positions, n_atoms, partition);
  const kernel::Grid grid(settings_);
  const kernel::Coordinates coords(positions, n_atoms);
  const RowChunks chunks(n_atoms, partition);
  const int slots = static_cast<int>(std::min<int64_t>(threads, chunks.count()));
  const int64_t n_pairs = static_cast<int64_t>(pair_count(n_atoms));
  if (record && n_pairs > RdfRecord::kMaxPairs) {
    record->clear();
    record = nullptr;
  }
  if (record) {
    if (!record->rows_ || record->rows_->n_atoms != n_atoms)
      record->rows_ = std::make_unique<kernel::RecordedRows>(n_atoms);
    record->partition_ = partition;
  }
  // Rows write either into the record, each at its own pairs, or into per-thread scratch; each
  // chunk's kernel sums go through its thread's table into the chunk's own partial RDF.
  std::vector<kernel::PairArrays> scratch;
  std::vector<kernel::CentreTable> tables;
  for (int t = 0; t < slots; ++t) {
    if (!record) scratch.emplace_back(kernel::padded_pairs(n_atoms));
    tables.emplace_back(grid);
  }
  const int64_t m = settings_.n_bins;
  std::vector<double> partial(static_cast<size_t>(chunks.count() * m), 0.0);
  parallel_chunks(threads, chunks.count(), [&](int64_t chunk, int slot) {
    kernel::CentreTable& table = tables[static_cast<size_t>(slot)];
    chunks.visit(chunk, [&](int64_t i) {
      const kernel::Row row =
          record ? record->rows_->row(i, nullptr) : kernel::Row(scratch[static_cast<size_t>(slot)], 0, nullptr);
      kernel::fill_row(grid, coords, i, box, row);
      kernel::accumulate(grid, n_atoms - i - 1, row, table);
    });
    kernel::move_to_rdf(grid, table, partial.data() + chunk * m);
  });
  if (record) record->filled_ = true;
  std::fill(g, g + m, 0.0);
  for (int64_t chunk = 0; chunk < chunks.count(); ++chunk) add_to(m, partial.data() + chunk * m, g);
  const double norm = 1.0 / (pair_count(n_atoms) * settings_.sigma * kSqrtTwoPi);
  for (int64_t k = 0; k < m; ++k) g[k] *= norm;
}

void Rdf::compute_batch(const double* positions, int64_t batch, int64_t n_atoms, const Box& box, double* g,
                        PairPartition partition) const {
  if (batch < 1) throw InputError("the batch is empty: no structures to featurise");
  const int64_t m = settings_.n_bins;
  // Structures are independent: the threads share them out, each structure on one thread.
  std::vector<std::string> errors(static_cast<size_t>(batch));
  parallel_chunks(num_threads_, batch, [&](int64_t b, int) {
    try {
      compute_on(1, positions + b * n_atoms * 3, n_atoms, box, g + b * m, partition, nullptr);
    } catch (const InputError& e) {
      errors[static_cast<size_t>(b)] = e.what();
    }
  });
  for (int64_t b = 0; b < batch; ++b) {
    if (!errors[static_cast<size_t>(b)].empty()) {
      throw InputError("structure " + std::to_string(b) + " of the batch: " + errors[static_cast<size_t>(b)]);
    }
  }
}

namespace {

// The backward pass over the owned rows; prepare_row(grid, i, slot, dL_dr scratch) returns row i
// with its separations and kernel parameters in place (recomputed, or from a record).
template <typename PrepareRow>
void backward_rows(const RdfSettings& settings, int threads, int64_t n_atoms, const PairPartition& partition,
                   const double* dL_dg, double* dL_dx, double* dL_dstrain, PrepareRow&& prepare_row) {
  const kernel::Grid grid(settings);
  const std::vector<double> padded_w = kernel::padded_weights(grid, dL_dg);
  const RowChunks chunks(n_atoms, partition);
  const int slots = static_cast<int>(std::min<int64_t>(threads, chunks.count()));
  std::vector<std::vector<double>> dL_dr(static_cast<size_t>(slots), std::vector<double>(static_cast<size_t>(n_atoms)));
  std::vector<kernel::AtomGradients> sums;  // one per chunk, added in chunk order
  for (int64_t c = 0; c < chunks.count(); ++c) sums.emplace_back(n_atoms);
  // dK/dr = K x / sigma, with the kernel normalisation 1 / (P sigma sqrt(2 pi)).
  const double scale = 1.0 / (pair_count(n_atoms) * settings.sigma * kSqrtTwoPi * settings.sigma);
  parallel_chunks(threads, chunks.count(), [&](int64_t chunk, int slot) {
    kernel::AtomGradients& sum = sums[static_cast<size_t>(chunk)];
    chunks.visit(chunk, [&](int64_t i) {
      const int64_t count = n_atoms - i - 1;
      const kernel::Row row = prepare_row(grid, i, slot, dL_dr[static_cast<size_t>(slot)].data());
      kernel::pair_gradients(grid, count, row, padded_w.data());
      kernel::scatter_gradients(i, count, scale, row, sum);
    });
  });
  kernel::AtomGradients& total = sums.front();
  for (size_t c = 1; c < sums.size(); ++c) {
    add_to(n_atoms, sums[c].x.data(), total.x.data());
    add_to(n_atoms, sums[c].y.data(), total.y.data());
    add_to(n_atoms, sums[c].z.data(), total.z.data());
    add_to(6, sums[c].strain, total.strain);
  }
  for (int64_t a = 0; a < n_atoms; ++a) {
    dL_dx[3 * a] = total.x[a];
    dL_dx[3 * a + 1] = total.y[a];
    dL_dx[3 * a + 2] = total.z[a];
  }
  const double* strain = total.strain;
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
  const int64_t slots = std::min<int64_t>(num_threads_, RowChunks(n_atoms, partition).count());
  for (int64_t t = 0; t < slots; ++t) scratch.emplace_back(kernel::padded_pairs(n_atoms));
  backward_rows(settings_, num_threads_, n_atoms, partition, dL_dg, dL_dx, dL_dstrain,
                [&](const kernel::Grid& grid, int64_t i, int slot, double* dL_dr) {
                  const kernel::Row row(scratch[static_cast<size_t>(slot)], 0, dL_dr);
                  kernel::fill_row(grid, coords, i, box, row);
                  return row;
                });
}

void Rdf::backward(const RdfRecord& record, const double* dL_dg, double* dL_dx, double* dL_dstrain) const {
  if (record.empty()) throw Error("Rdf::backward needs a record filled by compute()");
  kernel::RecordedRows& rows = *record.rows_;
  backward_rows(settings_, num_threads_, rows.n_atoms, record.partition_, dL_dg, dL_dx, dL_dstrain,
                [&](const kernel::Grid&, int64_t i, int, double* dL_dr) { return rows.row(i, dL_dr); });
}

}  // namespace nanochart
