// Structures and reference calculations shared by the C++ tests.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "nanochart/box.h"
#include "nanochart/rdf.h"

namespace nanochart::testing {

// n atoms uniformly in a cube of side `side`, no two closer than `min_distance`.
inline std::vector<double> random_cluster(int64_t n, double side, double min_distance, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, side);
  std::vector<double> x;
  while (static_cast<int64_t>(x.size()) < 3 * n) {
    const double p[3] = {uniform(rng), uniform(rng), uniform(rng)};
    bool clear = true;
    for (size_t a = 0; a < x.size(); a += 3) {
      const double d[3] = {p[0] - x[a], p[1] - x[a + 1], p[2] - x[a + 2]};
      clear = clear && d[0] * d[0] + d[1] * d[1] + d[2] * d[2] >= min_distance * min_distance;
    }
    if (clear) x.insert(x.end(), p, p + 3);
  }
  return x;
}

// The n fcc sites (lattice constant a) nearest the origin, each moved by up to `noise` per coordinate:
// a roughly spherical metal cluster.
inline std::vector<double> fcc_cluster(int64_t n, double a, double noise, uint32_t seed) {
  std::vector<std::array<double, 3>> sites;
  const int extent = static_cast<int>(std::cbrt(static_cast<double>(n))) + 2;
  for (int i = -extent; i <= extent; ++i) {
    for (int j = -extent; j <= extent; ++j) {
      for (int k = -extent; k <= extent; ++k) {
        if ((i + j + k) % 2 == 0) sites.push_back({0.5 * a * i, 0.5 * a * j, 0.5 * a * k});
      }
    }
  }
  const auto norm = [](const std::array<double, 3>& s) { return s[0] * s[0] + s[1] * s[1] + s[2] * s[2]; };
  std::stable_sort(sites.begin(), sites.end(), [&](const auto& p, const auto& q) { return norm(p) < norm(q); });
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> shift(-noise, noise);
  std::vector<double> x;
  for (int64_t s = 0; s < n; ++s) {
    for (int c = 0; c < 3; ++c) x.push_back(sites[static_cast<size_t>(s)][c] + shift(rng));
  }
  return x;
}

// The shortest periodic image of d by brute force over the neighbouring cells.
inline std::array<double, 3> brute_force_minimum_image(const std::array<double, 3>& d, const Box& box) {
  if (!box.periodic()) return d;
  const auto& h = box.rows();
  // Wrap with the fractional coordinates first, then search the images around it.
  std::array<double, 3> best = d;
  double best_norm = 1e300;
  for (int i = -3; i <= 3; ++i) {
    for (int j = -3; j <= 3; ++j) {
      for (int k = -3; k <= 3; ++k) {
        std::array<double, 3> e;
        for (int c = 0; c < 3; ++c) e[c] = d[c] + i * h[c] + j * h[3 + c] + k * h[6 + c];
        const double norm = e[0] * e[0] + e[1] * e[1] + e[2] * e[2];
        if (norm < best_norm) {
          best_norm = norm;
          best = e;
        }
      }
    }
  }
  return best;
}

// g_k straight from the definition in docs/design.md: every pair, untruncated Gaussians.
// With `truncated`, each Gaussian is cut at s.cutoff_sigmas, as the core cuts it.
inline std::vector<double> reference_rdf(const std::vector<double>& x, const RdfSettings& s, const Box& box = {},
                                         bool truncated = false) {
  const int64_t n = static_cast<int64_t>(x.size()) / 3;
  std::vector<double> g(static_cast<size_t>(s.n_bins), 0.0);
  const double pairs = 0.5 * static_cast<double>(n) * static_cast<double>(n - 1);
  const double norm = 1.0 / (pairs * s.sigma * std::sqrt(2.0 * M_PI));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) {
      std::array<double, 3> d{x[3 * j] - x[3 * i], x[3 * j + 1] - x[3 * i + 1], x[3 * j + 2] - x[3 * i + 2]};
      d = brute_force_minimum_image(d, box);
      const double r = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
      for (int64_t k = 0; k < s.n_bins; ++k) {
        const double u = (s.r_min + static_cast<double>(k) * s.spacing() - r) / s.sigma;
        if (truncated && std::abs(u) > s.cutoff_sigmas) continue;
        g[static_cast<size_t>(k)] += norm * std::exp(-0.5 * u * u);
      }
    }
  }
  return g;
}

// max |a - b| / max |b|.
inline double max_relative(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0.0, size = 1e-300;
  for (size_t k = 0; k < a.size() && k < b.size(); ++k) {
    diff = std::max(diff, std::abs(a[k] - b[k]));
    size = std::max(size, std::abs(b[k]));
  }
  return a.size() == b.size() ? diff / size : INFINITY;
}

// Central difference of f along each of the values of x, step h.
inline std::vector<double> central_differences(std::vector<double> x, double h,
                                               const std::function<double(const std::vector<double>&)>& f) {
  std::vector<double> out(x.size());
  for (size_t a = 0; a < x.size(); ++a) {
    const double x0 = x[a];
    x[a] = x0 + h;
    const double up = f(x);
    x[a] = x0 - h;
    const double down = f(x);
    x[a] = x0;
    out[a] = (up - down) / (2.0 * h);
  }
  return out;
}

inline std::vector<double> random_weights(int64_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> w(static_cast<size_t>(n));
  for (auto& v : w) v = normal(rng);
  return w;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
  return s;
}

}  // namespace nanochart::testing
