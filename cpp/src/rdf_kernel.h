// Inner loops of the RDF, written so that they run in vector registers. Private to the core.
//
// For the pairs of one atom i with atoms i+1..n-1, the kernel of a pair at fractional bin
// position p is evaluated on a window of bins c-R.. from its centre bin c: the nearest bin, or the
// bin below p where that makes the window a group of bins shorter (see Grid). With
// x0 = (c - p) h (h = bin spacing / sigma) the value at bin c+m factorises as
//   exp(-(x0 + m h)^2 / 2) = e0 * q^m * C_m,  e0 = exp(-x0^2/2), q = exp(-x0 h), C_m = exp(-m^2 h^2 / 2),
// so a pair costs two exponentials and a few multiplications, whatever the window width. The
// window is handled kWindowLanes bins at a time, as one vector: from b = e0 q^-R [1, q, q^2, q^3]
// and q^4, each group of bins is the previous one times q^L. The factors C_m are the same for every
// pair, so the forward pair loop sums e0 q^m alone per centre bin c, and C_m is applied once per
// bin. Bins beyond cutoff_sigmas are masked to zero; windows that stick out of the grid are
// discarded, so the pair loops have no branch or clamp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "nanochart/box.h"
#include "nanochart/rdf.h"

namespace nanochart::kernel {

// Bins per vector in the window loops.
constexpr int kWindowLanes = 4;

struct Row;
class CentreTable;
using AccumulateFunction = void (*)(const struct Grid&, int64_t, const Row&, CentreTable&);
using GradientFunction = void (*)(const struct Grid&, int64_t, const Row&, const double*);

struct Grid {
  explicit Grid(const RdfSettings& settings);

  // Bins in a pair's window as the loops walk it: groups of kWindowLanes.
  int64_t window_width() const { return int64_t{kWindowLanes} * groups; }

  double r_min, inv_spacing, h, cutoff;
  int64_t n_bins;
  // A pair's centre bin is c = round(p - centre_shift): its nearest bin (shift 0) or the bin below
  // it (shift 1/2). The latter spans the bins within the cutoff with one bin fewer when
  // frac(cutoff / h) >= 1/2, and is taken where that saves a group (r = 0-21.5 A, 200 bins,
  // sigma 0.1 A: 12 bins, three groups, instead of 13 bins in four).
  double centre_shift = 0.0;
  int radius = 0;  // R: a pair at bin c reaches bins c-R..c-R+window_width()-1 (those beyond the cutoff are masked)
  int groups = 0;  // the window as groups of kWindowLanes bins
  // Pairs are pinned to centres lowest_centre..highest_centre: there, a pair's window lies
  // wholly beyond the grid, so pairs far off the grid add nothing.
  int64_t lowest_centre() const { return radius - window_width(); }
  int64_t highest_centre() const { return n_bins + radius; }
  std::vector<double> gauss;          // C_m, m = -R..-R+kWindowLanes*groups-1
  std::vector<double> gauss_offsets;  // C_m m h, same m
  // Bin m is within the cutoff where lowest_x0[m] <= x0 <= highest_x0[m] (-cutoff - m h, cutoff - m h).
  std::vector<double> lowest_x0, highest_x0;
  // Bit j: may any bin of group j lie beyond the cutoff? (Groups from 64 on are always masked.)
  uint64_t masked_groups = 0;
  // The window loops compiled for this window width and this CPU's vectors, chosen once.
  AccumulateFunction accumulate_windows;
  GradientFunction gradient_windows;
};

// Rows are filled a whole number of kRowPadding pairs at a time (lanes past a row's last pair hold
// separations from padding atoms, and are never read), so that the row loops run over whole
// vectors without a scalar tail (rows hold 73 pairs on average at N = 147; measured, the RDF
// forward pass went from 73-80 to 71-76 us there).
constexpr int64_t kRowPadding = 8;
inline int64_t padded_pairs(int64_t count) { return (count + kRowPadding - 1) / kRowPadding * kRowPadding; }

// Per-pair values for `capacity` pairs: one row's scratch, or every pair of a recorded structure.
struct PairArrays {
  explicit PairArrays(int64_t capacity);
  int64_t capacity() const { return static_cast<int64_t>(r.size()); }
  std::vector<double> dx, dy, dz, r, inv_r, x0, q4;
  std::vector<int64_t> centre;  // a pair's centre bin c
  std::vector<double> base;     // e0 q^-R [1, q, q^2, q^3], four per pair
};

// The pairs (i, j) of one row i, j = i+1..n-1: views into PairArrays from the row's first pair
// on, and the row's derivative scratch dL_dr.
struct Row {
  Row(PairArrays& arrays, int64_t first_pair, double* dL_dr);
  double *dx, *dy, *dz, *r, *inv_r;
  int64_t* centre;
  double *x0, *q4, *base, *dL_dr;
};

// Every pair (i, j > i) of a structure, row after row, each row padded (kRowPadding).
struct RecordedRows {
  explicit RecordedRows(int64_t n_atoms);
  Row row(int64_t i, double* dL_dr) { return Row(pairs, start[static_cast<size_t>(i)], dL_dr); }

  int64_t n_atoms;
  std::vector<int64_t> start;  // row i's first pair in `pairs`
  PairArrays pairs;
};

// Per-atom derivative sums of one thread, coordinates apart so the scatter vectorises.
struct AtomGradients {
  explicit AtomGradients(int64_t n_atoms);
  std::vector<double> x, y, z;
  double strain[6] = {0, 0, 0, 0, 0, 0};  // xx, yy, zz, xy, xz, yz
};

// Positions as three contiguous coordinate arrays, followed by kRowPadding padding atoms at the
// origin for the padded lanes of the last rows.
struct Coordinates {
  Coordinates(const double* positions, int64_t n_atoms);
  int64_t n_atoms;
  std::vector<double> x, y, z;
};

// For the pairs (i, j > i) of row i: separations x_j - x_i, distances and their inverses, nearest
// bin, x0, base and q^4;
// the row's arrays need padded_pairs(n_atoms - i - 1) places.
void fill_row(const Grid& grid, const Coordinates& coords, int64_t i, const Box& box, const Row& row);

// One row of grid.window_width() values per centre a pair can have (grid.lowest_centre() to
// grid.highest_centre()), rows aligned for vector access.
class CentreTable {
 public:
  explicit CentreTable(const Grid& grid);
  double* row(int64_t centre) { return storage_.data() + offset_ + (centre - first_centre) * width; }
  const double* row(int64_t centre) const { return storage_.data() + offset_ + (centre - first_centre) * width; }
  void clear() { std::fill(storage_.begin(), storage_.end(), 0.0); }

  int64_t first_centre, width, rows;

 private:
  std::vector<double> storage_;
  size_t offset_ = 0;
};

// Adds e0 q^m of the row's pairs to the row of their centre bin in `sums`: the kernel sums
// before the factors C_m, which add_to_rdf applies.
void accumulate(const Grid& grid, int64_t count, const Row& row, CentreTable& sums);

// g_k += sum over centres c and offsets m with c + m = k of C_m sums[c][m]: the unnormalised RDF.
// Leaves `sums` all zero, ready for the next rows.
void move_to_rdf(const Grid& grid, CentreTable& sums, double* g);

// Weights w (n_bins) with the zero margins pair_gradients reads.
std::vector<double> padded_weights(const Grid& grid, const double* w);

// row.dL_dr[t] = sum_k w_k K_k x_k (x_k = (r_k - r) / sigma), the unnormalised derivative
// of sum_k w_k K_k with respect to r times sigma, for padded_weights(grid, w).
void pair_gradients(const Grid& grid, int64_t count, const Row& row, const double* padded_w);

// Adds dL/dx of atom i and of atoms i+1.. for dL/dr = scale * row.dL_dr[t], and the strain derivative.
void scatter_gradients(int64_t i, int64_t count, double scale, const Row& row, AtomGradients& out);

}  // namespace nanochart::kernel
