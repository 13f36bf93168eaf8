#include "rdf_kernel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

// Hot loops get an AVX2+FMA clone chosen at load time where the CPU has it, and a baseline
// clone otherwise, so one binary runs everywhere (GCC/Clang function multi-versioning, which
// needs ifunc support: Linux on x86-64).
#if defined(__x86_64__) && defined(__linux__) && !defined(NANOCHART_NO_CLONES)
#define NANOCHART_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define NANOCHART_HOT
#endif

namespace nanochart::kernel {
namespace {

// exp(x) to about 1 ulp, branch-free so that loops over it vectorise: x = n ln2 + r with
// |r| <= ln2/2, a degree-13 Taylor polynomial in r, and 2^n added to the exponent bits.
// Valid for |x| < 708. The kernel only calls it with |x| <= h^2 / 2, and RdfSettings::validate
// keeps h = spacing / sigma <= 20, so |x| <= 200 (a clamp here would stop the vectoriser).
__attribute__((always_inline)) inline double vector_exp(double x) {
  constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52: rounds to an integer in the low bits
  const double shifted = x * 1.4426950408889634 + kShifter;
  const double n = shifted - kShifter;
  double r = x - n * 0.6931471805599453094;
  r -= n * 2.319046813846299558e-17;
  double p = 1.0 / 6227020800.0;
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  int64_t n_bits, p_bits;
  std::memcpy(&n_bits, &shifted, sizeof(double));
  std::memcpy(&p_bits, &p, sizeof(double));
  p_bits += static_cast<int64_t>(static_cast<uint64_t>(n_bits) << 52);
  double out;
  std::memcpy(&out, &p_bits, sizeof(double));
  return out;
}

// The masked kernel values of pair t on its window, into v[0..2R]. R is a template argument so
// that for the usual settings (R <= kMaxFixedRadius) every loop has a fixed trip count and is
// unrolled and vectorised; Radius = 0 takes R from the grid at run time.
template <int Radius>
__attribute__((always_inline)) inline void window_values(const Grid& grid, const RowBuffers& row, int64_t t,
                                                         double* __restrict v) {
  const int radius = Radius > 0 ? Radius : grid.radius;
  const double x0 = row.x0[t], e0 = row.e0[t], q = row.up[t], q_inverse = row.down[t];
  const double* __restrict gauss = grid.gauss.data();
  const double* __restrict offsets = grid.offsets.data();
  // Powers q^m in four interleaved chains, so no chain is longer than R/4 multiplications.
  double up[4], down[4];
  up[0] = e0 * q;
  down[0] = e0 * q_inverse;
  for (int l = 1; l < 4; ++l) {
    up[l] = up[l - 1] * q;
    down[l] = down[l - 1] * q_inverse;
  }
  const double q4 = up[3] / e0, q4_inverse = down[3] / e0;
  v[radius] = e0 * gauss[radius];
  for (int m = 1; m <= radius; m += 4) {
    for (int l = 0; l < 4 && m + l <= radius; ++l) {
      v[radius + m + l] = up[l] * gauss[radius + m + l];
      v[radius - m - l] = down[l] * gauss[radius - m - l];
      up[l] *= q4;
      down[l] *= q4_inverse;
    }
  }
  const int width = 2 * radius + 1;
  for (int m = 0; m < width; ++m) {
    const double x = x0 + offsets[m];
    v[m] = std::abs(x) <= grid.cutoff ? v[m] : 0.0;
  }
}

template <int Radius>
NANOCHART_HOT void accumulate_window(const Grid& grid, int64_t count, RowBuffers& row, double* padded_g) {
  const int radius = Radius > 0 ? Radius : grid.radius;
  const int width = 2 * radius + 1;
  double* __restrict v = row.window.data();
  for (int64_t t = 0; t < count; ++t) {
    window_values<Radius>(grid, row, t, v);
    double* __restrict g = padded_g + grid.padding + static_cast<int64_t>(row.centre[t]) - radius;
    for (int m = 0; m < width; ++m) g[m] += v[m];
  }
}

template <int Radius>
NANOCHART_HOT void gradient_window(const Grid& grid, int64_t count, RowBuffers& row, const double* padded_w) {
  const int radius = Radius > 0 ? Radius : grid.radius;
  const int width = 2 * radius + 1;
  double* __restrict v = row.window.data();
  const double* __restrict offsets = grid.offsets.data();
  for (int64_t t = 0; t < count; ++t) {
    window_values<Radius>(grid, row, t, v);
    const double* __restrict w = padded_w + grid.padding + static_cast<int64_t>(row.centre[t]) - radius;
    const double x0 = row.x0[t];
    double sum = 0.0;
    // Reassociating this short sum lets it run in vector lanes instead of one add at a time.
#pragma omp simd reduction(+ : sum)
    for (int m = 0; m < width; ++m) sum += w[m] * v[m] * (x0 + offsets[m]);
    row.dL_dr[t] = sum;
  }
}

// Window radii with their own compiled specialisation; larger ones use the run-time radius.
constexpr int kMaxFixedRadius = 16;

using AccumulateFunction = void (*)(const Grid&, int64_t, RowBuffers&, double*);
using GradientFunction = void (*)(const Grid&, int64_t, RowBuffers&, const double*);

template <int... Radii>
AccumulateFunction pick_accumulate(int radius, std::integer_sequence<int, Radii...>) {
  AccumulateFunction chosen = &accumulate_window<0>;
  ((radius == Radii + 1 ? (chosen = &accumulate_window<Radii + 1>, 0) : 0), ...);
  return chosen;
}

template <int... Radii>
GradientFunction pick_gradient(int radius, std::integer_sequence<int, Radii...>) {
  GradientFunction chosen = &gradient_window<0>;
  ((radius == Radii + 1 ? (chosen = &gradient_window<Radii + 1>, 0) : 0), ...);
  return chosen;
}

}  // namespace

Grid::Grid(const RdfSettings& s)
    : r_min(s.r_min),
      inv_spacing(1.0 / s.spacing()),
      h(s.spacing() / s.sigma),
      cutoff(s.cutoff_sigmas),
      n_bins(s.n_bins),
      radius(static_cast<int>(std::ceil(s.cutoff_sigmas * s.sigma / s.spacing() + 0.5))),
      padding(2 * static_cast<int64_t>(radius) + 2) {
  for (int m = -radius; m <= radius; ++m) {
    gauss.push_back(std::exp(-0.5 * m * m * h * h));
    offsets.push_back(m * h);
  }
}

RowBuffers::RowBuffers(int64_t n_atoms, const Grid& grid) : window(static_cast<size_t>(2 * grid.radius + 1)) {
  for (auto* buffer : {&dx, &dy, &dz, &r, &centre, &x0, &e0, &up, &down, &dL_dr}) {
    buffer->assign(static_cast<size_t>(n_atoms), 0.0);
  }
}

AtomGradients::AtomGradients(int64_t n_atoms)
    : x(static_cast<size_t>(n_atoms), 0.0),
      y(static_cast<size_t>(n_atoms), 0.0),
      z(static_cast<size_t>(n_atoms), 0.0) {}

Coordinates::Coordinates(const double* positions, int64_t n_atoms) {
  x.resize(static_cast<size_t>(n_atoms));
  y.resize(static_cast<size_t>(n_atoms));
  z.resize(static_cast<size_t>(n_atoms));
  for (int64_t a = 0; a < n_atoms; ++a) {
    x[a] = positions[3 * a];
    y[a] = positions[3 * a + 1];
    z[a] = positions[3 * a + 2];
  }
}

NANOCHART_HOT void separations(const Coordinates& coords, int64_t i, const Box& box, RowBuffers& row) {
  const int64_t count = static_cast<int64_t>(coords.x.size()) - i - 1;
  const double xi = coords.x[i], yi = coords.y[i], zi = coords.z[i];
  const double* __restrict x = coords.x.data() + i + 1;
  const double* __restrict y = coords.y.data() + i + 1;
  const double* __restrict z = coords.z.data() + i + 1;
  double* __restrict dx = row.dx.data();
  double* __restrict dy = row.dy.data();
  double* __restrict dz = row.dz.data();
  double* __restrict r = row.r.data();
  for (int64_t t = 0; t < count; ++t) {
    dx[t] = x[t] - xi;
    dy[t] = y[t] - yi;
    dz[t] = z[t] - zi;
  }
  if (box.periodic()) {
    if (box.orthorhombic()) {
      constexpr double kShifter = 6755399441055744.0;  // round to nearest without a libm call
      const auto& h = box.rows();
      const double lx = h[0], ly = h[4], lz = h[8];
      for (int64_t t = 0; t < count; ++t) {
        dx[t] -= lx * ((dx[t] / lx + kShifter) - kShifter);
        dy[t] -= ly * ((dy[t] / ly + kShifter) - kShifter);
        dz[t] -= lz * ((dz[t] / lz + kShifter) - kShifter);
      }
    } else {
      for (int64_t t = 0; t < count; ++t) {
        double d[3] = {dx[t], dy[t], dz[t]};
        box.minimum_image(d);
        dx[t] = d[0];
        dy[t] = d[1];
        dz[t] = d[2];
      }
    }
  }
  for (int64_t t = 0; t < count; ++t) r[t] = std::sqrt(dx[t] * dx[t] + dy[t] * dy[t] + dz[t] * dz[t]);
}

// Arrays come in as __restrict parameters: GCC vectorises this loop only then, not with
// __restrict locals taken from the row's vectors.
static NANOCHART_HOT void kernel_parameters_of(int64_t count, double r_min, double inv_spacing, double h, double lowest,
                                               double highest, const double* __restrict r, double* __restrict centre,
                                               double* __restrict x0, double* __restrict e0, double* __restrict up,
                                               double* __restrict down) {
  constexpr double kShifter = 6755399441055744.0;
  for (int64_t t = 0; t < count; ++t) {
    // Pairs far outside the grid are pinned to the padding, where their window is discarded.
    // (Ternaries, not std::min/max, whose references defeat the vectoriser.)
    double p = (r[t] - r_min) * inv_spacing;
    p = p < lowest ? lowest : p;
    p = p > highest ? highest : p;
    const double c = (p + kShifter) - kShifter;
    const double x = (c - p) * h;
    centre[t] = c;
    x0[t] = x;
    e0[t] = vector_exp(-0.5 * x * x);
    up[t] = vector_exp(-x * h);
    down[t] = 1.0 / up[t];
  }
}

void kernel_parameters(const Grid& grid, int64_t count, RowBuffers& row) {
  const double lowest = -static_cast<double>(grid.radius) - 1.0;
  const double highest = static_cast<double>(grid.n_bins - 1 + grid.radius) + 1.0;
  kernel_parameters_of(count, grid.r_min, grid.inv_spacing, grid.h, lowest, highest, row.r.data(), row.centre.data(),
                       row.x0.data(), row.e0.data(), row.up.data(), row.down.data());
}

void accumulate(const Grid& grid, int64_t count, RowBuffers& row, double* padded_g) {
  pick_accumulate(grid.radius, std::make_integer_sequence<int, kMaxFixedRadius>())(grid, count, row, padded_g);
}

void pair_gradients(const Grid& grid, int64_t count, RowBuffers& row, const double* padded_w) {
  pick_gradient(grid.radius, std::make_integer_sequence<int, kMaxFixedRadius>())(grid, count, row, padded_w);
}

// Arrays as __restrict parameters, as in kernel_parameters_of, so the loop vectorises.
static NANOCHART_HOT void scatter_gradients_of(int64_t count, double scale, const double* __restrict dx,
                                               const double* __restrict dy, const double* __restrict dz,
                                               const double* __restrict r, const double* __restrict dL_dr,
                                               double* __restrict gx, double* __restrict gy, double* __restrict gz,
                                               double* __restrict sums) {
  double sx = 0, sy = 0, sz = 0, xx = 0, yy = 0, zz = 0, xy = 0, xz = 0, yz = 0;
#pragma omp simd reduction(+ : sx, sy, sz, xx, yy, zz, xy, xz, yz)
  for (int64_t t = 0; t < count; ++t) {
    // Coincident atoms (r = 0) have a zero separation vector, so a huge but finite 1/r gives
    // them zero force without a branch.
    const double f = scale * dL_dr[t] / (r[t] > 1e-300 ? r[t] : 1e-300);
    const double fx = f * dx[t], fy = f * dy[t], fz = f * dz[t];
    gx[t] += fx;
    gy[t] += fy;
    gz[t] += fz;
    sx += fx;
    sy += fy;
    sz += fz;
    xx += dx[t] * fx;
    yy += dy[t] * fy;
    zz += dz[t] * fz;
    xy += dx[t] * fy;
    xz += dx[t] * fz;
    yz += dy[t] * fz;
  }
  const double out[9] = {sx, sy, sz, xx, yy, zz, xy, xz, yz};
  for (int a = 0; a < 9; ++a) sums[a] = out[a];
}

void scatter_gradients(int64_t i, int64_t count, double scale, const RowBuffers& row, AtomGradients& out) {
  double sums[9];
  scatter_gradients_of(count, scale, row.dx.data(), row.dy.data(), row.dz.data(), row.r.data(), row.dL_dr.data(),
                       out.x.data() + i + 1, out.y.data() + i + 1, out.z.data() + i + 1, sums);
  out.x[i] -= sums[0];
  out.y[i] -= sums[1];
  out.z[i] -= sums[2];
  for (int a = 0; a < 6; ++a) out.strain[a] += sums[3 + a];
}

}  // namespace nanochart::kernel
