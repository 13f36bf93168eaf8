#include "rdf_kernel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "vector_math.h"

namespace nanochart::kernel {
namespace {

// A pair's window is walked a group of kWindowLanes bins at a time, bins c-R+Lj..c-R+Lj+L-1 for
// group j < groups: `powers` holds e0 q^m for them (the first group is the pair's base, and q^4
// moves it one group on), and group_factors masks the bins beyond the cutoff, so the kernel value
// is group_factors(...) C_m. Quad is the four-double type (Vec4, or Halves4 on CPUs with two-double
// vectors). Groups is a template argument for the usual window widths so that the loops are
// unrolled; 0 takes it from the grid at run time.
static_assert(kWindowLanes == 4, "a pair's base holds four lanes");

// The grid's mask, read once per loop: groups from 64 on are masked whatever the bits say. A bin
// m is kept where lowest_x0[m] <= x0 <= highest_x0[m], |x0 + m h| <= cutoff: two comparisons with
// x0 and no arithmetic on the pair's bins (backward 68.6 -> 56.4 us at N = 147 with the integer
// centres and four-pair sums below; squaring x0 + m h took two operations more a group).
struct WindowMask {
  explicit WindowMask(const Grid& grid)
      : groups(grid.masked_groups), lowest_x0(grid.lowest_x0.data()), highest_x0(grid.highest_x0.data()) {}
  uint64_t groups;
  const double* lowest_x0;
  const double* highest_x0;
};

template <typename Quad>
__attribute__((always_inline)) inline Quad group_factors(const WindowMask& mask, int j, double x0, Quad powers) {
  if (j < 64 && !((mask.groups >> j) & 1u)) return powers;
  const int at = kWindowLanes * j;
  return keep_between(x0, load<Quad>(mask.lowest_x0 + at), load<Quad>(mask.highest_x0 + at), powers);
}

// The loop reads everything it needs from locals and __restrict arrays: with the grid, the row
// and the table behind references, the compiler reloaded their members after every store into
// the table (they might have aliased it).
template <typename Quad, int Groups>
NANOCHART_HOT void accumulate_windows_of(int groups, int64_t count, WindowMask mask, const int64_t* __restrict centre,
                                         const double* __restrict x0s, const double* __restrict q4s,
                                         const double* __restrict base, double* __restrict origin) {
  if (Groups > 0) groups = Groups;
  const int64_t width = int64_t{kWindowLanes} * groups;
  for (int64_t t = 0; t < count; ++t) {
    double* sum = origin + centre[t] * width;
    const double x0 = x0s[t], q4 = q4s[t];
    Quad powers = load<Quad>(base + 4 * t);
    for (int j = 0; j < groups; ++j) {
      double* at = sum + kWindowLanes * j;
      store(at, load<Quad>(at) + group_factors(mask, j, x0, powers));
      powers *= q4;
    }
  }
}

template <typename Quad, int Groups>
void accumulate_windows(const Grid& grid, int64_t count, const Row& row, CentreTable& sums) {
  accumulate_windows_of<Quad, Groups>(grid.groups, count, WindowMask(grid), row.centre, row.x0, row.q4, row.base,
                                      sums.row(0));
}

// sum_m w_k K_k x_k = sum_m p w_k (x0 C_m + C_m m h), k = c + m, lane by lane (lane_sum or
// lane_sums adds the lanes), for weights w with a margin of grid.window_width() bins on each side
// (so that the windows of pinned pairs read zeros), from w's bin 0 on at w_origin.
template <typename Quad, int Groups>
__attribute__((always_inline)) inline Quad pair_gradient(int groups, const WindowMask& mask,
                                                         const double* __restrict gauss,
                                                         const double* __restrict gauss_offsets, int64_t centre,
                                                         double x0, double q4, const double* __restrict base,
                                                         const double* __restrict w_origin) {
  if (Groups > 0) groups = Groups;
  const double* w = w_origin + centre;
  Quad powers = load<Quad>(base);
  Quad sum = 0.0 * powers;
  for (int j = 0; j < groups; ++j) {
    const int at = kWindowLanes * j;
    const Quad p = group_factors(mask, j, x0, powers);
    sum += p * load<Quad>(w + at) * (x0 * load<Quad>(gauss + at) + load<Quad>(gauss_offsets + at));
    powers *= q4;
  }
  return sum;
}

// Four pairs at a time, whose lanes are added at once, then the rest one by one.
template <typename Quad, int Groups>
NANOCHART_HOT void gradient_windows_of(int groups, int64_t count, WindowMask mask, const double* __restrict gauss,
                                       const double* __restrict gauss_offsets, const int64_t* __restrict centre,
                                       const double* __restrict x0s, const double* __restrict q4s,
                                       const double* __restrict base, const double* __restrict w_origin,
                                       double* __restrict dL_dr) {
  // (A macro, not a lambda: a lambda would be compiled for the baseline CPU, not for this clone's.)
#define NANOCHART_PAIR(t) \
  pair_gradient<Quad, Groups>(groups, mask, gauss, gauss_offsets, centre[t], x0s[t], q4s[t], base + 4 * (t), w_origin)
  int64_t t = 0;
  for (; t + 4 <= count; t += 4)
    lane_sums(NANOCHART_PAIR(t), NANOCHART_PAIR(t + 1), NANOCHART_PAIR(t + 2), NANOCHART_PAIR(t + 3), dL_dr + t);
  for (; t < count; ++t) dL_dr[t] = lane_sum(NANOCHART_PAIR(t));
#undef NANOCHART_PAIR
}

template <typename Quad, int Groups>
void gradient_windows(const Grid& grid, int64_t count, const Row& row, const double* padded_w) {
  // The window of a pair at centre c starts at bin c - R, which padded_w holds window_width() on.
  gradient_windows_of<Quad, Groups>(grid.groups, count, WindowMask(grid), grid.gauss.data(), grid.gauss_offsets.data(),
                                    row.centre, row.x0, row.q4, row.base, padded_w + grid.window_width() - grid.radius,
                                    row.dL_dr);
}

// Window widths (in groups of bins) with their own compiled specialisation: up to 32 bins,
// R <= 15, which covers h >= 0.4 at the default cutoff; wider windows use the run-time width.
constexpr int kMaxFixedGroups = 32 / kWindowLanes;

#if NANOCHART_HAVE_AVX512_RECIPROCAL
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
// GCC 12 warns that the "undefined" vector its broadcast and extract intrinsics start from may be
// used uninitialised (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// The forward loop with AVX-512 for windows of two groups or more: two groups at a time as one
// eight-double vector (and the last group of an odd count as four), the masks in mask registers
// (two comparisons a vector, then a masked add). Measured at N = 147 on the default grid (three
// groups): RDF forward 83-91 -> 70-78 us. The same for the gradient loop gained nothing over the
// Quad one (57-58 us both), so there is none.
template <int Groups>
NANOCHART_AVX512 void accumulate_avx512_of(int64_t count, const double* __restrict lowest_x0,
                                           const double* __restrict highest_x0, const int64_t* __restrict centre,
                                           const double* __restrict x0s, const double* __restrict q4s,
                                           const double* __restrict base, double* __restrict origin) {
  static_assert(Groups >= 2, "windows of two groups or more");
  constexpr int64_t kWidth = int64_t{kWindowLanes} * Groups;
  const __m512d ones = _mm512_set1_pd(1.0);
  for (int64_t t = 0; t < count; ++t) {
    double* sum = origin + centre[t] * kWidth;
    const __m512d x0 = _mm512_set1_pd(x0s[t]);
    const __m512d q4 = _mm512_set1_pd(q4s[t]);
    const __m512d q8 = _mm512_mul_pd(q4, q4);
    // [b, b q4], from the broadcast base and a blend by mask (the same built from shuffles and
    // inserts, as GCC writes it from vector extensions, took 77-78 us against 67-69).
    __m512d powers =
        _mm512_mul_pd(_mm512_broadcast_f64x4(_mm256_loadu_pd(base + 4 * t)), _mm512_mask_blend_pd(0xF0, ones, q4));
    for (int j = 0; j + 2 <= Groups; j += 2) {
      const int at = kWindowLanes * j;
      const __mmask8 keep = _mm512_mask_cmp_pd_mask(_mm512_cmp_pd_mask(_mm512_loadu_pd(lowest_x0 + at), x0, _CMP_LE_OQ),
                                                    x0, _mm512_loadu_pd(highest_x0 + at), _CMP_LE_OQ);
      const __m512d previous = _mm512_loadu_pd(sum + at);
      _mm512_storeu_pd(sum + at, _mm512_mask_add_pd(previous, keep, previous, powers));
      powers = _mm512_mul_pd(powers, q8);
    }
    if (Groups % 2 == 1) {
      constexpr int at = kWindowLanes * (Groups - 1);
      const __m256d x0_4 = _mm512_castpd512_pd256(x0);
      const __mmask8 keep =
          _mm256_mask_cmp_pd_mask(_mm256_cmp_pd_mask(_mm256_loadu_pd(lowest_x0 + at), x0_4, _CMP_LE_OQ), x0_4,
                                  _mm256_loadu_pd(highest_x0 + at), _CMP_LE_OQ);
      const __m256d previous = _mm256_loadu_pd(sum + at);
      _mm256_storeu_pd(sum + at, _mm256_mask_add_pd(previous, keep, previous, _mm512_castpd512_pd256(powers)));
    }
  }
}

template <int Groups>
void accumulate_avx512(const Grid& grid, int64_t count, const Row& row, CentreTable& sums) {
  accumulate_avx512_of<Groups>(count, grid.lowest_x0.data(), grid.highest_x0.data(), row.centre, row.x0, row.q4,
                               row.base, sums.row(0));
}

// accumulate_avx512<groups> for 2..kMaxFixedGroups groups, else null.
template <int... G>
AccumulateFunction pick_accumulate_avx512(int groups, std::integer_sequence<int, G...>) {
  AccumulateFunction chosen = nullptr;
  ((groups == G + 2 ? (chosen = &accumulate_avx512<G + 2>, 0) : 0), ...);
  return chosen;
}
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic pop
#endif
#endif

template <typename Quad, int... G>
AccumulateFunction pick_accumulate(int groups, std::integer_sequence<int, G...>) {
  AccumulateFunction chosen = &accumulate_windows<Quad, 0>;
  ((groups == G + 1 ? (chosen = &accumulate_windows<Quad, G + 1>, 0) : 0), ...);
  return chosen;
}

template <typename Quad, int... G>
GradientFunction pick_gradient(int groups, std::integer_sequence<int, G...>) {
  GradientFunction chosen = &gradient_windows<Quad, 0>;
  ((groups == G + 1 ? (chosen = &gradient_windows<Quad, G + 1>, 0) : 0), ...);
  return chosen;
}

// The bins c+m that a pair with centre c can reach within the cutoff, for a centre shift s:
// x0 = (c - p) h lies in [(-s - 1/2) h, (-s + 1/2) h], so m runs from ceil(-a + s - 1/2) to
// floor(a + s + 1/2), a = cutoff / h.
struct WindowSpan {
  int radius, bins;
};
WindowSpan window_span(double a, double shift) {
  const int lowest = static_cast<int>(std::ceil(-a + shift - 0.5));
  const int highest = static_cast<int>(std::floor(a + shift + 0.5));
  return {-lowest, highest - lowest + 1};
}

int groups_for(int bins) { return (bins + kWindowLanes - 1) / kWindowLanes; }

// Centres below the pair are taken only up to h = 4: there x0 reaches -h, and the exponents of the
// kernel parameters stay below 100 (cutoff <= 20).
constexpr double kLargestBelowCentreStep = 4.0;

}  // namespace

Grid::Grid(const RdfSettings& s)
    : r_min(s.r_min),
      inv_spacing(1.0 / s.spacing()),
      h(s.spacing() / s.sigma),
      cutoff(s.cutoff_sigmas),
      n_bins(s.n_bins) {
  const double a = cutoff / h;
  const WindowSpan nearest = window_span(a, 0.0), below = window_span(a, 0.5);
  const bool shift = h <= kLargestBelowCentreStep && groups_for(below.bins) < groups_for(nearest.bins);
  const WindowSpan span = shift ? below : nearest;
  centre_shift = shift ? 0.5 : 0.0;
  radius = span.radius;
  groups = groups_for(span.bins);
  for (int m = -radius; m < -radius + window_width(); ++m) {
    gauss.push_back(std::exp(-0.5 * m * m * h * h));
    gauss_offsets.push_back(gauss.back() * (m * h));
    lowest_x0.push_back(-cutoff - m * h);
    highest_x0.push_back(cutoff - m * h);
  }
  // A bin is inside the cutoff whatever x0 if both ends of x0's range lie within its bounds (the
  // same bounds the mask compares with); only groups holding others need the mask.
  const double x0_lowest = (-centre_shift - 0.5) * h, x0_highest = (-centre_shift + 0.5) * h;
  for (int j = 0; j < groups && j < 64; ++j) {
    for (int l = 0; l < kWindowLanes; ++l) {
      const size_t m = static_cast<size_t>(kWindowLanes * j + l);
      if (x0_lowest < lowest_x0[m] || x0_highest > highest_x0[m]) masked_groups |= uint64_t{1} << j;
    }
  }
  constexpr auto widths = std::make_integer_sequence<int, kMaxFixedGroups>();
  accumulate_windows =
      wide_vectors() ? pick_accumulate<Vec4>(groups, widths) : pick_accumulate<Halves4>(groups, widths);
  gradient_windows = wide_vectors() ? pick_gradient<Vec4>(groups, widths) : pick_gradient<Halves4>(groups, widths);
#if NANOCHART_HAVE_AVX512_RECIPROCAL
  if (avx512_vectors()) {
    const AccumulateFunction wide =
        pick_accumulate_avx512(groups, std::make_integer_sequence<int, kMaxFixedGroups - 1>());
    if (wide) accumulate_windows = wide;
  }
#endif
}

PairArrays::PairArrays(int64_t capacity) : base(static_cast<size_t>(4 * capacity)) {
  for (auto* values : {&dx, &dy, &dz, &r, &inv_r, &x0, &q4}) values->resize(static_cast<size_t>(capacity));
  centre.resize(static_cast<size_t>(capacity));
}

Row::Row(PairArrays& a, int64_t first, double* dL_dr_scratch)
    : dx(a.dx.data() + first),
      dy(a.dy.data() + first),
      dz(a.dz.data() + first),
      r(a.r.data() + first),
      inv_r(a.inv_r.data() + first),
      centre(a.centre.data() + first),
      x0(a.x0.data() + first),
      q4(a.q4.data() + first),
      base(a.base.data() + 4 * first),
      dL_dr(dL_dr_scratch) {}

AtomGradients::AtomGradients(int64_t n_atoms)
    : x(static_cast<size_t>(n_atoms), 0.0),
      y(static_cast<size_t>(n_atoms), 0.0),
      z(static_cast<size_t>(n_atoms), 0.0) {}

RecordedRows::RecordedRows(int64_t n)
    : n_atoms(n), start(static_cast<size_t>(n)), pairs([&] {
        int64_t total = 0;
        for (int64_t i = 0; i < n; ++i) {
          start[static_cast<size_t>(i)] = total;
          total += padded_pairs(n - i - 1);
        }
        return total;
      }()) {}

Coordinates::Coordinates(const double* positions, int64_t n) : n_atoms(n) {
  x.assign(static_cast<size_t>(n + kRowPadding), 0.0);
  y.assign(static_cast<size_t>(n + kRowPadding), 0.0);
  z.assign(static_cast<size_t>(n + kRowPadding), 0.0);
  for (int64_t a = 0; a < n_atoms; ++a) {
    x[a] = positions[3 * a];
    y[a] = positions[3 * a + 1];
    z[a] = positions[3 * a + 2];
  }
}

namespace {

// Separations x_j - x_i for j = i+1..i+count into dx, dy and dz, count a multiple
// of kRowPadding (whole, which equals it, tells the vectoriser so: no scalar tail).
NANOCHART_HOT void separations_of(int64_t count, double xi, double yi, double zi, const double* __restrict x,
                                  const double* __restrict y, const double* __restrict z, const Box& box,
                                  double* __restrict dx, double* __restrict dy, double* __restrict dz) {
  const int64_t whole = count / kRowPadding * kRowPadding;
  for (int64_t t = 0; t < whole; ++t) {
    dx[t] = x[t] - xi;
    dy[t] = y[t] - yi;
    dz[t] = z[t] - zi;
  }
  if (box.periodic()) {
    if (box.orthorhombic()) {
      constexpr double kShifter = 6755399441055744.0;  // round to nearest without a libm call
      const auto& h = box.rows();
      const double lx = h[0], ly = h[4], lz = h[8];
      for (int64_t t = 0; t < whole; ++t) {
        dx[t] -= lx * ((dx[t] / lx + kShifter) - kShifter);
        dy[t] -= ly * ((dy[t] / ly + kShifter) - kShifter);
        dz[t] -= lz * ((dz[t] / lz + kShifter) - kShifter);
      }
    } else {
      for (int64_t t = 0; t < whole; ++t) {
        double d[3] = {dx[t], dy[t], dz[t]};
        box.minimum_image(d);
        dx[t] = d[0];
        dy[t] = d[1];
        dz[t] = d[2];
      }
    }
  }
}

// Coincident atoms (r = 0) have a zero separation vector: a huge but finite 1/r gives them zero
// force without a branch.
constexpr double kTinyDistance = 1e-150, kTinySquare = kTinyDistance * kTinyDistance;

// r = |d| and 1/r for `whole` separations (a multiple of kRowPadding).
NANOCHART_HOT void distances_divided(int64_t whole, const double* __restrict dx, const double* __restrict dy,
                                     const double* __restrict dz, double* __restrict r, double* __restrict inv_r) {
  for (int64_t t = 0; t < whole; ++t) {
    const double distance = std::sqrt(dx[t] * dx[t] + dy[t] * dy[t] + dz[t] * dz[t]);
    r[t] = distance;
    inv_r[t] = 1.0 / (distance > kTinyDistance ? distance : kTinyDistance);
  }
}

#if NANOCHART_HAVE_AVX512_RECIPROCAL
// The same from AVX-512's 14-bit estimate of 1/sqrt refined by two Newton steps (to about 1 ulp),
// r = r^2 / r: vsqrtpd and vdivpd take 16 cycles a vector each, and held the separations loop.
NANOCHART_AVX512 void distances_estimated(int64_t whole, const double* __restrict dx, const double* __restrict dy,
                                          const double* __restrict dz, double* __restrict r, double* __restrict inv_r) {
  for (int64_t t = 0; t < whole; t += kRowPadding) {
    const Vec8 x = load<Vec8>(dx + t), y = load<Vec8>(dy + t), z = load<Vec8>(dz + t);
    const Vec8 squared = x * x + y * y + z * z;
    const Vec8 inverse = reciprocal_sqrt(squared > kTinySquare ? squared : kTinySquare);
    store(inv_r + t, inverse);
    store(r + t, squared * inverse);
  }
}
#endif

void distances(int64_t whole, const double* dx, const double* dy, const double* dz, double* r, double* inv_r) {
  static_assert(kRowPadding % 8 == 0, "whole rows of eight-double vectors");
#if NANOCHART_HAVE_AVX512_RECIPROCAL
  if (avx512_vectors()) return distances_estimated(whole, dx, dy, dz, r, inv_r);
#endif
  distances_divided(whole, dx, dy, dz, r, inv_r);
}

// Arrays come in as __restrict parameters: GCC vectorises this loop only then, not with
// __restrict locals taken from the row's vectors. The exponents stay inside vector_exp's range:
// for nearest centres |x0| <= h/2, R <= cutoff/h + 1/2, and RdfSettings::validate keeps h <= 20
// and cutoff <= 20, so |x0^2/2 - R x0 h| <= 3h^2/8 + cutoff h/2 <= 350 and |x0 h| <= 200; for
// centres below the pair (h <= 4) |x0| <= h and R <= cutoff/h, so both stay below 100.
NANOCHART_HOT void kernel_parameters_of(int64_t count, double r_min, double inv_spacing, double h, double shift,
                                        int radius, double lowest, double highest, const double* __restrict r,
                                        int64_t* __restrict centre, double* __restrict x0, double* __restrict base,
                                        double* __restrict q4) {
  constexpr double kShifter = 6755399441055744.0;
  constexpr int64_t kShifterBits = 0x4338000000000000;  // kShifter's bits
  const double rh = radius * h;
  // count is a multiple of kRowPadding already; saying so lets the vectoriser drop its scalar tail.
  const int64_t whole = count / kRowPadding * kRowPadding;
  for (int64_t t = 0; t < whole; ++t) {
    // Pairs far outside the grid are pinned just beyond it, where their window is discarded
    // (lowest and highest are whole centres plus the shift, so that c is exact there).
    // (Ternaries, not std::min/max, whose references defeat the vectoriser.)
    double p = (r[t] - r_min) * inv_spacing;
    p = p < lowest ? lowest : p;
    p = p > highest ? highest : p;
    // c in the low bits of `shifted`: its bits less kShifter's are c as an integer, with no
    // conversion instruction (there is none for vectors of int64 before AVX-512).
    const double shifted = (p - shift) + kShifter;
    const double c = shifted - kShifter;
    const double x = (c - p) * h;
    int64_t shifted_bits;
    std::memcpy(&shifted_bits, &shifted, sizeof(double));
    centre[t] = shifted_bits - kShifterBits;
    x0[t] = x;
    const double q = vector_exp(-x * h);
    const double b = vector_exp(x * (rh - 0.5 * x));  // e0 q^-R
    const double q2 = q * q;
    base[4 * t] = b;
    base[4 * t + 1] = b * q;
    base[4 * t + 2] = b * q2;
    base[4 * t + 3] = b * q2 * q;
    q4[t] = q2 * q2;
  }
}

}  // namespace

void fill_row(const Grid& grid, const Coordinates& coords, int64_t i, const Box& box, const Row& row) {
  const int64_t count = padded_pairs(coords.n_atoms - i - 1);
  separations_of(count, coords.x[i], coords.y[i], coords.z[i], coords.x.data() + i + 1, coords.y.data() + i + 1,
                 coords.z.data() + i + 1, box, row.dx, row.dy, row.dz);
  distances(count, row.dx, row.dy, row.dz, row.r, row.inv_r);
  const double lowest = static_cast<double>(grid.lowest_centre()) + grid.centre_shift;
  const double highest = static_cast<double>(grid.highest_centre()) + grid.centre_shift;
  kernel_parameters_of(count, grid.r_min, grid.inv_spacing, grid.h, grid.centre_shift, grid.radius, lowest, highest,
                       row.r, row.centre, row.x0, row.base, row.q4);
}

CentreTable::CentreTable(const Grid& grid)
    : first_centre(grid.lowest_centre()),
      width(grid.window_width()),
      rows(grid.highest_centre() - grid.lowest_centre() + 1) {
  // Rows start on 32-byte boundaries (width is a multiple of 4), so no vector access straddles
  // two cache lines.
  storage_.assign(static_cast<size_t>(rows * width + 4), 0.0);
  offset_ = ((32 - reinterpret_cast<uintptr_t>(storage_.data()) % 32) % 32) / sizeof(double);
}

void accumulate(const Grid& grid, int64_t count, const Row& row, CentreTable& sums) {
  grid.accumulate_windows(grid, count, row, sums);
}

// Bin by bin, each g_k summed in a register (row by row, every row's window written over the
// previous one's shifted by a bin, the stores would stall the loads that follow them), four bins
// at a time for four independent sums. Centres in increasing order, as the pair loop's bins.
NANOCHART_HOT void move_to_rdf(const Grid& grid, CentreTable& sums, double* g) {
  const int64_t width = grid.window_width(), n_bins = grid.n_bins;
  const double* gauss = grid.gauss.data();
  // Centre c = k + R - m holds bin k at offset m (every such centre is in the table): bin k's
  // terms start at centre k + R - (width - 1), offset width - 1, and step a row back and an
  // offset on.
  const int64_t first_back = grid.radius - (width - 1);
  int64_t k = 0;
  for (; k + 4 <= n_bins; k += 4) {
    double t0 = g[k], t1 = g[k + 1], t2 = g[k + 2], t3 = g[k + 3];
    const double* sum = sums.row(k + first_back) + width - 1;  // bin k + 1 is a row further on, same offset
    for (int64_t m = width - 1; m >= 0; --m, sum += width - 1) {
      t0 += gauss[m] * sum[0];
      t1 += gauss[m] * sum[width];
      t2 += gauss[m] * sum[2 * width];
      t3 += gauss[m] * sum[3 * width];
    }
    g[k] = t0, g[k + 1] = t1, g[k + 2] = t2, g[k + 3] = t3;
  }
  for (; k < n_bins; ++k) {
    double total = g[k];
    const double* sum = sums.row(k + first_back) + width - 1;
    for (int64_t m = width - 1; m >= 0; --m, sum += width - 1) total += gauss[m] * *sum;
    g[k] = total;
  }
  sums.clear();
}

std::vector<double> padded_weights(const Grid& grid, const double* w) {
  const int64_t margin = grid.window_width();
  std::vector<double> padded(static_cast<size_t>(grid.n_bins + 2 * margin), 0.0);
  std::copy(w, w + grid.n_bins, padded.begin() + margin);
  return padded;
}

void pair_gradients(const Grid& grid, int64_t count, const Row& row, const double* padded_w) {
  grid.gradient_windows(grid, count, row, padded_w);
}

// Arrays as __restrict parameters, as in kernel_parameters_of, so the loop vectorises.
static NANOCHART_HOT void scatter_gradients_of(int64_t count, double scale, const double* __restrict dx,
                                               const double* __restrict dy, const double* __restrict dz,
                                               const double* __restrict inv_r, const double* __restrict dL_dr,
                                               double* __restrict gx, double* __restrict gy, double* __restrict gz,
                                               double* __restrict sums) {
  double sx = 0, sy = 0, sz = 0, xx = 0, yy = 0, zz = 0, xy = 0, xz = 0, yz = 0;
#pragma omp simd reduction(+ : sx, sy, sz, xx, yy, zz, xy, xz, yz)
  for (int64_t t = 0; t < count; ++t) {
    const double f = scale * dL_dr[t] * inv_r[t];
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

void scatter_gradients(int64_t i, int64_t count, double scale, const Row& row, AtomGradients& out) {
  double sums[9];
  scatter_gradients_of(count, scale, row.dx, row.dy, row.dz, row.inv_r, row.dL_dr, out.x.data() + i + 1,
                       out.y.data() + i + 1, out.z.data() + i + 1, sums);
  out.x[i] -= sums[0];
  out.y[i] -= sums[1];
  out.z[i] -= sums[2];
  for (int a = 0; a < 6; ++a) out.strain[a] += sums[3 + a];
}

}  // namespace nanochart::kernel
