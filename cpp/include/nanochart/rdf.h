// The Gaussian-smeared radial distribution function: the one RDF definition of docs/design.md.
//
//   g_k = (1/P) sum_{i<j} exp(-(r_k - r_ij)^2 / (2 sigma^2)) / (sigma sqrt(2 pi)),
//   r_k = r_min + k (r_max - r_min) / (M - 1),  k = 0..M-1,  P = N (N - 1) / 2,
//
// with kernels truncated at cutoff_sigmas standard deviations.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "nanochart/box.h"

namespace nanochart {

namespace kernel {
struct RecordedRows;
}

struct RdfSettings {
  double r_min = 0.0;
  double r_max = 16.0;
  int64_t n_bins = 200;
  double sigma = 0.1;
  double cutoff_sigmas = 6.0;
  // The unit of r_min, r_max and sigma, and of the positions the RDF is computed for (see
  // length_unit_in_nm). Python's nanochart.core.rdf.RdfSettings has the same fields.
  std::string length_unit = "angstrom";

  // Throws InputError naming the offending setting.
  void validate() const;
  double spacing() const { return (r_max - r_min) / static_cast<double>(n_bins - 1); }
};

// Which pairs this process owns when the pair loop is split over MPI ranks. The caller sums the
// partial results over ranks; normalisation always uses the pair count of the whole group.
struct PairPartition {
  int rank = 0;
  int size = 1;

  // Throws InputError unless 0 <= rank < size.
  void validate() const;
};

// What Rdf::compute keeps of one structure for the backward passes that follow: every pair's
// separation and kernel parameters, so that backward() need not recompute them. Kept only up to
// kMaxPairs pairs (about 23 MB); larger structures are recomputed instead.
class RdfRecord {
 public:
  static constexpr int64_t kMaxPairs = int64_t{1} << 18;

  RdfRecord();
  ~RdfRecord();
  RdfRecord(RdfRecord&&) noexcept;
  RdfRecord& operator=(RdfRecord&&) noexcept;

  bool empty() const { return !filled_; }
  void clear() { filled_ = false; }

 private:
  friend class Rdf;
  std::unique_ptr<kernel::RecordedRows> rows_;
  PairPartition partition_;
  bool filled_ = false;
};

class Rdf {
 public:
  // Throws InputError for impossible settings or num_threads < 1.
  explicit Rdf(const RdfSettings& settings, int num_threads = 1);

  const RdfSettings& settings() const { return settings_; }
  int64_t n_bins() const { return settings_.n_bins; }

  // Threads (the calling one included) of the core's thread pool for the pair loops of compute()
  // and backward(), and for the structures of compute_batch(). With 1 the calling thread does all
  // the work and the pool is not used. Results are the same, bit for bit, for any thread count.
  int num_threads() const { return num_threads_; }
  // Throws InputError unless num_threads >= 1.
  void set_num_threads(int num_threads);

  // Writes g (n_bins values) for positions (n_atoms x 3, row-major). Throws InputError for fewer
  // than two atoms or non-finite coordinates.
  // With a record, also keeps what backward(record, ...) needs (or clears the record when the
  // structure has more than RdfRecord::kMaxPairs pairs).
  void compute(const double* positions, int64_t n_atoms, const Box& box, double* g, PairPartition partition = {},
               RdfRecord* record = nullptr) const;

  // g (batch x n_bins) for a batch of structures (batch x n_atoms x 3) sharing one box, in
  // parallel over the structures (each structure on one thread), each the share of `partition`
  // as in compute(). Errors name the structure: "structure 5 of the batch: ...".
  void compute_batch(const double* positions, int64_t batch, int64_t n_atoms, const Box& box, double* g,
                     PairPartition partition = {}) const;

  // Back-propagates dL/dg (n_bins values) to the atoms: overwrites dL_dx (n_atoms x 3) with
  // dL/dx and dL_dstrain (3 x 3, row-major) with dL/d(epsilon), the derivative under the
  // homogeneous deformation x -> x (1 + epsilon), box rows included. dL/d(epsilon) equals
  // sum_i x_i (x) dL/dx_i for a cluster in vacuum; PLUMED's box derivative is its negative.
  void backward(const double* positions, int64_t n_atoms, const Box& box, const double* dL_dg, double* dL_dx,
                double* dL_dstrain, PairPartition partition = {}) const;

  // The same for the structure of a compute() that filled `record` (same results, less work).
  void backward(const RdfRecord& record, const double* dL_dg, double* dL_dx, double* dL_dstrain) const;

 private:
  void compute_on(int threads, const double* positions, int64_t n_atoms, const Box& box, double* g,
                  const PairPartition& partition, RdfRecord* record) const;

  RdfSettings settings_;
  int num_threads_ = 1;
};

// Throws InputError if any coordinate is NaN or infinite, naming the first bad atom.
void check_finite_positions(const double* positions, int64_t n_atoms);

// The size in nanometres (PLUMED's default length unit) of a length unit an RDF may be in:
// angstrom (or A), nm, bohr. Throws InputError for any other.
double length_unit_in_nm(const std::string& unit);

}  // namespace nanochart
