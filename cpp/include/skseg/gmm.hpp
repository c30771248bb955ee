// Expectation-maximisation for Gaussian mixtures, with scikit-learn's
// estimators (sklearn/mixture/_gaussian_mixture.py): reg_covar on the
// diagonal, Cholesky factors of the precisions, the mean log-likelihood as
// the lower bound and the same convergence test.
//
// The data are streamed in a fixed partition of chunks (whole kernel blocks,
// at most kMaxChunks of them). Each chunk's sufficient statistics are summed
// in double into its own slot and the slots are added in chunk order, so the
// result is bit-identical for any thread count. Memory beyond the input is
// O(threads x K x block + kMaxChunks x K x D^2), whatever the number of
// samples: no N x K array is ever made during a fit.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef SKSEG_HAVE_OPENMP
#include <omp.h>
#endif

#include "skseg/threads.hpp"
#include "skseg/gmm_kernel_api.hpp"
#include "skseg/simd.hpp"

namespace skseg {
namespace gmm {

inline bool is_matrix(CovType t) {
  return t == CovType::kFull || t == CovType::kTied;
}

// Doubles of statistics per component: sum r, sum r d, and the upper
// triangle (full, tied) or diagonal (diag, spherical) of sum r d d^T.
inline int stats_width(CovType t, int d) {
  return 1 + d + (is_matrix(t) ? d * (d + 1) / 2 : d);
}

// Number of values in covariances or prec_chol for a covariance type.
inline std::size_t param_size(CovType t, int k, int d) {
  switch (t) {
    case CovType::kFull:
      return static_cast<std::size_t>(k) * d * d;
    case CovType::kTied:
      return static_cast<std::size_t>(d) * d;
    case CovType::kDiag:
      return static_cast<std::size_t>(k) * d;
    default:
      return static_cast<std::size_t>(k);
  }
}

inline CovType parse_cov_type(const std::string& name) {
  if (name == "full") return CovType::kFull;
  if (name == "tied") return CovType::kTied;
  if (name == "diag") return CovType::kDiag;
  if (name == "spherical") return CovType::kSpherical;
  throw std::invalid_argument("covariance_type must be 'full', 'tied', "
                              "'diag' or 'spherical', got '" + name + "'");
}

// Mixture parameters, always in double; shapes as in scikit-learn.
struct Params {
  int n_components = 0;
  int n_features = 0;
  CovType cov_type = CovType::kFull;
  std::vector<double> weights;      // (K,)
  std::vector<double> means;        // (K, D)
  std::vector<double> covariances;  // like prec_chol; may be empty
  std::vector<double> prec_chol;    // full (K,D,D) tied (D,D) diag (K,D) sph (K,)
};

// Sufficient statistics around per-component centres.
struct Stats {
  int n_components = 0;
  int n_features = 0;
  CovType cov_type = CovType::kFull;
  std::vector<double> sums;     // (K, stats_width)
  std::vector<double> centres;  // (K, D)
  double loglik = 0.0;          // sum w log p(x)
  double weight = 0.0;          // sum w
};

template <class T>
struct DataView {
  const T* x = nullptr;  // (n_rows, n_features), C order
  const T* w = nullptr;  // (n_rows,) or null for unit weights
  int64_t n_rows = 0;
  int n_features = 0;
};

struct FitResult {
  Params params;
  std::vector<double> lower_bounds;
  std::vector<double> seconds;  // wall time of each iteration
  bool converged = false;
  int n_iter = 0;
};

// ---------------------------------------------------------------------------
// Validation of what the core is given (the bindings check types and shapes,
// this checks sizes and values).

// The kernels index with int: every array of the model, the statistics and a
// block of rows must stay below 2^31 elements.
inline void check_sizes(int64_t K, int64_t D, CovType type) {
  if (K < 1) throw std::invalid_argument("n_components must be >= 1");
  if (D < 1) throw std::invalid_argument("n_features must be >= 1");
  const int64_t limit = std::numeric_limits<int>::max();
  const int64_t per_component = is_matrix(type) ? D * D : D;
  const int64_t width = 1 + D + (is_matrix(type) ? D * (D + 1) / 2 : D);
  if (D > limit / kBlockRows || K > limit / kBlockRows ||
      per_component > limit / K || width > limit / K)
    throw std::invalid_argument(
        "the model is too large for the core: n_components=" + std::to_string(K) +
        ", n_features=" + std::to_string(D));
}

template <class T>
void check_data(const DataView<T>& data, int n_threads) {
  if (data.n_rows < 1)
    throw std::invalid_argument("X must contain at least one sample");
  if (data.n_features < 1)
    throw std::invalid_argument("X must contain at least one feature");
  if (!data.x) throw std::invalid_argument("X is missing");
  const int64_t n = data.n_rows * data.n_features;
  int bad_x = 0;
  // One thread per 2^16 values at most: starting threads costs more than
  // checking fewer values.
  const int nt = resolve_threads(n_threads, (n >> 16) + 1);
  (void)nt;
#pragma omp parallel for num_threads(nt) reduction(| : bad_x) schedule(static)
  for (int64_t i = 0; i < n; ++i) bad_x |= !std::isfinite(data.x[i]);
  if (bad_x) throw std::invalid_argument("X contains NaN or infinity");
  if (data.w) {
    int bad_w = 0;
    double total = 0.0;
    for (int64_t i = 0; i < data.n_rows; ++i) {
      const double wi = data.w[i];
      bad_w |= !(std::isfinite(wi) && wi >= 0.0);
      total += wi;
    }
    if (bad_w)
      throw std::invalid_argument(
          "sample_weight must be finite and non-negative");
    if (!(total > 0.0))
      throw std::invalid_argument("sample_weight must not sum to zero");
    if (!std::isfinite(total))
      throw std::invalid_argument(
          "sample_weight sums to infinity; divide the weights by a constant");
  }
}

inline void check_params(const Params& p) {
  const int K = p.n_components;
  const int D = p.n_features;
  check_sizes(K, D, p.cov_type);
  if (p.weights.size() != static_cast<std::size_t>(K) ||
      p.means.size() != static_cast<std::size_t>(K) * D ||
      p.prec_chol.size() != param_size(p.cov_type, K, D))
    throw std::invalid_argument(
        "mixture parameters do not match n_components, n_features and "
        "covariance_type");
  bool any_weight = false;
  for (double w : p.weights) {
    if (!(std::isfinite(w) && w >= 0.0))
      throw std::invalid_argument("weights must be finite and >= 0");
    any_weight |= w > 0.0;
  }
  if (!any_weight) throw std::invalid_argument("weights are all zero");
  for (double m : p.means)
    if (!std::isfinite(m)) throw std::invalid_argument("means must be finite");
  for (double v : p.prec_chol)
    if (!std::isfinite(v))
      throw std::invalid_argument("precisions_cholesky must be finite");
  // The log-determinant needs a positive diagonal.
  const int n_mat = p.cov_type == CovType::kFull   ? K
                    : p.cov_type == CovType::kTied ? 1
                                                   : 0;
  for (int m = 0; m < n_mat; ++m)
    for (int a = 0; a < D; ++a)
      if (!(p.prec_chol[static_cast<std::size_t>(m) * D * D + a * D + a] > 0))
        throw std::invalid_argument(
            "precisions_cholesky must have a positive diagonal");
  if (!is_matrix(p.cov_type))
    for (double v : p.prec_chol)
      if (!(v > 0))
        throw std::invalid_argument("precisions_cholesky must be positive");
}

// ---------------------------------------------------------------------------
// Small dense linear algebra in double.

// The message for statistics or covariances that overflowed.
template <class T>
std::string overflow_message() {
  return std::string(
             "the mixture's statistics overflow: X has values too large for ") +
         (sizeof(T) == 4 ? "float32" : "float64") +
         " arithmetic (the covariances are not finite). Rescale X" +
         (sizeof(T) == 4 ? ", or pass float64 data." : ".");
}

// Statistics must match their sizes and be finite, with masses >= 0.
template <class T>
void check_stats(const Stats& stats) {
  const int K = stats.n_components;
  const int D = stats.n_features;
  check_sizes(K, D, stats.cov_type);
  const int S = stats_width(stats.cov_type, D);
  if (stats.sums.size() != static_cast<std::size_t>(K) * S ||
      stats.centres.size() != static_cast<std::size_t>(K) * D)
    throw std::invalid_argument(
        "statistics do not match n_components, n_features and covariance_type");
  for (double c : stats.centres)
    if (!std::isfinite(c)) throw std::invalid_argument("centres must be finite");
  for (double v : stats.sums)
    if (!std::isfinite(v)) throw std::invalid_argument(overflow_message<T>());
  for (int k = 0; k < K; ++k)
    if (stats.sums[static_cast<std::size_t>(k) * S] < 0.0)
      throw std::invalid_argument("statistics must have masses >= 0");
}

// The scikit-learn message for a covariance without a Cholesky factor.
template <class T>
std::string ill_defined_message() {
  std::string msg =
      "Fitting the mixture model failed because some components have "
      "ill-defined empirical covariance (for instance caused by singleton "
      "or collapsed samples). Try to decrease the number of components, "
      "increase reg_covar, or scale the input data.";
  if (sizeof(T) == 4)
    msg +=
        " The numerical accuracy can also be improved by passing float64 "
        "data instead of float32.";
  return msg;
}

// prec_chol = inverse(cholesky(cov))^T (upper triangular), as scikit-learn's
// _compute_precision_cholesky. Returns false when cov is not positive
// definite.
inline bool precision_cholesky(const double* cov, int D, double* out) {
  std::vector<double> L(static_cast<std::size_t>(D) * D, 0.0);
  for (int j = 0; j < D; ++j) {
    double s = cov[j * D + j];
    for (int k = 0; k < j; ++k) s -= L[j * D + k] * L[j * D + k];
    if (!(s > 0.0) || !std::isfinite(s)) return false;
    const double ljj = std::sqrt(s);
    L[j * D + j] = ljj;
    for (int i = j + 1; i < D; ++i) {
      double t = cov[i * D + j];
      for (int k = 0; k < j; ++k) t -= L[i * D + k] * L[j * D + k];
      L[i * D + j] = t / ljj;
    }
  }
  // Forward substitution for the columns of L^-1 (lower), stored transposed.
  std::fill(out, out + static_cast<std::size_t>(D) * D, 0.0);
  for (int c = 0; c < D; ++c) {
    for (int i = c; i < D; ++i) {
      double s = (i == c) ? 1.0 : 0.0;
      for (int k = c; k < i; ++k) s -= L[i * D + k] * out[c * D + k];
      out[c * D + i] = s / L[i * D + i];  // out[c][i] = Linv[i][c]
    }
  }
  return true;
}

// log weight + log det(prec_chol) - D/2 log(2 pi), per component.
inline std::vector<double> log_constants(const Params& p) {
  const int K = p.n_components;
  const int D = p.n_features;
  std::vector<double> out(K);
  const double half_log_2pi = 0.5 * std::log(2.0 * M_PI);
  for (int k = 0; k < K; ++k) {
    double log_det = 0.0;
    switch (p.cov_type) {
      case CovType::kFull:
        for (int a = 0; a < D; ++a)
          log_det += std::log(p.prec_chol[(static_cast<std::size_t>(k) * D + a) * D + a]);
        break;
      case CovType::kTied:
        for (int a = 0; a < D; ++a) log_det += std::log(p.prec_chol[a * D + a]);
        break;
      case CovType::kDiag:
        for (int a = 0; a < D; ++a)
          log_det += std::log(p.prec_chol[static_cast<std::size_t>(k) * D + a]);
        break;
      case CovType::kSpherical:
        log_det = D * std::log(p.prec_chol[k]);
        break;
    }
    out[k] = std::log(p.weights[k]) + log_det - D * half_log_2pi;
  }
  return out;
}

// ---------------------------------------------------------------------------
// M-step from sufficient statistics.

// New parameters from statistics taken around `stats.centres`. nk (optional
// output) receives sum r + 10 eps per component, the un-normalised weights
// scikit-learn computes. T is the data type: it sets eps and the message.
template <class T>
Params m_step(const Stats& stats, double reg_covar,
              std::vector<double>* nk_out = nullptr) {
  check_stats<T>(stats);
  const int K = stats.n_components;
  const int D = stats.n_features;
  const CovType type = stats.cov_type;
  const int S = stats_width(type, D);
  const double eps10 = 10.0 * std::numeric_limits<T>::epsilon();
  Params p;
  p.n_components = K;
  p.n_features = D;
  p.cov_type = type;
  p.weights.assign(K, 0.0);
  p.means.assign(static_cast<std::size_t>(K) * D, 0.0);
  p.covariances.assign(param_size(type, K, D), 0.0);
  p.prec_chol.assign(param_size(type, K, D), 0.0);
  std::vector<double> delta(D);
  std::vector<double> scatter(static_cast<std::size_t>(D) * D);
  double nk_total = 0.0;
  for (int k = 0; k < K; ++k) {
    const double* st = stats.sums.data() + static_cast<std::size_t>(k) * S;
    const double* c = stats.centres.data() + static_cast<std::size_t>(k) * D;
    const double n = st[0];
    const double nk = n + eps10;
    nk_total += nk;
    p.weights[k] = nk;
    const double* A = st + 1;
    const double* B = st + 1 + D;
    // mean = sum r x / nk = c + (sum r d - eps10 c) / nk.
    for (int a = 0; a < D; ++a) {
      delta[a] = (A[a] - eps10 * c[a]) / nk;
      p.means[static_cast<std::size_t>(k) * D + a] = c[a] + delta[a];
    }
    // sum r (x - mean)(x - mean)^T with x - mean = d - delta.
    if (is_matrix(type)) {
      for (int a = 0, idx = 0; a < D; ++a)
        for (int b = a; b < D; ++b, ++idx) {
          const double v = B[idx] - A[a] * delta[b] - delta[a] * A[b] +
                           n * delta[a] * delta[b];
          scatter[a * D + b] = v;
          scatter[b * D + a] = v;
        }
      if (type == CovType::kFull) {
        double* cov = p.covariances.data() + static_cast<std::size_t>(k) * D * D;
        for (int i = 0; i < D * D; ++i) cov[i] = scatter[i] / nk;
        for (int a = 0; a < D; ++a) cov[a * D + a] += reg_covar;
      } else {
        for (int i = 0; i < D * D; ++i) p.covariances[i] += scatter[i];
      }
    } else {
      double* var = type == CovType::kDiag
                        ? p.covariances.data() + static_cast<std::size_t>(k) * D
                        : nullptr;
      double mean_var = 0.0;
      for (int a = 0; a < D; ++a) {
        const double v =
            (B[a] - 2.0 * A[a] * delta[a] + n * delta[a] * delta[a]) / nk +
            reg_covar;
        if (var) var[a] = v;
        mean_var += v;
      }
      if (!var) p.covariances[k] = mean_var / D;
    }
  }
  if (type == CovType::kTied) {
    for (int i = 0; i < D * D; ++i) p.covariances[i] /= nk_total;
    for (int a = 0; a < D; ++a) p.covariances[a * D + a] += reg_covar;
  }
  for (double v : p.covariances)
    if (!std::isfinite(v)) throw std::invalid_argument(overflow_message<T>());
  if (nk_out) *nk_out = p.weights;
  for (int k = 0; k < K; ++k) p.weights[k] /= nk_total;

  switch (type) {
    case CovType::kFull:
      for (int k = 0; k < K; ++k)
        if (!precision_cholesky(p.covariances.data() + static_cast<std::size_t>(k) * D * D,
                                D, p.prec_chol.data() + static_cast<std::size_t>(k) * D * D))
          throw std::invalid_argument(ill_defined_message<T>());
      break;
    case CovType::kTied:
      if (!precision_cholesky(p.covariances.data(), D, p.prec_chol.data()))
        throw std::invalid_argument(ill_defined_message<T>());
      break;
    default:
      for (std::size_t i = 0; i < p.covariances.size(); ++i) {
        if (!(p.covariances[i] > 0.0))
          throw std::invalid_argument(ill_defined_message<T>());
        p.prec_chol[i] = 1.0 / std::sqrt(p.covariances[i]);
      }
  }
  return p;
}

// The means alone (sum r x / (sum r + 10 eps), as m_step computes them).
template <class T>
std::vector<double> stats_means(const Stats& stats) {
  const int K = stats.n_components;
  const int D = stats.n_features;
  const int S = stats_width(stats.cov_type, D);
  const double eps10 = 10.0 * std::numeric_limits<T>::epsilon();
  std::vector<double> means(static_cast<std::size_t>(K) * D);
  for (int k = 0; k < K; ++k) {
    const double* st = stats.sums.data() + static_cast<std::size_t>(k) * S;
    const double* c = stats.centres.data() + static_cast<std::size_t>(k) * D;
    for (int a = 0; a < D; ++a)
      means[static_cast<std::size_t>(k) * D + a] =
          c[a] + (st[1 + a] - eps10 * c[a]) / (st[0] + eps10);
  }
  return means;
}

// ---------------------------------------------------------------------------
// Parallel streaming machinery.

// 32-byte aligned scratch memory of one thread.
template <class T>
class BlockScratch {
 public:
  BlockScratch(int n_components, int n_features) {
    const std::size_t R = kBlockRows;
    const std::size_t n_t = R * (n_features + n_components + 3);
    storage_.reset(new char[n_t * sizeof(T) + 2 * R * sizeof(int64_t) + 64]);
    char* p = storage_.get();
    p += (32 - reinterpret_cast<std::uintptr_t>(p) % 32) % 32;
    T* t = reinterpret_cast<T*>(p);
    buf_.x = t;
    buf_.w = t + R * n_features;
    buf_.logp = buf_.w + R;
    buf_.rowmax = buf_.logp + R * n_components;
    buf_.rowsum = buf_.rowmax + R;
    buf_.label = reinterpret_cast<int32_t*>(buf_.rowsum + R);
  }
  const BlockBuffers<T>& buffers() const { return buf_; }

 private:
  std::unique_ptr<char[]> storage_;
  BlockBuffers<T> buf_;
};

// The fixed partition of n_rows rows into chunks: at most kMaxChunks chunks
// of a whole number of kernel blocks (at least kMinChunkBlocks). It depends
// on n_rows only, never on the number of threads.
constexpr int64_t kMaxChunks = 128;
constexpr int64_t kMinChunkBlocks = 16;

inline int64_t chunk_rows_for(int64_t n_rows) {
  const int64_t blocks = (n_rows + kBlockRows - 1) / kBlockRows;
  const int64_t per_chunk =
      std::max(kMinChunkBlocks, (blocks + kMaxChunks - 1) / kMaxChunks);
  return per_chunk * kBlockRows;
}

// Runs chunk_fn(worker, begin, end, acc) over the pieces that the chunks of
// `chunk_rows` rows cut from n_rows rows whose first row is row `row_offset`
// of a larger array (0 for a whole array), on n_threads threads. Each piece
// gets its own zeroed slot of acc_size doubles; returns the slots, one per
// piece in row order. A piece that is a whole chunk is summed exactly as in
// a fit over the whole array, so the slots of the parts of a distributed
// array, added in order, give the same bits. make_worker() builds per-thread
// state (scratch buffers). Exceptions from workers are rethrown on the
// calling thread.
template <class MakeWorker, class ChunkFn>
std::vector<double> chunk_slots(int64_t n_rows, int64_t row_offset,
                                int64_t chunk_rows, int n_threads,
                                std::size_t acc_size, MakeWorker make_worker,
                                ChunkFn chunk_fn) {
  const int64_t first_chunk = row_offset / chunk_rows;
  const int64_t n_pieces = (row_offset + n_rows - 1) / chunk_rows - first_chunk + 1;
  const int nt = resolve_threads(n_threads, n_pieces);
  std::vector<double> slots(static_cast<std::size_t>(n_pieces) * acc_size, 0.0);
  std::exception_ptr error;
  bool failed = false;
  (void)nt;
#pragma omp parallel num_threads(nt)
  {
    decltype(make_worker()) worker{};
    try {
      worker = make_worker();
    } catch (...) {
#pragma omp critical(skseg_gmm_error)
      {
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < n_pieces; ++c) {
      if (!worker) continue;
      const int64_t begin = std::max<int64_t>(0, (first_chunk + c) * chunk_rows - row_offset);
      const int64_t end = std::min(n_rows, (first_chunk + c + 1) * chunk_rows - row_offset);
      chunk_fn(*worker, begin, end, slots.data() + c * acc_size);
    }
  }
  if (failed) std::rethrow_exception(error);
  return slots;
}

// Runs chunk_fn over the fixed chunks of n_rows rows (chunk_slots) and adds
// the slots into `total` in chunk order, so the sums are bit-identical for
// any number of threads. Threads never wait for each other until the end (no
// `ordered` hand-off per chunk, which stalls badly on a busy machine); the
// slots cost kMaxChunks x acc_size doubles at most.
template <class MakeWorker, class ChunkFn>
void reduce_chunks_in_order(int64_t n_rows, int n_threads, std::size_t acc_size,
                            double* total, MakeWorker make_worker,
                            ChunkFn chunk_fn) {
  const std::vector<double> slots =
      chunk_slots(n_rows, 0, chunk_rows_for(n_rows), n_threads, acc_size,
                  make_worker, chunk_fn);
  for (std::size_t c = 0; c < slots.size() / acc_size; ++c) {
    const double* slot = slots.data() + c * acc_size;
    for (std::size_t i = 0; i < acc_size; ++i) total[i] += slot[i];
  }
}

// The parameters in the data's precision, as the kernels read them.
template <class T>
struct KernelParams {
  std::vector<T> means, prec_chol, log_const;
  KernelModel<T> view;

  explicit KernelParams(const Params& p) {
    means.assign(p.means.begin(), p.means.end());
    prec_chol.assign(p.prec_chol.begin(), p.prec_chol.end());
    const std::vector<double> lc = log_constants(p);
    log_const.assign(lc.begin(), lc.end());
    view.n_components = p.n_components;
    view.n_features = p.n_features;
    view.cov_type = p.cov_type;
    view.means = means.data();
    view.prec_chol = prec_chol.data();
    view.log_const = log_const.data();
  }
};

template <class T>
EStepBlockFn<T> estep_kernel(const KernelTable& table);
template <>
inline EStepBlockFn<float> estep_kernel<float>(const KernelTable& t) {
  return t.estep_f32;
}
template <>
inline EStepBlockFn<double> estep_kernel<double>(const KernelTable& t) {
  return t.estep_f64;
}
template <class T>
EvalBlockFn<T> eval_kernel(const KernelTable& table);
template <>
inline EvalBlockFn<float> eval_kernel<float>(const KernelTable& t) {
  return t.eval_f32;
}
template <>
inline EvalBlockFn<double> eval_kernel<double>(const KernelTable& t) {
  return t.eval_f64;
}

// ---------------------------------------------------------------------------
// E-step, fit and evaluation.

// E-step statistics of the pieces that chunks of `chunk_rows` rows cut from
// `data`, whose first row is row `row_offset` of the whole data (see
// chunk_slots). Each slot holds the (K, stats_width) sums around the means
// rounded to T (as the kernel uses them), then sum w log p(x) and sum w.
template <class T>
std::vector<double> e_step_slots(const DataView<T>& data, const Params& params,
                                 int64_t row_offset, int64_t chunk_rows,
                                 int n_threads, SimdLevel level) {
  const int K = params.n_components;
  const int D = params.n_features;
  const int S = stats_width(params.cov_type, D);
  const KernelParams<T> kp(params);
  const EStepBlockFn<T> kernel = estep_kernel<T>(kernel_table(level));
  return chunk_slots(
      data.n_rows, row_offset, chunk_rows, n_threads,
      static_cast<std::size_t>(K) * S + 2,
      [&]() { return std::make_unique<BlockScratch<T>>(K, D); },
      [&](BlockScratch<T>& scratch, int64_t begin, int64_t end, double* acc) {
        for (int64_t b = begin; b < end; b += kBlockRows) {
          const int n = static_cast<int>(std::min<int64_t>(kBlockRows, end - b));
          kernel(kp.view, data.x + b * D, data.w ? data.w + b : nullptr, n,
                 scratch.buffers(), acc, acc + static_cast<std::size_t>(K) * S);
        }
      });
}

// One E-step: statistics around the current means (rounded to T, as the
// kernel uses them) and the weighted log-likelihood, summed over the fixed
// chunks in order.
template <class T>
Stats e_step(const DataView<T>& data, const Params& params, int n_threads,
             SimdLevel level) {
  const int K = params.n_components;
  const int S = stats_width(params.cov_type, params.n_features);
  const std::size_t acc_size = static_cast<std::size_t>(K) * S + 2;
  const std::vector<double> slots = e_step_slots(
      data, params, 0, chunk_rows_for(data.n_rows), n_threads, level);
  std::vector<double> total(acc_size, 0.0);
  for (std::size_t c = 0; c < slots.size() / acc_size; ++c)
    for (std::size_t i = 0; i < acc_size; ++i) total[i] += slots[c * acc_size + i];
  Stats st;
  st.n_components = K;
  st.n_features = params.n_features;
  st.cov_type = params.cov_type;
  for (double m : params.means) st.centres.push_back(static_cast<T>(m));
  st.sums.assign(total.begin(), total.end() - 2);
  st.loglik = total[acc_size - 2];
  st.weight = total[acc_size - 1];
  return st;
}

// EM iterations from `init` until the change of the lower bound is below tol
// or max_iter iterations, as scikit-learn's BaseMixture.fit_predict does for
// one initialisation. prev_lower_bound is -inf for a fresh start, or the last
// lower bound when continuing (warm start).
template <class T>
FitResult fit_em(const DataView<T>& data, const Params& init, double tol,
                 int max_iter, double reg_covar, double prev_lower_bound,
                 int n_threads, SimdLevel level) {
  check_data(data, n_threads);
  check_params(init);
  if (init.n_features != data.n_features)
    throw std::invalid_argument("X has a different number of features than the model");
  if (max_iter < 0) throw std::invalid_argument("max_iter must be >= 0");
  if (!(tol >= 0.0)) throw std::invalid_argument("tol must be >= 0");
  if (!(reg_covar >= 0.0)) throw std::invalid_argument("reg_covar must be >= 0");
  FitResult result;
  result.params = init;
  double lower_bound = prev_lower_bound;
  for (int it = 1; it <= max_iter; ++it) {
    const auto t0 = std::chrono::steady_clock::now();
    const double prev = lower_bound;
    const Stats st = e_step(data, result.params, n_threads, level);
    lower_bound = st.loglik / st.weight;
    // Finite data and weights can still overflow the weighted sum of the
    // log-densities (weights near the double limit, far-away points).
    if (!std::isfinite(lower_bound))
      throw std::invalid_argument(
          "the log-likelihood of X overflows: X or sample_weight has values too "
          "large for float64 arithmetic. Rescale X, or divide sample_weight by a "
          "constant.");
    result.params = m_step<T>(st, reg_covar);
    result.n_iter = it;
    result.lower_bounds.push_back(lower_bound);
    result.seconds.push_back(std::chrono::duration<double>(
                                 std::chrono::steady_clock::now() - t0)
                                 .count());
    if (std::fabs(lower_bound - prev) < tol) {
      result.converged = true;
      break;
    }
  }
  return result;
}

// Per-row outputs for given parameters: resp (n, K) responsibilities,
// log_norm (n,) log p(x), label (n,) most probable component; any may be null.
template <class T>
void evaluate(const DataView<T>& data, const Params& params, int n_threads,
              SimdLevel level, T* resp, T* log_norm, int64_t* label) {
  check_data(data, n_threads);
  check_params(params);
  if (params.n_features != data.n_features)
    throw std::invalid_argument("X has a different number of features than the model");
  const int K = params.n_components;
  const int D = params.n_features;
  const KernelParams<T> kp(params);
  const EvalBlockFn<T> kernel = eval_kernel<T>(kernel_table(level));
  const int64_t n_blocks = (data.n_rows + kBlockRows - 1) / kBlockRows;
  const int nt = resolve_threads(n_threads, n_blocks / 4 + 1);
  std::exception_ptr error;
  bool failed = false;
  (void)nt;
#pragma omp parallel num_threads(nt)
  {
    std::unique_ptr<BlockScratch<T>> scratch;
    try {
      scratch = std::make_unique<BlockScratch<T>>(K, D);
    } catch (...) {
#pragma omp critical(skseg_gmm_error)
      {
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
#pragma omp for schedule(dynamic, 8)
    for (int64_t b = 0; b < n_blocks; ++b) {
      if (!scratch) continue;
      const int64_t r0 = b * kBlockRows;
      const int n = static_cast<int>(std::min<int64_t>(kBlockRows, data.n_rows - r0));
      kernel(kp.view, data.x + r0 * D, n, scratch->buffers(),
             resp ? resp + r0 * K : nullptr, log_norm ? log_norm + r0 : nullptr,
             label ? label + r0 : nullptr);
    }
  }
  if (failed) std::rethrow_exception(error);
}

// Statistics of a hard assignment (label -1: no component) around `centres`;
// plain double arithmetic, used to initialise from k-means labels or chosen
// points.
template <class T, class Label>
Stats label_stats(const DataView<T>& data, const Label* label, int K,
                  CovType type, const std::vector<double>& centres,
                  int n_threads) {
  const int D = data.n_features;
  const int S = stats_width(type, D);
  Stats st;
  st.n_components = K;
  st.n_features = D;
  st.cov_type = type;
  st.centres = centres;
  const std::size_t acc_size = static_cast<std::size_t>(K) * S;
  st.sums.assign(acc_size, 0.0);
  const bool matrix = is_matrix(type);
  reduce_chunks_in_order(
      data.n_rows, n_threads, acc_size, st.sums.data(),
      [&]() { return std::make_unique<std::vector<double>>(D); },
      [&](std::vector<double>& d, int64_t begin, int64_t end, double* acc) {
        for (int64_t i = begin; i < end; ++i) {
          const int64_t k = label[i];
          if (k < 0) continue;
          const double wi = data.w ? static_cast<double>(data.w[i]) : 1.0;
          double* s = acc + k * S;
          const T* row = data.x + i * D;
          for (int a = 0; a < D; ++a) d[a] = static_cast<double>(row[a]) - centres[k * D + a];
          s[0] += wi;
          for (int a = 0, idx = 1 + D; a < D; ++a) {
            const double wd = wi * d[a];
            s[1 + a] += wd;
            if (matrix)
              for (int b = a; b < D; ++b) s[idx++] += wd * d[b];
            else
              s[idx++] += wd * d[a];
          }
        }
      });
  return st;
}

// Adds to `st` the statistics of dense responsibilities resp (n, K) for the
// rows of `data` (used for scikit-learn's 'random' initialisation, fed in
// chunks so no N x K array need exist).
template <class T>
void add_resp_stats(const DataView<T>& data, const double* resp, Stats& st,
                    int n_threads) {
  const int K = st.n_components;
  const int D = data.n_features;
  const int S = stats_width(st.cov_type, D);
  const bool matrix = is_matrix(st.cov_type);
  const std::vector<double>& centres = st.centres;
  reduce_chunks_in_order(
      data.n_rows, n_threads, st.sums.size(), st.sums.data(),
      [&]() { return std::make_unique<std::vector<double>>(D); },
      [&](std::vector<double>& d, int64_t begin, int64_t end, double* acc) {
        for (int64_t i = begin; i < end; ++i) {
          const double wi = data.w ? static_cast<double>(data.w[i]) : 1.0;
          const T* row = data.x + i * D;
          for (int k = 0; k < K; ++k) {
            const double r = wi * resp[i * K + k];
            double* s = acc + static_cast<std::size_t>(k) * S;
            for (int a = 0; a < D; ++a) d[a] = static_cast<double>(row[a]) - centres[k * D + a];
            s[0] += r;
            for (int a = 0, idx = 1 + D; a < D; ++a) {
              const double rd = r * d[a];
              s[1 + a] += rd;
              if (matrix)
                for (int b = a; b < D; ++b) s[idx++] += rd * d[b];
              else
                s[idx++] += rd * d[a];
            }
          }
        }
      });
}

}  // namespace gmm
}  // namespace skseg
