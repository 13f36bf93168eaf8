// Helpers for the vectorised hot loops of the core. Private to cpp/src.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Hot loops get AVX-512 and AVX2+FMA clones chosen at load time where the CPU has them, and a
// baseline clone otherwise, so one binary runs everywhere (GCC/Clang function multi-versioning, which
// needs ifunc support: Linux on x86-64).
#if defined(__x86_64__) && defined(__linux__) && !defined(NANOCHART_NO_CLONES)
#define NANOCHART_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NANOCHART_HOT
#endif

namespace nanochart {

// Four doubles as one value (GCC/Clang vector extension): one AVX register in the AVX2 and
// AVX-512 clones. Hot loops use it where the auto-vectoriser gives up or spills (it did,
// depending on loop lengths known only at run time).
using Vec4 = double __attribute__((vector_size(32)));
using Vec2 = double __attribute__((vector_size(16)));
// Eight doubles: one AVX-512 register, for loops that pick it at run time on CPUs with AVX-512.
using Vec8 = double __attribute__((vector_size(64)));

template <typename Vec>
constexpr int kLanes = static_cast<int>(sizeof(Vec) / sizeof(double));

// Four doubles as two Vec2 halves, for CPUs whose vector registers hold two doubles (x86-64
// without AVX, ARM NEON): there GCC splits a Vec4 badly, through the stack.
struct Halves4 {
  Vec2 lo, hi;
};

__attribute__((always_inline)) inline Halves4 operator+(Halves4 a, Halves4 b) { return {a.lo + b.lo, a.hi + b.hi}; }
__attribute__((always_inline)) inline Halves4 operator*(Halves4 a, Halves4 b) { return {a.lo * b.lo, a.hi * b.hi}; }
__attribute__((always_inline)) inline Halves4 operator*(Halves4 a, double b) { return {a.lo * b, a.hi * b}; }
__attribute__((always_inline)) inline Halves4 operator*(double a, Halves4 b) { return b * a; }
__attribute__((always_inline)) inline Halves4 operator+(double a, Halves4 b) { return {a + b.lo, a + b.hi}; }
__attribute__((always_inline)) inline Halves4& operator+=(Halves4& a, Halves4 b) { return a = a + b; }
__attribute__((always_inline)) inline Halves4& operator*=(Halves4& a, double b) { return a = a * b; }

template <typename Vec>
__attribute__((always_inline)) inline Vec load(const double* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename Vec>
__attribute__((always_inline)) inline void store(double* p, Vec v) {
  std::memcpy(p, &v, sizeof(v));
}

__attribute__((always_inline)) inline Vec4 load4(const double* p) { return load<Vec4>(p); }
__attribute__((always_inline)) inline void store4(double* p, Vec4 v) { store(p, v); }

// v where the mask (a vector comparison: lanes all ones or all zeros) is set, +0.0 elsewhere.
// A bitwise select, so NaN or inf in unset lanes vanish.
template <typename Mask, typename Vec>
__attribute__((always_inline)) inline Vec keep(Mask mask, Vec v) {
  return (Vec)((Mask)v & mask);
}

// v where lowest <= x <= highest (lane by lane), +0.0 elsewhere.
__attribute__((always_inline)) inline Vec4 keep_between(double x, Vec4 lowest, Vec4 highest, Vec4 v) {
  return keep((x >= lowest) & (x <= highest), v);
}
__attribute__((always_inline)) inline Halves4 keep_between(double x, Halves4 lowest, Halves4 highest, Halves4 v) {
  return {keep((x >= lowest.lo) & (x <= highest.lo), v.lo), keep((x >= lowest.hi) & (x <= highest.hi), v.hi)};
}

__attribute__((always_inline)) inline double lane_sum(Vec4 v) { return (v[0] + v[1]) + (v[2] + v[3]); }
__attribute__((always_inline)) inline double lane_sum(Halves4 v) {
  const Vec2 s = v.lo + v.hi;
  return s[0] + s[1];
}

// out[i] = lane_sum(s_i) for four sums, bit for bit: for Vec4 the lanes of all four are added
// at once by two rounds of shuffles (six instead of twelve).
__attribute__((always_inline)) inline void lane_sums(Vec4 s0, Vec4 s1, Vec4 s2, Vec4 s3, double* out) {
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
  // [s0_0 + s0_1, s1_0 + s1_1, s0_2 + s0_3, s1_2 + s1_3], the same for s2 and s3, then the halves.
  const Vec4 low = __builtin_shufflevector(s0, s1, 0, 4, 2, 6) + __builtin_shufflevector(s0, s1, 1, 5, 3, 7);
  const Vec4 high = __builtin_shufflevector(s2, s3, 0, 4, 2, 6) + __builtin_shufflevector(s2, s3, 1, 5, 3, 7);
  store(out, __builtin_shufflevector(low, high, 0, 1, 4, 5) + __builtin_shufflevector(low, high, 2, 3, 6, 7));
#else
  out[0] = lane_sum(s0), out[1] = lane_sum(s1), out[2] = lane_sum(s2), out[3] = lane_sum(s3);
#endif
}
__attribute__((always_inline)) inline void lane_sums(Halves4 s0, Halves4 s1, Halves4 s2, Halves4 s3, double* out) {
  out[0] = lane_sum(s0), out[1] = lane_sum(s1), out[2] = lane_sum(s2), out[3] = lane_sum(s3);
}

// Whether Vec4 code runs well here: on x86-64 with AVX2 and FMA, which the clones use; in a build
// without clones, only if it was compiled for AVX2. Elsewhere hot loops use Halves4. Setting
// NANOCHART_NARROW_VECTORS=1 takes the Halves4 paths anyway (for tests on wide machines).
inline bool wide_vectors() {
  static const bool wide = [] {
    const char* narrow = std::getenv("NANOCHART_NARROW_VECTORS");
    if (narrow && std::string(narrow) == "1") return false;
#if defined(__x86_64__) && defined(__linux__) && !defined(NANOCHART_NO_CLONES)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#elif defined(__AVX2__) && defined(__FMA__)
    return true;
#else
    return false;
#endif
  }();
  return wide;
}

// Whether loops written for Vec8 should run: on x86-64 with AVX-512F (the x86-64-v4 clones), unless
// NANOCHART_NO_AVX512=1 (for tests of the Vec4 paths on AVX-512 machines) or narrow vectors are asked for.
inline bool avx512_vectors() {
  static const bool avx512 = [] {
    const char* off = std::getenv("NANOCHART_NO_AVX512");
    if (!wide_vectors() || (off && std::string(off) == "1")) return false;
#if defined(__x86_64__) && defined(__linux__) && !defined(NANOCHART_NO_CLONES)
    return __builtin_cpu_supports("avx512f") != 0;
#elif defined(__AVX512F__)
    return true;
#else
    return false;
#endif
  }();
  return avx512;
}

// exp(x) to about 1 ulp, branch-free so that loops over it vectorise: x = n ln2 + r with
// |r| <= ln2/2, a degree-13 Taylor polynomial in r (evaluated in Estrin's scheme: a chain of five
// multiply-adds instead of thirteen), and 2^n added to the exponent bits. Valid for |x| < 708;
// callers keep their arguments in range (a clamp here would stop the vectoriser in loops that do
// not need it).
__attribute__((always_inline)) inline double vector_exp(double x) {
  constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52: rounds to an integer in the low bits
  const double shifted = x * 1.4426950408889634 + kShifter;
  const double n = shifted - kShifter;
  double r = x - n * 0.6931471805599453094;
  r -= n * 2.319046813846299558e-17;
  const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  const double p01 = 1.0 + r, p23 = 0.5 + r * (1.0 / 6.0), p45 = 1.0 / 24.0 + r * (1.0 / 120.0),
               p67 = 1.0 / 720.0 + r * (1.0 / 5040.0), p89 = 1.0 / 40320.0 + r * (1.0 / 362880.0),
               p1011 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0), p1213 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0);
  const double p03 = p01 + r2 * p23, p47 = p45 + r2 * p67, p811 = p89 + r2 * p1011;
  const double p07 = p03 + r4 * p47, p813 = p811 + r4 * p1213;
  const double p = p07 + r8 * p813;
  int64_t n_bits, p_bits;
  std::memcpy(&n_bits, &shifted, sizeof(double));
  std::memcpy(&p_bits, &p, sizeof(double));
  p_bits += static_cast<int64_t>(static_cast<uint64_t>(n_bits) << 52);
  double out;
  std::memcpy(&out, &p_bits, sizeof(double));
  return out;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NANOCHART_HAVE_AVX512_RECIPROCAL 1
// Functions that run only where avx512_vectors() says so (callers check), with AVX-512 intrinsics.
#define NANOCHART_AVX512 __attribute__((target("avx512f,avx512vl,fma")))

// 1/d for finite d != 0 whose reciprocal is a normal number, to about 1 ulp: AVX-512's 14-bit
// estimate and two Newton steps (14 -> 28 -> 56 bits), a few multiply-adds where vdivpd takes 16
// cycles per vector.
NANOCHART_AVX512 __attribute__((always_inline)) inline Vec8 reciprocal(Vec8 d) {
  const __m512d v = reinterpret_cast<__m512d>(d);
  __m512d r = _mm512_maskz_rcp14_pd(0xFF, v);
  const __m512d one = _mm512_set1_pd(1.0);
  r = _mm512_fmadd_pd(r, _mm512_fnmadd_pd(v, r, one), r);
  r = _mm512_fmadd_pd(r, _mm512_fnmadd_pd(v, r, one), r);
  return reinterpret_cast<Vec8>(r);
}

// 1/sqrt(x) for finite x > 0 whose result is a normal number, to about 1 ulp: the 14-bit estimate
// and two Newton steps y (3 - x y^2) / 2.
NANOCHART_AVX512 __attribute__((always_inline)) inline Vec8 reciprocal_sqrt(Vec8 x) {
  const __m512d v = reinterpret_cast<__m512d>(x);
  const __m512d half = _mm512_set1_pd(0.5), three_halves = _mm512_set1_pd(1.5);
  const __m512d half_v = _mm512_mul_pd(half, v);
  __m512d y = _mm512_maskz_rsqrt14_pd(0xFF, v);
  y = _mm512_mul_pd(y, _mm512_fnmadd_pd(half_v, _mm512_mul_pd(y, y), three_halves));
  y = _mm512_mul_pd(y, _mm512_fnmadd_pd(half_v, _mm512_mul_pd(y, y), three_halves));
  return reinterpret_cast<Vec8>(y);
}
#else
#define NANOCHART_HAVE_AVX512_RECIPROCAL 0
#endif

}  // namespace nanochart
