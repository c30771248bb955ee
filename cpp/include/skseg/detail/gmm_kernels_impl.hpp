// SIMD kernels of the Gaussian-mixture E-step, written once with GCC/Clang
// vector extensions (or their portable stand-in) and compiled once per
// instruction-set level.
//
// This file is included by cpp/src/gmm_kernels_<level>.cpp INSIDE an anonymous
// namespace, after <cstdint>, <cstring> and <limits>: every function here gets
// internal linkage, so the AVX2 copy can never be picked by the linker for the
// baseline path. For the same reason it calls nothing from the standard
// library except memcpy/memset (numeric_limits is read as a constant only).
//
// A block of up to kBlockRows rows is processed in three passes, all over
// feature-major copies so that one vector holds one feature of L rows:
//   1. log-density of every (component, row) in the centred form
//      y = (x - mean) @ prec_chol, log p = c_k - |y|^2 / 2, and the row maximum;
//   2. e = exp(log p - max) with an inlined vector exp, the row sums s, the
//      row weights w / s and the log-likelihood max + log s;
//   3. per component, sums of r = e * w / s, r * (x - mean) and
//      r * (x - mean)(x - mean)^T kept in vector registers over the block.
// Pass 3 recomputes x - mean rather than storing it: nothing N x K is ever
// allocated and the block stays in L1.

// GCC and Clang (clang-cl too) compile the vector extensions; other compilers
// (MSVC) get the same operators from detail/portable_vec.hpp. Defining
// SKSEG_PORTABLE_VECTORS forces the latter, to test it with GCC.
#if (defined(__GNUC__) || defined(__clang__)) && !defined(SKSEG_PORTABLE_VECTORS)
#define SKSEG_GNU_VECTORS 1
#endif

#ifdef SKSEG_GNU_VECTORS
// Small vector helpers must inline: out of line, the baseline build would
// pass 32-byte vectors through memory.
#define SKSEG_VINLINE inline __attribute__((always_inline))

template <class T>
struct Vec;

template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(32), aligned(32)));
  typedef int32_t itype __attribute__((vector_size(32), aligned(32)));
  typedef int32_t int_type;
  static constexpr int lanes = 8;
};

template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(32), aligned(32)));
  typedef int64_t itype __attribute__((vector_size(32), aligned(32)));
  typedef int64_t int_type;
  static constexpr int lanes = 4;
};

template <class To, class From>
SKSEG_VINLINE To convert_vector(From v) {
  return __builtin_convertvector(v, To);
}
#else
#include "skseg/detail/portable_vec.hpp"

template <class T>
struct Vec;

template <>
struct Vec<float> {
  typedef PortableVec<float, 8> type;
  typedef PortableVec<int32_t, 8> itype;
  typedef int32_t int_type;
  static constexpr int lanes = 8;
};

template <>
struct Vec<double> {
  typedef PortableVec<double, 4> type;
  typedef PortableVec<int64_t, 4> itype;
  typedef int64_t int_type;
  static constexpr int lanes = 4;
};
#endif

template <class T>
using vec_t = typename Vec<T>::type;
template <class T>
using ivec_t = typename Vec<T>::itype;

template <class T>
SKSEG_VINLINE vec_t<T> splat(T value) {
  return vec_t<T>{} + value;
}

template <class T>
SKSEG_VINLINE vec_t<T> load(const T* p) {
  return *reinterpret_cast<const vec_t<T>*>(p);
}

template <class T>
SKSEG_VINLINE void store(T* p, vec_t<T> v) {
  *reinterpret_cast<vec_t<T>*>(p) = v;
}

template <class T>
SKSEG_VINLINE double hsum(vec_t<T> v) {
  double s = 0.0;
  for (int i = 0; i < Vec<T>::lanes; ++i) s += static_cast<double>(v[i]);
  return s;
}

// mask ? a : b for a lane mask (all bits set or clear per lane). With AVX
// the vector ternary is one blend; without, GCC would lower a 32-byte
// ternary lane by lane through memory, so the baseline uses bit operations.
template <class V, class I>
SKSEG_VINLINE V vselect(I mask, V a, V b) {
#if defined(__AVX__) && defined(SKSEG_GNU_VECTORS)
  return mask ? a : b;
#else
  I r = (reinterpret_cast<I&>(a) & mask) | (reinterpret_cast<I&>(b) & ~mask);
  return reinterpret_cast<V&>(r);
#endif
}

// exp for x <= 0 (the shifted log-densities): Cody-Waite reduction to
// |r| <= ln2/2, polynomial, and 2^n built in the exponent bits. exp(0) is
// exactly 1; arguments below the smallest normal result are clamped to it.
SKSEG_VINLINE vec_t<float> vexp(vec_t<float> x) {
  typedef vec_t<float> V;
  typedef ivec_t<float> I;
  const V lo = splat(-87.3f);
  x = vselect(x < lo, lo, x);
  const V magic = splat(12582912.0f);  // 1.5 * 2^23: rounds to an integer
  V t = x * 1.44269504088896341f + magic;
  V n = t - magic;
  V r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  V p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  I ni = reinterpret_cast<I&>(t) - reinterpret_cast<const I&>(magic);
  I bits = (ni + 127) << 23;
  return p * reinterpret_cast<V&>(bits);
}

SKSEG_VINLINE vec_t<double> vexp(vec_t<double> x) {
  typedef vec_t<double> V;
  typedef ivec_t<double> I;
  const V lo = splat(-708.0);
  x = vselect(x < lo, lo, x);
  const V magic = splat(6755399441055744.0);  // 1.5 * 2^52
  V t = x * 1.4426950408889634074 + magic;
  V n = t - magic;
  V r = x - n * 6.93145751953125e-1;
  r = r - n * 1.42860682030941723212e-6;
  // Taylor series to r^12: error below 2e-16 for |r| <= ln2/2.
  V p = splat(1.0 / 479001600.0);
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
  p = p * (r * r) + r + 1.0;
  I ni = reinterpret_cast<I&>(t) - reinterpret_cast<const I&>(magic);
  I bits = (ni + 1023) << 52;
  return p * reinterpret_cast<V&>(bits);
}

// log for positive normal x (row sums, >= 1): x = 2^e m with m in
// [sqrt(1/2), sqrt(2)), log m = 2 atanh((m - 1) / (m + 1)) as a series.
SKSEG_VINLINE vec_t<float> vlog(vec_t<float> x) {
  typedef vec_t<float> V;
  typedef ivec_t<float> I;
  I bits = reinterpret_cast<I&>(x);
  I e = (bits >> 23) - 127;
  I mbits = (bits & 0x7fffff) | 0x3f800000;
  V m = reinterpret_cast<V&>(mbits);
  I big = m > 1.41421356237f;
  m = vselect(big, m * 0.5f, m);
  e = e - big;  // big is -1 where true
  V u = (m - 1.0f) / (m + 1.0f);
  V u2 = u * u;
  V s = splat(1.0f / 11.0f);
  s = s * u2 + 1.0f / 9.0f;
  s = s * u2 + 1.0f / 7.0f;
  s = s * u2 + 1.0f / 5.0f;
  s = s * u2 + 1.0f / 3.0f;
  s = s * u2 + 1.0f;
  return convert_vector<V>(e) * 0.693147180559945309f + 2.0f * u * s;
}

SKSEG_VINLINE vec_t<double> vlog(vec_t<double> x) {
  typedef vec_t<double> V;
  typedef ivec_t<double> I;
  I bits = reinterpret_cast<I&>(x);
  I e = (bits >> 52) - 1023;
  I mbits = (bits & 0xfffffffffffffLL) | 0x3ff0000000000000LL;
  V m = reinterpret_cast<V&>(mbits);
  I big = m > 1.4142135623730950488;
  m = vselect(big, m * 0.5, m);
  e = e - big;
  V u = (m - 1.0) / (m + 1.0);
  V u2 = u * u;
  V s = splat(1.0 / 23.0);
  for (int i = 21; i >= 3; i -= 2) s = s * u2 + 1.0 / i;
  s = s * u2 + 1.0;
  return convert_vector<V>(e) * 0.69314718055994530942 + 2.0 * u * s;
}

inline bool is_matrix_type(skseg::gmm::CovType t) {
  return t == skseg::gmm::CovType::kFull || t == skseg::gmm::CovType::kTied;
}

// Copies rows [0, n) of x (row-major) into the feature-major block buffer,
// padding to a whole vector with zero rows of zero weight.
template <class T>
inline int load_block(const T* x, const T* w, int n, int D,
                      const skseg::gmm::BlockBuffers<T>& buf) {
  constexpr int L = Vec<T>::lanes;
  const int np = (n + L - 1) / L * L;
  constexpr int R = skseg::gmm::kBlockRows;
  for (int i = 0; i < n; ++i) {
    const T* row = x + static_cast<int64_t>(i) * D;
    for (int a = 0; a < D; ++a) buf.x[a * R + i] = row[a];
  }
  for (int a = 0; a < D; ++a)
    for (int i = n; i < np; ++i) buf.x[a * R + i] = T(0);
  if (w) {
    memcpy(buf.w, w, sizeof(T) * n);
  } else {
    for (int i = 0; i < n; ++i) buf.w[i] = T(1);
  }
  for (int i = n; i < np; ++i) buf.w[i] = T(0);
  return np / L;
}

// Pass 1: log-densities (plus log weights) into buf.logp, row maxima into
// buf.rowmax and, with WithLabel, the first component reaching the maximum.
// DC > 0 is the number of features known at compile time; DC == 0 is the
// general path for any number of features.
template <class T, int DC, bool WithLabel>
inline void log_prob_pass(const skseg::gmm::KernelModel<T>& model, int nv,
                          const skseg::gmm::BlockBuffers<T>& buf) {
  using skseg::gmm::CovType;
  typedef vec_t<T> V;
  typedef ivec_t<T> I;
  constexpr int L = Vec<T>::lanes;
  constexpr int R = skseg::gmm::kBlockRows;
  const int D = DC > 0 ? DC : model.n_features;
  const int K = model.n_components;
  const CovType type = model.cov_type;
  constexpr T kMinusInf = -std::numeric_limits<T>::infinity();
  for (int j = 0; j < nv; ++j) {
    store(buf.rowmax + j * L, splat<T>(kMinusInf));
    if (WithLabel) {
      I zero = {};
      *reinterpret_cast<I*>(buf.label + j * L * (sizeof(T) / 4)) = zero;
    }
  }
  for (int k = 0; k < K; ++k) {
    const T* mu = model.means + k * D;
    const T* pc = type == CovType::kFull   ? model.prec_chol + k * D * D
                  : type == CovType::kTied ? model.prec_chol
                  : type == CovType::kDiag ? model.prec_chol + k * D
                                           : model.prec_chol + k;
    const V c = splat(model.log_const[k]);
    T* out = buf.logp + k * R;
    if constexpr (DC > 0) {
      V m[DC];
      for (int a = 0; a < DC; ++a) m[a] = splat(mu[a]);
      if (is_matrix_type(type)) {
        V u[DC * (DC + 1) / 2];
        for (int a = 0, idx = 0; a < DC; ++a)
          for (int b = a; b < DC; ++b) u[idx++] = splat(pc[a * DC + b]);
        for (int j = 0; j < nv; ++j) {
          V d[DC];
          for (int a = 0; a < DC; ++a) d[a] = load(buf.x + a * R + j * L) - m[a];
          V q = {};
          // y_b = sum_{a <= b} d_a U_ab; packed index of U_ab is
          // a*D - a(a-1)/2 + (b - a).
          for (int b = 0; b < DC; ++b) {
            V y = d[0] * u[b];
            for (int a = 1; a <= b; ++a)
              y += d[a] * u[a * DC - a * (a - 1) / 2 + (b - a)];
            q += y * y;
          }
          store(out + j * L, c - T(0.5) * q);
        }
      } else {
        V p[DC];
        for (int a = 0; a < DC; ++a)
          p[a] = splat(type == CovType::kDiag ? pc[a] : pc[0]);
        for (int j = 0; j < nv; ++j) {
          V q = {};
          for (int a = 0; a < DC; ++a) {
            V y = (load(buf.x + a * R + j * L) - m[a]) * p[a];
            q += y * y;
          }
          store(out + j * L, c - T(0.5) * q);
        }
      }
    } else {
      for (int j = 0; j < nv; ++j) {
        V q = {};
        if (is_matrix_type(type)) {
          for (int b = 0; b < D; ++b) {
            V y = {};
            for (int a = 0; a <= b; ++a)
              y += (load(buf.x + a * R + j * L) - mu[a]) * pc[a * D + b];
            q += y * y;
          }
        } else {
          for (int a = 0; a < D; ++a) {
            const T pa = type == CovType::kDiag ? pc[a] : pc[0];
            V y = (load(buf.x + a * R + j * L) - mu[a]) * pa;
            q += y * y;
          }
        }
        store(out + j * L, c - T(0.5) * q);
      }
    }
    // Row maxima (and first arg-max) as a separate sweep keeps the loops
    // above free of cross-iteration dependencies.
    for (int j = 0; j < nv; ++j) {
      V lp = load(out + j * L);
      V mx = load(buf.rowmax + j * L);
      if (WithLabel) {
        I gt = lp > mx;
        I* lab = reinterpret_cast<I*>(buf.label + j * L * (sizeof(T) / 4));
        I kk = I{} + static_cast<typename Vec<T>::int_type>(k);
        *lab = vselect(gt, kk, *lab);
      }
      store(buf.rowmax + j * L, vselect(lp > mx, lp, mx));
    }
  }
}

// Pass 2: logp <- exp(logp - rowmax) and rowsum <- sum over components.
template <class T>
inline void exp_pass(int K, int nv, const skseg::gmm::BlockBuffers<T>& buf) {
  typedef vec_t<T> V;
  constexpr int L = Vec<T>::lanes;
  constexpr int R = skseg::gmm::kBlockRows;
  for (int j = 0; j < nv; ++j) store(buf.rowsum + j * L, V{});
  for (int k = 0; k < K; ++k) {
    T* lp = buf.logp + k * R;
    for (int j = 0; j < nv; ++j) {
      V e = vexp(load(lp + j * L) - load(buf.rowmax + j * L));
      store(lp + j * L, e);
      store(buf.rowsum + j * L, load(buf.rowsum + j * L) + e);
    }
  }
}

// Pass 3: weighted sufficient statistics, kept in registers over the block
// and added to stats (double) once per component.
template <class T, int DC>
inline void accumulate_pass(const skseg::gmm::KernelModel<T>& model, int nv,
                            const skseg::gmm::BlockBuffers<T>& buf,
                            double* stats) {
  typedef vec_t<T> V;
  constexpr int L = Vec<T>::lanes;
  constexpr int R = skseg::gmm::kBlockRows;
  const int D = DC > 0 ? DC : model.n_features;
  const int K = model.n_components;
  const bool matrix = is_matrix_type(model.cov_type);
  const int S = 1 + D + (matrix ? D * (D + 1) / 2 : D);
  for (int k = 0; k < K; ++k) {
    const T* mu = model.means + k * D;
    const T* e = buf.logp + k * R;
    double* st = stats + static_cast<int64_t>(k) * S;
    if constexpr (DC > 0) {
      V m[DC];
      for (int a = 0; a < DC; ++a) m[a] = splat(mu[a]);
      V acc_n = {};
      V acc_a[DC] = {};
      if (matrix) {
        constexpr int P = DC * (DC + 1) / 2;
        V acc_b[P] = {};
        for (int j = 0; j < nv; ++j) {
          V r = load(e + j * L) * load(buf.rowsum + j * L);
          V d[DC];
          for (int a = 0; a < DC; ++a) d[a] = load(buf.x + a * R + j * L) - m[a];
          acc_n += r;
          for (int a = 0, idx = 0; a < DC; ++a) {
            V rd = r * d[a];
            acc_a[a] += rd;
            for (int b = a; b < DC; ++b) acc_b[idx++] += rd * d[b];
          }
        }
        for (int p = 0; p < P; ++p) st[1 + DC + p] += hsum<T>(acc_b[p]);
      } else {
        V acc_b[DC] = {};
        for (int j = 0; j < nv; ++j) {
          V r = load(e + j * L) * load(buf.rowsum + j * L);
          acc_n += r;
          for (int a = 0; a < DC; ++a) {
            V d = load(buf.x + a * R + j * L) - m[a];
            V rd = r * d;
            acc_a[a] += rd;
            acc_b[a] += rd * d;
          }
        }
        for (int a = 0; a < DC; ++a) st[1 + DC + a] += hsum<T>(acc_b[a]);
      }
      st[0] += hsum<T>(acc_n);
      for (int a = 0; a < DC; ++a) st[1 + a] += hsum<T>(acc_a[a]);
    } else {
      // General number of features: one accumulator at a time.
      V acc = {};
      for (int j = 0; j < nv; ++j)
        acc += load(e + j * L) * load(buf.rowsum + j * L);
      st[0] += hsum<T>(acc);
      for (int a = 0; a < D; ++a) {
        acc = V{};
        for (int j = 0; j < nv; ++j)
          acc += load(e + j * L) * load(buf.rowsum + j * L) *
                 (load(buf.x + a * R + j * L) - mu[a]);
        st[1 + a] += hsum<T>(acc);
      }
      int idx = 1 + D;
      for (int a = 0; a < D; ++a) {
        for (int b = a; b < (matrix ? D : a + 1); ++b) {
          acc = V{};
          for (int j = 0; j < nv; ++j)
            acc += load(e + j * L) * load(buf.rowsum + j * L) *
                   (load(buf.x + a * R + j * L) - mu[a]) *
                   (load(buf.x + b * R + j * L) - mu[b]);
          st[idx++] += hsum<T>(acc);
        }
      }
    }
  }
}

template <class T, int DC>
void estep_block_impl(const skseg::gmm::KernelModel<T>& model, const T* x,
                      const T* w, int n, const skseg::gmm::BlockBuffers<T>& buf,
                      double* stats, double* loglik_weight) {
  typedef vec_t<T> V;
  constexpr int L = Vec<T>::lanes;
  const int nv = load_block(x, w, n, model.n_features, buf);
  log_prob_pass<T, DC, false>(model, nv, buf);
  exp_pass<T>(model.n_components, nv, buf);
  V ll = {};
  V ws = {};
  for (int j = 0; j < nv; ++j) {
    V wj = load(buf.w + j * L);
    V s = load(buf.rowsum + j * L);
    ll += wj * (load(buf.rowmax + j * L) + vlog(s));
    ws += wj;
    store(buf.rowsum + j * L, wj / s);  // now the factor turning e into w*r
  }
  loglik_weight[0] += hsum<T>(ll);
  loglik_weight[1] += hsum<T>(ws);
  accumulate_pass<T, DC>(model, nv, buf, stats);
}

template <class T, int DC>
void eval_block_impl(const skseg::gmm::KernelModel<T>& model, const T* x,
                     int n, const skseg::gmm::BlockBuffers<T>& buf, T* resp,
                     T* log_norm, int64_t* label) {
  constexpr int R = skseg::gmm::kBlockRows;
  const int K = model.n_components;
  const int nv = load_block<T>(x, nullptr, n, model.n_features, buf);
  if (label) {
    log_prob_pass<T, DC, true>(model, nv, buf);
    // The label buffer holds one lane-sized integer per row.
    for (int i = 0; i < n; ++i) {
      if (sizeof(T) == 4)
        label[i] = buf.label[i];
      else
        label[i] = reinterpret_cast<const int64_t*>(buf.label)[i];
    }
  } else {
    log_prob_pass<T, DC, false>(model, nv, buf);
  }
  if (!resp && !log_norm) return;
  exp_pass<T>(K, nv, buf);
  if (log_norm) {
    typedef vec_t<T> V;
    constexpr int L = Vec<T>::lanes;
    for (int j = 0; j < nv; ++j) {
      V v = load(buf.rowmax + j * L) + vlog(load(buf.rowsum + j * L));
      store(buf.w + j * L, v);
    }
    memcpy(log_norm, buf.w, sizeof(T) * n);
  }
  if (resp) {
    for (int i = 0; i < n; ++i) buf.rowsum[i] = T(1) / buf.rowsum[i];
    for (int i = 0; i < n; ++i) {
      T* row = resp + static_cast<int64_t>(i) * K;
      const T inv = buf.rowsum[i];
      for (int k = 0; k < K; ++k) row[k] = buf.logp[k * R + i] * inv;
    }
  }
}

// Chooses the instantiation for the number of features.
template <class T>
void estep_block(const skseg::gmm::KernelModel<T>& model, const T* x,
                 const T* w, int n, const skseg::gmm::BlockBuffers<T>& buf,
                 double* stats, double* loglik_weight) {
  switch (model.n_features) {
#define SKSEG_CASE(d) \
  case d:             \
    return estep_block_impl<T, d>(model, x, w, n, buf, stats, loglik_weight);
    SKSEG_CASE(1)
    SKSEG_CASE(2)
    SKSEG_CASE(3)
    SKSEG_CASE(4)
    SKSEG_CASE(5)
    SKSEG_CASE(6)
    SKSEG_CASE(7)
    SKSEG_CASE(8)
#undef SKSEG_CASE
    default:
      return estep_block_impl<T, 0>(model, x, w, n, buf, stats, loglik_weight);
  }
}

template <class T>
void eval_block(const skseg::gmm::KernelModel<T>& model, const T* x, int n,
                const skseg::gmm::BlockBuffers<T>& buf, T* resp, T* log_norm,
                int64_t* label) {
  switch (model.n_features) {
#define SKSEG_CASE(d) \
  case d:             \
    return eval_block_impl<T, d>(model, x, n, buf, resp, log_norm, label);
    SKSEG_CASE(1)
    SKSEG_CASE(2)
    SKSEG_CASE(3)
    SKSEG_CASE(4)
    SKSEG_CASE(5)
    SKSEG_CASE(6)
    SKSEG_CASE(7)
    SKSEG_CASE(8)
#undef SKSEG_CASE
    default:
      return eval_block_impl<T, 0>(model, x, n, buf, resp, log_norm, label);
  }
}

inline skseg::gmm::KernelTable make_kernel_table() {
  skseg::gmm::KernelTable table;
  table.estep_f32 = &estep_block<float>;
  table.estep_f64 = &estep_block<double>;
  table.eval_f32 = &eval_block<float>;
  table.eval_f64 = &eval_block<double>;
  return table;
}
