// Inner loops of the RDF, written so that the compiler vectorises them. Private to the core.
//
// For the pairs of one atom i with atoms i+1..n-1, the kernel of a pair at fractional bin
// position p is evaluated on the window of bins c-R..c+R around its nearest bin c. With
// x0 = (c - p) h (h = bin spacing / sigma) the value at bin c+m factorises as
//   exp(-(x0 + m h)^2 / 2) = e0 * q^m * C_m,  e0 = exp(-x0^2/2), q = exp(-x0 h), C_m = exp(-m^2 h^2 / 2),
// so a pair costs three exponentials and a few multiplications, whatever the window width.
// Bins beyond cutoff_sigmas are masked to zero; windows that stick out of the grid land in
// padding that is discarded, so no loop has a branch or a clamp.
#pragma once

#include <cstdint>
#include <vector>

#include "nanochart/box.h"
#include "nanochart/rdf.h"

namespace nanochart::kernel {

struct Grid {
  explicit Grid(const RdfSettings& settings);

  double r_min, inv_spacing, h, cutoff;
  int64_t n_bins;
  int radius;                   // R: the window has 2R+1 bins
  int64_t padding;              // bins of padding on each side of the padded buffers
  std::vector<double> gauss;    // C_m, m = -R..R
  std::vector<double> offsets;  // m h, m = -R..R

  int64_t padded_size() const { return n_bins + 2 * padding; }
};

// Per-pair scratch for one row of the pair loop.
struct RowBuffers {
  RowBuffers(int64_t n_atoms, const Grid& grid);
  std::vector<double> dx, dy, dz, r, centre, x0, e0, up, down, dL_dr;
  std::vector<double> window;  // kernel values of one pair, 2R+1 bins
};

// Per-atom derivative sums of one thread, coordinates apart so the scatter vectorises.
struct AtomGradients {
  explicit AtomGradients(int64_t n_atoms);
  std::vector<double> x, y, z;
  double strain[6] = {0, 0, 0, 0, 0, 0};  // xx, yy, zz, xy, xz, yz
};

// Positions as three contiguous coordinate arrays.
struct Coordinates {
  Coordinates(const double* positions, int64_t n_atoms);
  std::vector<double> x, y, z;
};

// Separations x_j - x_i and distances for j = i+1..n-1 into rows[0..n-i-2].
void separations(const Coordinates& coords, int64_t i, const Box& box, RowBuffers& row);

// Nearest bin, x0, e0, q and 1/q for the first `count` pairs of the row.
void kernel_parameters(const Grid& grid, int64_t count, RowBuffers& row);

// Adds the unnormalised kernels of the row's pairs to padded_g (grid.padded_size() values).
void accumulate(const Grid& grid, int64_t count, RowBuffers& row, double* padded_g);

// row.dL_dr[t] = sum_k w_k K_k x_k (x_k = (r_k - r) / sigma), the unnormalised derivative
// of sum_k w_k K_k with respect to r times sigma, for padded weights padded_w.
void pair_gradients(const Grid& grid, int64_t count, RowBuffers& row, const double* padded_w);

// Adds dL/dx of atom i and of atoms i+1.. for dL/dr = scale * row.dL_dr[t], and the strain derivative.
void scatter_gradients(int64_t i, int64_t count, double scale, const RowBuffers& row, AtomGradients& out);

}  // namespace nanochart::kernel
