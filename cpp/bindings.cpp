// The only file that knows about Python: it converts arguments, releases the
// GIL around long work and forwards to the plain C++ in cpp/include/skseg.
// It checks what numpy hands over (types, shapes, contiguity); the C++ core
// checks values (sizes, finiteness, weights). Nothing here is global or
// mutable, so calls from several Python threads may run at once.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "skseg/build_info.hpp"
#include "skseg/fork_safety.hpp"
#include "skseg/color_count.hpp"
#include "skseg/gmm.hpp"
#include "skseg/kmeans.hpp"
#include "skseg/simd.hpp"

namespace py = pybind11;
using skseg::gmm::CovType;
using skseg::gmm::DataView;
using skseg::gmm::Params;

namespace {

using ParamArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

// Equivalence, not identity: a memmap or a view may carry its own dtype object.
bool is_float32(const py::array& a) { return a.dtype().equal(py::dtype::of<float>()); }
bool is_float64(const py::array& a) { return a.dtype().equal(py::dtype::of<double>()); }

// X must be a C-contiguous 2-D float32/float64 array (read-only is fine: it
// is only read).
py::array check_X(const py::object& obj) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("X must be a numpy.ndarray");
  py::array X = py::reinterpret_borrow<py::array>(obj);
  if (!is_float32(X) && !is_float64(X))
    throw py::type_error("X must have dtype float32 or float64, got " +
                         std::string(py::str(X.dtype())));
  if (X.ndim() != 2)
    throw py::value_error("X must be 2-D (n_samples, n_features), got " +
                          std::to_string(X.ndim()) + " dimensions");
  if (!(X.flags() & py::array::c_style))
    throw py::value_error("X must be C-contiguous");
  if (X.shape(1) > std::numeric_limits<int>::max() / 4)
    throw py::value_error("X has too many features");
  return X;
}

// sample_weight: None, or a C-contiguous 1-D array of X's dtype and length.
py::object check_weight(const py::object& obj, const py::array& X) {
  if (obj.is_none()) return obj;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("sample_weight must be a numpy.ndarray or None");
  py::array w = py::reinterpret_borrow<py::array>(obj);
  if (!w.dtype().equal(X.dtype()))
    throw py::type_error("sample_weight must have the dtype of X");
  if (w.ndim() != 1 || w.shape(0) != X.shape(0))
    throw py::value_error("sample_weight must have shape (n_samples,)");
  if (!(w.flags() & py::array::c_style))
    throw py::value_error("sample_weight must be C-contiguous");
  return w;
}

template <class T>
DataView<T> data_view(const py::array& X, const py::object& w) {
  DataView<T> v;
  v.x = static_cast<const T*>(X.data());
  v.w = w.is_none() ? nullptr : static_cast<const T*>(py::array(w).data());
  v.n_rows = X.shape(0);
  v.n_features = static_cast<int>(X.shape(1));
  return v;
}

std::vector<double> to_vector(const ParamArray& a) {
  return std::vector<double>(a.data(), a.data() + a.size());
}

Params make_params(const std::string& cov_type, const ParamArray& weights,
                   const ParamArray& means, const ParamArray& prec_chol) {
  if (weights.ndim() != 1) throw py::value_error("weights must be 1-D");
  if (means.ndim() != 2) throw py::value_error("means must be 2-D");
  Params p;
  p.cov_type = skseg::gmm::parse_cov_type(cov_type);
  skseg::gmm::check_sizes(means.shape(0), means.shape(1), p.cov_type);
  p.n_components = static_cast<int>(means.shape(0));
  p.n_features = static_cast<int>(means.shape(1));
  p.weights = to_vector(weights);
  p.means = to_vector(means);
  p.prec_chol = to_vector(prec_chol);
  skseg::gmm::check_params(p);
  return p;
}

std::vector<py::ssize_t> param_shape(CovType t, int K, int D) {
  switch (t) {
    case CovType::kFull:
      return {K, D, D};
    case CovType::kTied:
      return {D, D};
    case CovType::kDiag:
      return {K, D};
    default:
      return {K};
  }
}

py::array_t<double> to_array(const std::vector<double>& v,
                             std::vector<py::ssize_t> shape) {
  py::array_t<double> out(shape);
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

py::dict params_dict(const Params& p) {
  py::dict d;
  const int K = p.n_components;
  const int D = p.n_features;
  d["weights"] = to_array(p.weights, {K});
  d["means"] = to_array(p.means, {K, D});
  if (!p.covariances.empty())
    d["covariances"] = to_array(p.covariances, param_shape(p.cov_type, K, D));
  d["precisions_cholesky"] = to_array(p.prec_chol, param_shape(p.cov_type, K, D));
  return d;
}

template <class T>
py::dict fit_impl(const py::array& X, const py::object& w, const Params& init,
                  double tol, int max_iter, double reg_covar, double prev_lb,
                  int n_threads, skseg::SimdLevel level) {
  const DataView<T> data = data_view<T>(X, w);
  skseg::gmm::FitResult res;
  {
    py::gil_scoped_release release;
    res = skseg::gmm::fit_em<T>(data, init, tol, max_iter, reg_covar, prev_lb,
                                n_threads, level);
  }
  py::dict d = params_dict(res.params);
  d["lower_bounds"] = res.lower_bounds;
  d["seconds"] = res.seconds;
  d["converged"] = res.converged;
  d["n_iter"] = res.n_iter;
  return d;
}

py::dict gmm_fit(const py::object& X_obj, const py::object& w_obj,
                 const std::string& cov_type, const ParamArray& weights,
                 const ParamArray& means, const ParamArray& prec_chol,
                 double tol, int max_iter, double reg_covar, double prev_lb,
                 int n_threads, const std::string& simd) {
  py::array X = check_X(X_obj);
  py::object w = check_weight(w_obj, X);
  const Params init = make_params(cov_type, weights, means, prec_chol);
  const skseg::SimdLevel level = skseg::select_simd(simd);
  if (is_float32(X))
    return fit_impl<float>(X, w, init, tol, max_iter, reg_covar, prev_lb, n_threads, level);
  return fit_impl<double>(X, w, init, tol, max_iter, reg_covar, prev_lb, n_threads, level);
}

template <class T>
py::tuple evaluate_impl(const py::array& X, const Params& p, bool want_resp,
                        bool want_log_norm, bool want_labels, int n_threads,
                        skseg::SimdLevel level) {
  const DataView<T> data = data_view<T>(X, py::none());
  const py::ssize_t n = X.shape(0);
  py::object resp = py::none(), log_norm = py::none(), labels = py::none();
  T* resp_p = nullptr;
  T* log_norm_p = nullptr;
  int64_t* labels_p = nullptr;
  if (want_resp) {
    py::array_t<T> a({n, static_cast<py::ssize_t>(p.n_components)});
    resp_p = a.mutable_data();
    resp = a;
  }
  if (want_log_norm) {
    py::array_t<T> a(n);
    log_norm_p = a.mutable_data();
    log_norm = a;
  }
  if (want_labels) {
    py::array_t<int64_t> a(n);
    labels_p = a.mutable_data();
    labels = a;
  }
  {
    py::gil_scoped_release release;
    skseg::gmm::evaluate<T>(data, p, n_threads, level, resp_p, log_norm_p, labels_p);
  }
  return py::make_tuple(resp, log_norm, labels);
}

py::tuple gmm_evaluate(const py::object& X_obj, const std::string& cov_type,
                       const ParamArray& weights, const ParamArray& means,
                       const ParamArray& prec_chol, bool resp, bool log_norm,
                       bool labels, int n_threads, const std::string& simd) {
  py::array X = check_X(X_obj);
  const Params p = make_params(cov_type, weights, means, prec_chol);
  const skseg::SimdLevel level = skseg::select_simd(simd);
  if (is_float32(X))
    return evaluate_impl<float>(X, p, resp, log_norm, labels, n_threads, level);
  return evaluate_impl<double>(X, p, resp, log_norm, labels, n_threads, level);
}

py::dict with_nk(const Params& p, const std::vector<double>& nk) {
  py::dict d = params_dict(p);
  d["nk"] = to_array(nk, {p.n_components});
  return d;
}

template <class T, class Label>
py::dict from_labels_impl(const py::array& X, const py::object& w, const Label* labels,
                          int K, CovType type, double reg_covar, int n_threads) {
  const DataView<T> data = data_view<T>(X, w);
  const int D = data.n_features;
  Params p;
  std::vector<double> nk;
  {
    py::gil_scoped_release release;
    skseg::gmm::check_data(data, n_threads);
    for (int64_t i = 0; i < data.n_rows; ++i)
      if (labels[i] < -1 || labels[i] >= K)
        throw std::invalid_argument("labels must lie in [-1, n_components)");
    // Two passes: the means first, then the scatter around them, so the
    // covariances are computed in the centred (accurate) form.
    std::vector<double> zero(static_cast<std::size_t>(K) * D, 0.0);
    const skseg::gmm::Stats first =
        skseg::gmm::label_stats(data, labels, K, type, zero, n_threads);
    const skseg::gmm::Stats second = skseg::gmm::label_stats(
        data, labels, K, type, skseg::gmm::stats_means<T>(first), n_threads);
    p = skseg::gmm::m_step<T>(second, reg_covar, &nk);
  }
  return with_nk(p, nk);
}

template <class Label>
py::dict from_labels_of(const py::array& X, const py::object& w,
                        const py::array& labels, int n_components, CovType type,
                        double reg_covar, int n_threads) {
  const auto* l = static_cast<const Label*>(labels.data());
  if (is_float32(X))
    return from_labels_impl<float>(X, w, l, n_components, type, reg_covar, n_threads);
  return from_labels_impl<double>(X, w, l, n_components, type, reg_covar, n_threads);
}

// Labels: C-contiguous int32 are read as they are (k-means labels of
// millions of colours: no int64 copy), anything else is cast to int64.
py::dict gmm_params_from_labels(const py::object& X_obj, const py::object& w_obj,
                                const py::object& labels_obj, int n_components,
                                const std::string& cov_type, double reg_covar,
                                int n_threads) {
  py::array X = check_X(X_obj);
  py::object w = check_weight(w_obj, X);
  py::array labels;
  const bool int32 = py::isinstance<py::array_t<int32_t>>(labels_obj) &&
                     (py::array(labels_obj).flags() & py::array::c_style);
  if (int32)
    labels = py::reinterpret_borrow<py::array>(labels_obj);
  else
    labels = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(labels_obj);
  if (!labels)
    throw py::type_error("labels must be an array of integers");
  if (labels.ndim() != 1 || labels.shape(0) != X.shape(0))
    throw py::value_error("labels must have shape (n_samples,)");
  const CovType type = skseg::gmm::parse_cov_type(cov_type);
  skseg::gmm::check_sizes(n_components, X.shape(1), type);
  if (n_components > X.shape(0))
    throw py::value_error("n_components must not exceed n_samples");
  if (int32)
    return from_labels_of<int32_t>(X, w, labels, n_components, type, reg_covar, n_threads);
  return from_labels_of<int64_t>(X, w, labels, n_components, type, reg_covar, n_threads);
}

template <class T>
void resp_stats_impl(const py::array& X, const py::object& w, const double* resp,
                     skseg::gmm::Stats& st, int n_threads) {
  const DataView<T> data = data_view<T>(X, w);
  py::gil_scoped_release release;
  skseg::gmm::check_data(data, n_threads);
  skseg::gmm::add_resp_stats<T>(data, resp, st, n_threads);
}

py::array_t<double> gmm_resp_stats(const py::object& X_obj, const py::object& w_obj,
                                   const ParamArray& resp, const ParamArray& centres,
                                   const std::string& cov_type, int n_threads) {
  py::array X = check_X(X_obj);
  py::object w = check_weight(w_obj, X);
  if (resp.ndim() != 2 || resp.shape(0) != X.shape(0))
    throw py::value_error("resp must have shape (n_samples, n_components)");
  if (centres.ndim() != 2 || centres.shape(0) != resp.shape(1) ||
      centres.shape(1) != X.shape(1))
    throw py::value_error("centres must have shape (n_components, n_features)");
  skseg::gmm::Stats st;
  st.cov_type = skseg::gmm::parse_cov_type(cov_type);
  skseg::gmm::check_sizes(resp.shape(1), X.shape(1), st.cov_type);
  st.n_components = static_cast<int>(resp.shape(1));
  st.n_features = static_cast<int>(X.shape(1));
  for (py::ssize_t i = 0; i < resp.size(); ++i)
    if (!(std::isfinite(resp.data()[i]) && resp.data()[i] >= 0.0))
      throw py::value_error("resp must be finite and non-negative");
  st.centres = to_vector(centres);
  for (double c : st.centres)
    if (!std::isfinite(c)) throw py::value_error("centres must be finite");
  const int S = skseg::gmm::stats_width(st.cov_type, st.n_features);
  st.sums.assign(static_cast<std::size_t>(st.n_components) * S, 0.0);
  if (is_float32(X))
    resp_stats_impl<float>(X, w, resp.data(), st, n_threads);
  else
    resp_stats_impl<double>(X, w, resp.data(), st, n_threads);
  return to_array(st.sums, {st.n_components, S});
}

py::dict gmm_params_from_stats(const ParamArray& stats, const ParamArray& centres,
                               const std::string& cov_type, double reg_covar,
                               bool float32) {
  if (centres.ndim() != 2 || stats.ndim() != 2 || stats.shape(0) != centres.shape(0))
    throw py::value_error("stats and centres do not match");
  skseg::gmm::Stats st;
  st.cov_type = skseg::gmm::parse_cov_type(cov_type);
  // Sizes first: stats_width and the M-step index with int.
  skseg::gmm::check_sizes(centres.shape(0), centres.shape(1), st.cov_type);
  st.n_components = static_cast<int>(centres.shape(0));
  st.n_features = static_cast<int>(centres.shape(1));
  if (stats.shape(1) != skseg::gmm::stats_width(st.cov_type, st.n_features))
    throw py::value_error("stats has the wrong width for covariance_type");
  st.sums = to_vector(stats);
  st.centres = to_vector(centres);
  std::vector<double> nk;
  const Params p = float32 ? skseg::gmm::m_step<float>(st, reg_covar, &nk)
                           : skseg::gmm::m_step<double>(st, reg_covar, &nk);
  return with_nk(p, nk);
}

// ---------------------------------------------------------------------------
// Distinct colours and k-means.

// A numpy array that takes over the vector's memory (no copy: the colours
// and counts of a random-colour image are hundreds of megabytes).
template <class T>
py::array move_to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
  auto* owner = new std::vector<T>(std::move(v));
  py::capsule free_owner(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, owner->data(), free_owner);
}

template <class T>
py::tuple count_colors_impl(const py::array& pixels, bool return_index, int n_threads) {
  skseg::colors::PixelView<T> img;
  img.data = static_cast<const T*>(pixels.data());
  img.n_pixels = pixels.shape(0);
  img.n_channels = static_cast<int>(pixels.shape(1));
  // int32 indices take half the memory of np.unique's int64 ones.
  const bool narrow = img.n_pixels <= std::numeric_limits<int32_t>::max();
  py::object index = py::none();
  int32_t* index32 = nullptr;
  int64_t* index64 = nullptr;
  if (return_index && narrow) {
    py::array_t<int32_t> a(img.n_pixels);
    index32 = a.mutable_data();
    index = a;
  } else if (return_index) {
    py::array_t<int64_t> a(img.n_pixels);
    index64 = a.mutable_data();
    index = a;
  }
  skseg::colors::DistinctColors<T> res;
  {
    py::gil_scoped_release release;
    res = index64 ? skseg::colors::count_colors(img, index64, n_threads)
                  : skseg::colors::count_colors(img, index32, n_threads);
  }
  const py::ssize_t n_distinct = res.size();
  py::array colors = move_to_numpy(std::move(res.colors), {n_distinct, res.n_channels});
  py::array counts = move_to_numpy(std::move(res.counts), {n_distinct});
  return py::make_tuple(colors, counts, index);
}

py::tuple count_colors(const py::object& obj, bool return_index, int n_threads) {
  if (!py::isinstance<py::array>(obj)) throw py::type_error("pixels must be a numpy.ndarray");
  py::array pixels = py::reinterpret_borrow<py::array>(obj);
  if (pixels.ndim() != 2)
    throw py::value_error("pixels must be 2-D (n_pixels, n_channels)");
  if (!(pixels.flags() & py::array::c_style))
    throw py::value_error("pixels must be C-contiguous");
  if (pixels.shape(1) > std::numeric_limits<int>::max())
    throw py::value_error("pixels have too many channels");
  const py::dtype dt = pixels.dtype();
  if (dt.equal(py::dtype::of<uint8_t>()))
    return count_colors_impl<uint8_t>(pixels, return_index, n_threads);
  if (dt.equal(py::dtype::of<uint16_t>()))
    return count_colors_impl<uint16_t>(pixels, return_index, n_threads);
  if (is_float32(pixels)) return count_colors_impl<float>(pixels, return_index, n_threads);
  if (is_float64(pixels)) return count_colors_impl<double>(pixels, return_index, n_threads);
  throw py::type_error("pixels must have dtype uint8, uint16, float32 or float64, got " +
                       std::string(py::str(dt)));
}

// The rows are copied as raw items, so one instantiation per item size
// serves every dtype of that size.
template <class V, class IndexT>
py::array take_rows_impl(const py::array& values, const py::array& index, int n_threads) {
  const int64_t n = index.shape(0);
  const int64_t width = values.ndim() == 2 ? values.shape(1) : 1;
  std::vector<py::ssize_t> shape{n};
  if (values.ndim() == 2) shape.push_back(values.shape(1));
  py::array out(values.dtype(), shape);
  const V* v = static_cast<const V*>(values.data());
  const IndexT* idx = static_cast<const IndexT*>(index.data());
  V* o = static_cast<V*>(out.mutable_data());
  {
    py::gil_scoped_release release;
    skseg::colors::take_rows(v, values.shape(0), width, idx, n, o, n_threads);
  }
  return out;
}

template <class V>
py::array take_rows_of(const py::array& values, const py::array& index, int n_threads) {
  if (index.dtype().equal(py::dtype::of<int32_t>()))
    return take_rows_impl<V, int32_t>(values, index, n_threads);
  return take_rows_impl<V, int64_t>(values, index, n_threads);
}

// values[index] for C-contiguous 1-D or 2-D numeric values and a 1-D
// int32/int64 index, on n_threads threads.
py::array take_rows(const py::object& values_obj, const py::object& index_obj,
                    int n_threads) {
  if (!py::isinstance<py::array>(values_obj) || !py::isinstance<py::array>(index_obj))
    throw py::type_error("values and index must be numpy.ndarray");
  const auto values = py::reinterpret_borrow<py::array>(values_obj);
  const auto index = py::reinterpret_borrow<py::array>(index_obj);
  if (values.ndim() < 1 || values.ndim() > 2 || index.ndim() != 1)
    throw py::value_error("values must be 1-D or 2-D and index 1-D");
  if (!(values.flags() & py::array::c_style) || !(index.flags() & py::array::c_style))
    throw py::value_error("values and index must be C-contiguous");
  if (!index.dtype().equal(py::dtype::of<int32_t>()) &&
      !index.dtype().equal(py::dtype::of<int64_t>()))
    throw py::type_error("index must have dtype int32 or int64");
  const char kind = values.dtype().kind();
  if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f')
    throw py::type_error("values must have a boolean, integer or float dtype, got " +
                         std::string(py::str(values.dtype())));
  try {
    switch (values.itemsize()) {
      case 1: return take_rows_of<uint8_t>(values, index, n_threads);
      case 2: return take_rows_of<uint16_t>(values, index, n_threads);
      case 4: return take_rows_of<uint32_t>(values, index, n_threads);
      case 8: return take_rows_of<uint64_t>(values, index, n_threads);
    }
  } catch (const std::out_of_range& e) {
    throw py::value_error(e.what());
  }
  throw py::type_error("values must have items of 1, 2, 4 or 8 bytes, got " +
                       std::string(py::str(values.dtype())));
}

// k-means points over checked X and sample_weight (or None).
template <class T>
skseg::kmeans::Points<T> kmeans_points(const py::array& X, const py::object& w) {
  skseg::kmeans::Points<T> pts;
  pts.x = static_cast<const T*>(X.data());
  pts.w = w.is_none() ? nullptr : static_cast<const T*>(py::array(w).data());
  pts.n = X.shape(0);
  pts.d = static_cast<int>(X.shape(1));
  return pts;
}

template <class T>
py::tuple kmeans_impl(const py::array& X, const py::object& w, int k,
                      const std::vector<double>& init, uint64_t seed, int max_iter,
                      double tol, int n_threads) {
  const skseg::kmeans::Points<T> pts = kmeans_points<T>(X, w);
  py::array_t<int32_t> labels(pts.n);
  int32_t* labels_p = labels.mutable_data();
  skseg::kmeans::Result res;
  {
    py::gil_scoped_release release;
    res = skseg::kmeans::fit(pts, k, init, seed, max_iter, tol, n_threads, labels_p);
  }
  return py::make_tuple(to_array(res.centres, {k, pts.d}), labels, res.inertia, res.n_iter);
}

py::tuple kmeans(const py::object& X_obj, const py::object& w_obj, int n_clusters,
                 const py::object& init_obj, uint64_t seed, int max_iter, double tol,
                 int n_threads) {
  py::array X = check_X(X_obj);
  py::object w = check_weight(w_obj, X);
  std::vector<double> init;
  if (!init_obj.is_none()) {
    const ParamArray centres = init_obj.cast<ParamArray>();
    if (centres.ndim() != 2 || centres.shape(0) != n_clusters ||
        centres.shape(1) != X.shape(1))
      throw py::value_error("init must have shape (n_clusters, n_features)");
    init = to_vector(centres);
  }
  if (is_float32(X))
    return kmeans_impl<float>(X, w, n_clusters, init, seed, max_iter, tol, n_threads);
  return kmeans_impl<double>(X, w, n_clusters, init, seed, max_iter, tol, n_threads);
}

template <class T>
py::array_t<int64_t> kmeans_plusplus_impl(const py::array& X, const py::object& w, int k,
                                          uint64_t seed, int n_threads) {
  const skseg::kmeans::Points<T> pts = kmeans_points<T>(X, w);
  std::vector<int64_t> indices;
  {
    py::gil_scoped_release release;
    indices = skseg::kmeans::seed_plusplus(pts, k, seed, n_threads);
  }
  py::array_t<int64_t> out(k);
  std::copy(indices.begin(), indices.end(), out.mutable_data());
  return out;
}

py::array_t<int64_t> kmeans_plusplus(const py::object& X_obj, const py::object& w_obj,
                                     int n_clusters, uint64_t seed, int n_threads) {
  py::array X = check_X(X_obj);
  py::object w = check_weight(w_obj, X);
  if (is_float32(X)) return kmeans_plusplus_impl<float>(X, w, n_clusters, seed, n_threads);
  return kmeans_plusplus_impl<double>(X, w, n_clusters, seed, n_threads);
}

template <class T>
py::array_t<double> estep_slots_impl(const py::array& X, const py::object& w,
                                     const Params& p, int64_t row_offset,
                                     int64_t chunk_rows, int n_threads,
                                     skseg::SimdLevel level) {
  const DataView<T> data = data_view<T>(X, w);
  std::vector<double> slots;
  {
    py::gil_scoped_release release;
    // A part of a distributed array may carry only zero weights, so its
    // weights are checked one by one, not for a positive total.
    DataView<T> unweighted = data;
    unweighted.w = nullptr;
    skseg::gmm::check_data(unweighted, n_threads);
    if (data.w)
      for (int64_t i = 0; i < data.n_rows; ++i)
        if (!(std::isfinite(data.w[i]) && data.w[i] >= 0))
          throw std::invalid_argument("sample_weight must be finite and non-negative");
    slots = skseg::gmm::e_step_slots<T>(data, p, row_offset, chunk_rows, n_threads, level);
  }
  const py::ssize_t width =
      static_cast<py::ssize_t>(p.n_components) *
          skseg::gmm::stats_width(p.cov_type, p.n_features) + 2;
  return to_array(slots, {static_cast<py::ssize_t>(slots.size()) / width, width});
}

py::array_t<double> gmm_estep_slots(const py::object& X_obj, const py::object& w_obj,
                                    const std::string& cov_type,
                                    const ParamArray& weights, const ParamArray& means,
                                    const ParamArray& prec_chol, int64_t row_offset,
                                    int64_t chunk_rows, int n_threads,
                                    const std::string& simd) {
  py::array X = check_X(X_obj);
  py::object w = check_weight(w_obj, X);
  const Params p = make_params(cov_type, weights, means, prec_chol);
  if (p.n_features != X.shape(1))
    throw py::value_error("X has a different number of features than the model");
  if (row_offset < 0) throw py::value_error("row_offset must be >= 0");
  if (row_offset > std::numeric_limits<int64_t>::max() - X.shape(0))
    throw py::value_error("row_offset plus the rows of X must be below 2**63");
  if (chunk_rows < 1) throw py::value_error("chunk_rows must be >= 1");
  const skseg::SimdLevel level = skseg::select_simd(simd);
  if (is_float32(X))
    return estep_slots_impl<float>(X, w, p, row_offset, chunk_rows, n_threads, level);
  return estep_slots_impl<double>(X, w, p, row_offset, chunk_rows, n_threads, level);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "skseg compiled core";
  skseg::watch_for_fork();
  m.def("build_info", []() {
    py::dict info;
    info["openmp"] = skseg::openmp_version();
    info["max_threads"] = skseg::max_threads();
    info["forked_child"] = skseg::in_forked_child();
    info["compiler"] = skseg::compiler();
    info["simd_compiled"] = skseg::simd_compiled_levels();
    info["simd_runtime"] = skseg::simd_runtime();
    return info;
  });
  m.def("in_forked_child", &skseg::in_forked_child,
        "True in a process made by fork() after the module was loaded: the "
        "core then runs on one thread (see skseg/fork_safety.hpp).");
  m.def("gmm_fit", &gmm_fit, py::arg("X"), py::arg("sample_weight"),
        py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("tol"), py::arg("max_iter"),
        py::arg("reg_covar"), py::arg("prev_lower_bound"), py::arg("n_threads"),
        py::arg("simd") = "auto",
        "EM iterations from the given parameters; returns a dict of the final "
        "parameters, lower_bounds, seconds, converged and n_iter.");
  m.def("gmm_evaluate", &gmm_evaluate, py::arg("X"), py::arg("covariance_type"),
        py::arg("weights"), py::arg("means"), py::arg("precisions_cholesky"),
        py::arg("resp"), py::arg("log_norm"), py::arg("labels"),
        py::arg("n_threads"), py::arg("simd") = "auto",
        "(resp, log_norm, labels) for X; entries not asked for are None.");
  m.def("gmm_params_from_labels", &gmm_params_from_labels, py::arg("X"),
        py::arg("sample_weight"), py::arg("labels"), py::arg("n_components"),
        py::arg("covariance_type"), py::arg("reg_covar"), py::arg("n_threads"),
        "Parameters of a hard assignment (label -1 = none), with nk.");
  m.def("gmm_resp_stats", &gmm_resp_stats, py::arg("X"), py::arg("sample_weight"),
        py::arg("resp"), py::arg("centres"), py::arg("covariance_type"),
        py::arg("n_threads"),
        "Sufficient statistics of responsibilities around centres.");
  m.def("gmm_params_from_stats", &gmm_params_from_stats, py::arg("stats"),
        py::arg("centres"), py::arg("covariance_type"), py::arg("reg_covar"),
        py::arg("float32"), "M-step from sufficient statistics, with nk.");
  m.def("count_colors", &count_colors, py::arg("pixels"), py::arg("return_index"),
        py::arg("n_threads"),
        "(colors, counts, index) of (n_pixels, n_channels) pixels: the distinct "
        "rows in lexicographic order, their counts and each pixel's row (int32 "
        "when it fits; None unless return_index), as np.unique(axis=0) gives them.");
  m.def("take_rows", &take_rows, py::arg("values"), py::arg("index"),
        py::arg("n_threads"),
        "values[index] (rows of 1-D or 2-D values; int32 or int64 index), "
        "threaded; ValueError for an index out of range.");
  m.def("kmeans", &kmeans, py::arg("X"), py::arg("sample_weight"), py::arg("n_clusters"),
        py::arg("init"), py::arg("seed"), py::arg("max_iter"), py::arg("tol"),
        py::arg("n_threads"),
        "Weighted k-means (Lloyd) from init centres, or from k-means++ seeded by "
        "seed when init is None; returns (centres, labels, inertia, n_iter).");
  m.def("kmeans_plusplus", &kmeans_plusplus, py::arg("X"), py::arg("sample_weight"),
        py::arg("n_clusters"), py::arg("seed"), py::arg("n_threads"),
        "Indices (int64) of the n_clusters points that greedy k-means++ seeded by "
        "seed picks, as kmeans starts from them.");
  m.def("gmm_estep_slots", &gmm_estep_slots, py::arg("X"),
        py::arg("sample_weight"), py::arg("covariance_type"), py::arg("weights"),
        py::arg("means"), py::arg("precisions_cholesky"), py::arg("row_offset"),
        py::arg("chunk_rows"), py::arg("n_threads"), py::arg("simd") = "auto",
        "E-step statistics of the pieces that chunks of chunk_rows rows of the "
        "whole data cut from X (whose first row is row row_offset): one row "
        "per piece of the (K, width) sums, then sum w log p(x) and sum w.");
  m.def("gmm_chunk_rows", &skseg::gmm::chunk_rows_for, py::arg("n_rows"),
        "Rows per chunk of the fixed partition of n_rows rows in a fit.");
}
