#include "nanochart/rdf.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nanochart/error.h"

namespace nanochart {
namespace {

constexpr double kSqrtTwoPi = 2.5066282746310002;

// The kernel of one pair evaluated on the bins it reaches. The Gaussian on a uniform grid obeys
// e_{k+1} = e_k q_k with q_{k+1} = q_k exp(-h^2), so one pair costs two exp() calls instead of
// one per bin. The walk starts at the bin nearest the pair distance and goes both ways, so the
// values that matter are never reached through underflowed tails.
struct KernelWalk {
  double inv_sigma;
  double h;           // bin spacing in units of sigma
  double decay;       // exp(-h^2)
  double half_decay;  // exp(-h^2 / 2)
  double reach;       // cutoff in units of bins
  double r_min, spacing;
  int64_t last_bin;

  explicit KernelWalk(const RdfSettings& s)
      : inv_sigma(1.0 / s.sigma),
        h(s.spacing() / s.sigma),
        decay(std::exp(-h * h)),
        half_decay(std::exp(-0.5 * h * h)),
        reach(s.cutoff_sigmas * s.sigma / s.spacing()),
        r_min(s.r_min),
        spacing(s.spacing()),
        last_bin(s.n_bins - 1) {}

  // Calls visit(k, kernel_k, x_k) for every bin within the cutoff, where x_k = (r_k - r) / sigma
  // and kernel_k = exp(-x_k^2 / 2) (the 1/(sigma sqrt(2 pi) P) factor is applied by the caller).
  template <typename Visit>
  inline void walk(double r, Visit&& visit) const {
    const double position = (r - r_min) / spacing;  // fractional bin index of r
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(position - reach)));
    const int64_t hi = std::min<int64_t>(last_bin, static_cast<int64_t>(std::floor(position + reach)));
    if (lo > hi) return;
    const int64_t centre = std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(position)), lo, hi);
    const double x0 = (static_cast<double>(centre) - position) * h;
    const double e0 = std::exp(-0.5 * x0 * x0);
    const double up0 = std::exp(-x0 * h) * half_decay;  // e_{c+1} / e_c
    // Upwards from the centre.
    double e = e0, q = up0;
    for (int64_t k = centre; k <= hi; ++k) {
      visit(k, e, x0 + static_cast<double>(k - centre) * h);
      e *= q;
      q *= decay;
    }
    // Downwards: e_{c-1} / e_c = exp(x0 h) exp(-h^2/2) = half_decay^2 / up0.
    e = e0;
    q = half_decay * half_decay / up0;
    for (int64_t k = centre - 1; k >= lo; --k) {
      e *= q;
      q *= decay;
      visit(k, e, x0 + static_cast<double>(k - centre) * h);
    }
  }
};

// Rows are visited in folded pairs (t, N-1-t) so that every task owns N-1 pairs: the triangular
// pair loop is then balanced over MPI ranks and threads alike.
template <typename PairVisit>
void for_each_pair_folded_row(int64_t folded_row, int64_t n_atoms, PairVisit&& visit) {
  visit(folded_row);
  const int64_t mirror = n_atoms - 1 - folded_row;
  if (mirror != folded_row) visit(mirror);
}

int64_t folded_row_count(int64_t n_atoms) { return (n_atoms + 1) / 2; }

// Separation vector x_j - x_i under the box's convention, and its length.
inline double separation(const double* positions, int64_t i, int64_t j, const Box& box, double d[3]) {
  for (int k = 0; k < 3; ++k) d[k] = positions[j * 3 + k] - positions[i * 3 + k];
  box.minimum_image(d);
  return std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
}

void check_atom_count(int64_t n_atoms) {
  if (n_atoms < 2) {
    throw InputError("the RDF needs at least 2 atoms, got " + std::to_string(n_atoms));
  }
}

void check_partition(const PairPartition& p) {
  if (p.size < 1 || p.rank < 0 || p.rank >= p.size) {
    throw InputError("invalid pair partition: rank " + std::to_string(p.rank) + " of " + std::to_string(p.size));
  }
}

// Number of folded rows owned by this rank: rows t with t % size == rank.
int64_t owned_rows(int64_t n_atoms, const PairPartition& p) {
  const int64_t rows = folded_row_count(n_atoms);
  return rows > p.rank ? (rows - p.rank + p.size - 1) / p.size : 0;
}

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
  if (!std::isfinite(cutoff_sigmas) || !(cutoff_sigmas > 0.0)) {
    throw InputError("RDF kernel truncation needs cutoff_sigmas > 0, got " + std::to_string(cutoff_sigmas));
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

void Rdf::compute(const double* positions, int64_t n_atoms, const Box& box, double* g, PairPartition partition) const {
  check_atom_count(n_atoms);
  check_partition(partition);
  check_finite_positions(positions, n_atoms);
  const int64_t m = settings_.n_bins;
  const KernelWalk kernel(settings_);
  const int64_t rows = owned_rows(n_atoms, partition);
  const int n_threads = at::get_num_threads();
  std::vector<double> partial(static_cast<size_t>(n_threads) * m, 0.0);

  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    double* local = partial.data() + static_cast<size_t>(at::get_thread_num()) * m;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t folded = partition.rank + task * partition.size;
      for_each_pair_folded_row(folded, n_atoms, [&](int64_t i) {
        for (int64_t j = i + 1; j < n_atoms; ++j) {
          double d[3];
          const double r = separation(positions, i, j, box, d);
          kernel.walk(r, [local](int64_t k, double value, double) { local[k] += value; });
        }
      });
    }
  });

  const double n_pairs = 0.5 * static_cast<double>(n_atoms) * static_cast<double>(n_atoms - 1);
  const double norm = 1.0 / (n_pairs * settings_.sigma * kSqrtTwoPi);
  for (int64_t k = 0; k < m; ++k) {
    double sum = 0.0;
    for (int t = 0; t < n_threads; ++t) sum += partial[static_cast<size_t>(t) * m + k];
    g[k] = sum * norm;
  }
}

void Rdf::backward(const double* positions, int64_t n_atoms, const Box& box, const double* dL_dg, double* dL_dx,
                   double* dL_dstrain, PairPartition partition) const {
  check_atom_count(n_atoms);
  check_partition(partition);
  check_finite_positions(positions, n_atoms);
  const KernelWalk kernel(settings_);
  const int64_t rows = owned_rows(n_atoms, partition);
  const int n_threads = at::get_num_threads();
  const size_t stride = static_cast<size_t>(n_atoms) * 3 + 9;  // per-thread forces, then strain
  std::vector<double> partial(static_cast<size_t>(n_threads) * stride, 0.0);

  const double n_pairs = 0.5 * static_cast<double>(n_atoms) * static_cast<double>(n_atoms - 1);
  // dK/dr = K x_k / sigma with x_k = (r_k - r) / sigma.
  const double scale = 1.0 / (n_pairs * settings_.sigma * kSqrtTwoPi * settings_.sigma);

  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    double* local = partial.data() + static_cast<size_t>(at::get_thread_num()) * stride;
    double* strain = local + static_cast<size_t>(n_atoms) * 3;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t folded = partition.rank + task * partition.size;
      for_each_pair_folded_row(folded, n_atoms, [&](int64_t i) {
        for (int64_t j = i + 1; j < n_atoms; ++j) {
          double d[3];
          const double r = separation(positions, i, j, box, d);
          double dL_dr = 0.0;
          kernel.walk(r, [&](int64_t k, double value, double x) { dL_dr += dL_dg[k] * value * x; });
          // Coincident atoms: the direction is undefined and the kernel is flat there.
          if (dL_dr == 0.0 || r == 0.0) continue;
          const double factor = dL_dr * scale / r;
          for (int a = 0; a < 3; ++a) {
            const double f = factor * d[a];
            local[j * 3 + a] += f;
            local[i * 3 + a] -= f;
            for (int b = 0; b < 3; ++b) strain[a * 3 + b] += d[a] * d[b] * factor;
          }
        }
      });
    }
  });

  std::fill(dL_dx, dL_dx + n_atoms * 3, 0.0);
  std::fill(dL_dstrain, dL_dstrain + 9, 0.0);
  for (int t = 0; t < n_threads; ++t) {
    const double* local = partial.data() + static_cast<size_t>(t) * stride;
    for (int64_t a = 0; a < n_atoms * 3; ++a) dL_dx[a] += local[a];
    for (int a = 0; a < 9; ++a) dL_dstrain[a] += local[n_atoms * 3 + a];
  }
}

}  // namespace nanochart
