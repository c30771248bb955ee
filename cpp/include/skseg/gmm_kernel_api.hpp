// The interface between the EM driver and its SIMD kernels.
//
// The kernels are compiled several times, once per instruction-set level, in
// their own translation units (cpp/src/gmm_kernels_*.cpp). This header holds
// only plain structs and function-pointer types: no inline functions, so no
// code compiled for a wide ISA can leak into the baseline path through the
// linker's merging of identical inline definitions.
#pragma once

#include <cstdint>

namespace skseg {
namespace gmm {

enum class CovType : int { kFull = 0, kTied = 1, kDiag = 2, kSpherical = 3 };

// Rows handed to one kernel call. Chunks of the data are whole multiples of it,
// so the summation order never depends on the number of threads.
constexpr int kBlockRows = 256;

// Model parameters in the data's precision, as the kernels read them.
template <class T>
struct KernelModel {
  int n_components;
  int n_features;
  CovType cov_type;
  // (K, D) means, also the centre of each component's statistics.
  const T* means;
  // Cholesky factor of the precisions, upper triangular like scikit-learn's:
  // full (K, D, D), tied (D, D), diag (K, D), spherical (K,).
  const T* prec_chol;
  // (K,) log weight + log det(prec_chol) - D/2 log(2 pi).
  const T* log_const;
};

// Scratch memory of one thread, 32-byte aligned, owned by the caller.
template <class T>
struct BlockBuffers {
  T* x;            // (D, kBlockRows) feature-major copy of the block
  T* w;            // (kBlockRows,) sample weights, 0 for padding
  T* logp;         // (K, kBlockRows) log-densities, then exp(logp - max)
  T* rowmax;       // (kBlockRows,)
  T* rowsum;       // (kBlockRows,)
  int32_t* label;  // (kBlockRows,)
};

// E-step of n_rows <= kBlockRows rows (x row-major, w may be null for unit
// weights). Adds to stats (K x S doubles, see stats_per_component) the
// weighted responsibilities r, r*(x - mean) and the second moments of
// (x - mean), and adds sum w*log p(x) and sum w to loglik_weight[0..1].
template <class T>
using EStepBlockFn = void (*)(const KernelModel<T>& model, const T* x,
                              const T* w, int n_rows,
                              const BlockBuffers<T>& buf, double* stats,
                              double* loglik_weight);

// Evaluates n_rows rows: any of resp (n_rows, K), log_norm (n_rows,) and
// label (n_rows,) may be null.
template <class T>
using EvalBlockFn = void (*)(const KernelModel<T>& model, const T* x,
                             int n_rows, const BlockBuffers<T>& buf, T* resp,
                             T* log_norm, int64_t* label);

struct KernelTable {
  EStepBlockFn<float> estep_f32;
  EStepBlockFn<double> estep_f64;
  EvalBlockFn<float> eval_f32;
  EvalBlockFn<double> eval_f64;
};

// One table per compiled SIMD level (defined in cpp/src/gmm_kernels_*.cpp).
KernelTable kernel_table_baseline();
#ifdef SKSEG_HAVE_AVX2
KernelTable kernel_table_avx2();
#endif

}  // namespace gmm
}  // namespace skseg
