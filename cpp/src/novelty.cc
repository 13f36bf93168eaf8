#include "nanochart/novelty.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "nanochart/error.h"

namespace nanochart {

void Novelty::validate() const {
  if (n_cvs < 1) throw InputError("novelty: n_cvs must be at least 1, got " + std::to_string(n_cvs));
  if (reference.empty() || reference.size() % static_cast<size_t>(n_cvs) != 0) {
    throw InputError("novelty: the reference must hold whole rows of " + std::to_string(n_cvs) + " CVs, got " +
                     std::to_string(reference.size()) + " numbers");
  }
  if (k < 1 || k > n_reference()) {
    throw InputError("novelty: k must be between 1 and the " + std::to_string(n_reference()) +
                     " reference points, got " + std::to_string(k));
  }
  if (!(scale > 0.0) || !std::isfinite(scale)) throw InputError("novelty: scale must be positive and finite");
  if (!(threshold > 0.0) || !std::isfinite(threshold)) {
    throw InputError("novelty: threshold must be positive and finite");
  }
  for (double x : reference) {
    if (!std::isfinite(x)) throw InputError("novelty: the reference holds a non-finite number");
  }
}

double Novelty::score(const double* cvs) const {
  // The k smallest squared distances, kept sorted; k is small (5 by default), so insertion into
  // a short array beats any tree for a few thousand points.
  const size_t kk = static_cast<size_t>(k);
  std::vector<double> nearest(kk, std::numeric_limits<double>::infinity());
  const int64_t n = n_reference();
  const double* row = reference.data();
  for (int64_t i = 0; i < n; ++i, row += n_cvs) {
    double d2 = 0.0;
    for (int64_t c = 0; c < n_cvs; ++c) {
      const double delta = cvs[c] - row[c];
      d2 += delta * delta;
    }
    if (d2 >= nearest[kk - 1]) continue;
    size_t j = kk - 1;
    for (; j > 0 && nearest[j - 1] > d2; --j) nearest[j] = nearest[j - 1];
    nearest[j] = d2;
  }
  double sum = 0.0;
  for (double d2 : nearest) sum += std::sqrt(d2);
  return sum / static_cast<double>(kk) / scale;
}

void Novelty::scores(const double* cvs, int64_t batch, double* out) const {
  for (int64_t b = 0; b < batch; ++b) out[b] = score(cvs + b * n_cvs);
}

}  // namespace nanochart
