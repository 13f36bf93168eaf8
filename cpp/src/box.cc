#include "nanochart/box.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "nanochart/error.h"

namespace nanochart {
namespace {

void cross(const double* a, const double* b, double* out) {
  out[0] = a[1] * b[2] - a[2] * b[1];
  out[1] = a[2] * b[0] - a[0] * b[2];
  out[2] = a[0] * b[1] - a[1] * b[0];
}

double dot(const double* a, const double* b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

}  // namespace

Box::Box(const std::array<double, 9>& rows) : periodic_(true), h_(rows) {
  for (double value : h_) {
    if (!std::isfinite(value)) {
      throw InputError("the box contains NaN or infinite values; pass box=None for a cluster in vacuum");
    }
  }
  const double* a = &h_[0];
  const double* b = &h_[3];
  const double* c = &h_[6];
  double bxc[3], cxa[3], axb[3];
  cross(b, c, bxc);
  cross(c, a, cxa);
  cross(a, b, axb);
  const double volume = dot(a, bxc);
  const double scale = std::sqrt(dot(a, a) * dot(b, b) * dot(c, c));
  if (!(std::abs(volume) > 1e-10 * scale) || scale == 0.0) {
    throw InputError("the box rows do not span 3D space (zero volume); rows must be the three cell vectors");
  }
  // Inverse of the row matrix h: columns of h^-1 are (b x c, c x a, a x b) / volume.
  for (int i = 0; i < 3; ++i) {
    inverse_[i * 3 + 0] = bxc[i] / volume;
    inverse_[i * 3 + 1] = cxa[i] / volume;
    inverse_[i * 3 + 2] = axb[i] / volume;
  }
  const double plane_spacing =
      std::abs(volume) / std::max({std::sqrt(dot(bxc, bxc)), std::sqrt(dot(cxa, cxa)), std::sqrt(dot(axb, axb))});
  safe_radius_squared_ = 0.25 * plane_spacing * plane_spacing;
  orthorhombic_ = h_[1] == 0.0 && h_[2] == 0.0 && h_[3] == 0.0 && h_[5] == 0.0 && h_[6] == 0.0 && h_[7] == 0.0;
}

void Box::minimum_image(double d[3]) const {
  if (!periodic_) return;
  if (orthorhombic_) {
    for (int k = 0; k < 3; ++k) {
      const double length = h_[k * 4];
      d[k] -= length * std::nearbyint(d[k] / length);
    }
    return;
  }
  // Fractional coordinates s = d h^-1 (row vector), wrapped into [-1/2, 1/2).
  double s[3];
  for (int j = 0; j < 3; ++j) {
    s[j] = d[0] * inverse_[0 * 3 + j] + d[1] * inverse_[1 * 3 + j] + d[2] * inverse_[2 * 3 + j];
    s[j] -= std::nearbyint(s[j]);
  }
  for (int j = 0; j < 3; ++j) d[j] = s[0] * h_[0 * 3 + j] + s[1] * h_[1 * 3 + j] + s[2] * h_[2 * 3 + j];
  if (dot(d, d) <= safe_radius_squared_) return;

  double best[3] = {d[0], d[1], d[2]};
  double best_norm = dot(d, d);
  for (int i = -1; i <= 1; ++i) {
    for (int j = -1; j <= 1; ++j) {
      for (int k = -1; k <= 1; ++k) {
        double trial[3];
        for (int x = 0; x < 3; ++x) trial[x] = d[x] + i * h_[0 * 3 + x] + j * h_[1 * 3 + x] + k * h_[2 * 3 + x];
        const double norm = dot(trial, trial);
        if (norm < best_norm) {
          best_norm = norm;
          std::copy(trial, trial + 3, best);
        }
      }
    }
  }
  std::copy(best, best + 3, d);
}

}  // namespace nanochart
