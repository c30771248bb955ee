"""Gaussian mixture models fitted by the compiled EM core.

:class:`GaussianMixture` is a drop-in replacement for
:class:`sklearn.mixture.GaussianMixture` on 2-D data: the same parameters,
estimators (``reg_covar`` on the diagonal, Cholesky factors of the precisions,
the mean log-likelihood as lower bound, the convergence test and the ``n_init``
selection), fitted attributes and methods. The EM iterations run in C++
(``skseg._core``) on ``n_jobs`` threads, stream the data in blocks so that no
``(n_samples, n_components)`` array is made during the fit, and accept sample
weights, so that identical rows (the repeated colours of an image) can be
collapsed into one weighted row with exactly the same fit.
"""

import math
import os
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real
from time import time

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)
from threadpoolctl import threadpool_limits

from .. import _core
from . import _dask

__all__ = ["GaussianMixture"]

# Rows of random responsibilities generated at a time for init_params="random",
# so that initialisation, like the fit, never holds an (n_samples, K) array.
_RANDOM_RESP_ROWS = 1 << 16

_PRECISION_SHAPES = {
    "full": lambda k, d: (k, d, d),
    "tied": lambda k, d: (d, d),
    "diag": lambda k, d: (k, d),
    "spherical": lambda k, d: (k,),
}


def _check_shape(param, param_shape, name):
    """Raise a ValueError naming ``name`` if ``param`` has the wrong shape."""
    if param.shape != param_shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape of {param_shape}, "
            f"but got {param.shape}"
        )


def _check_weights(weights, n_components):
    """Validate user-given mixture weights (in [0, 1], summing to 1)."""
    weights = check_array(weights, dtype=[np.float64, np.float32], ensure_2d=False)
    _check_shape(weights, (n_components,), "weights")
    if np.any(weights < 0.0) or np.any(weights > 1.0):
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got "
            f"max value {weights.max():.5f}, min value {weights.min():.5f}"
        )
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if not np.allclose(np.abs(1.0 - np.sum(weights)), 0.0, atol=atol):
        raise ValueError(
            "The parameter 'weights' should be normalized, but got "
            f"sum(weights) = {np.sum(weights):.5f}"
        )
    return weights


def _check_means(means, n_components, n_features):
    """Validate user-given means of shape (n_components, n_features)."""
    means = check_array(means, dtype=[np.float64, np.float32], ensure_2d=False)
    _check_shape(means, (n_components, n_features), "means")
    return means


def _check_precisions(precisions, covariance_type, n_components, n_features):
    """Validate user-given precisions: shape, symmetry, positive definiteness."""
    precisions = check_array(
        precisions,
        dtype=[np.float64, np.float32],
        ensure_2d=False,
        allow_nd=covariance_type == "full",
    )
    name = f"{covariance_type} precision"
    _check_shape(
        precisions, _PRECISION_SHAPES[covariance_type](n_components, n_features), name
    )
    if covariance_type in ("diag", "spherical"):
        if np.any(precisions <= 0.0):
            raise ValueError(f"'{name}' should be positive")
    else:
        matrices = precisions if covariance_type == "full" else precisions[None]
        for matrix in matrices:
            if not (
                np.allclose(matrix, matrix.T) and np.all(np.linalg.eigvalsh(matrix) > 0)
            ):
                raise ValueError(f"'{name}' should be symmetric, positive-definite")
    return precisions


def _precision_cholesky_from_precisions(precisions, covariance_type):
    """Upper-triangular U with U @ U.T = precision, as scikit-learn stores it.

    The Cholesky factor of the row- and column-reversed matrix, reversed back,
    is upper triangular (scikit-learn #26415).
    """
    precisions = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("diag", "spherical"):
        return np.sqrt(precisions)
    flipped = np.linalg.cholesky(precisions[..., ::-1, ::-1])
    return np.ascontiguousarray(flipped[..., ::-1, ::-1])


def _covariances_from_precisions(precisions, covariance_type):
    """Invert precisions (only used when no M-step has produced covariances)."""
    precisions = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("diag", "spherical"):
        return 1.0 / precisions
    return np.linalg.inv(precisions)


def _add_unassigned_scatter(params, X, sample_weight, unassigned):
    """Tied initial covariance as scikit-learn computes it from partial resp.

    scikit-learn's tied estimator is ``(X.T @ X - sum_k nk m_k m_k^T) / sum nk``,
    which counts every row in ``X.T @ X`` even when its responsibilities are
    all zero (the one-point components of 'k-means++' and 'random_from_data').
    The core sums the scatter of assigned rows only; this adds the second
    moments of the unassigned rows and recomputes the Cholesky factor.
    """
    rows = np.flatnonzero(unassigned)
    scatter = np.zeros((X.shape[1], X.shape[1]))
    for start in range(0, rows.size, _RANDOM_RESP_ROWS):
        part = X[rows[start : start + _RANDOM_RESP_ROWS]].astype(np.float64)
        if sample_weight is not None:
            w = sample_weight[rows[start : start + _RANDOM_RESP_ROWS]]
            scatter += (part * w[:, np.newaxis]).T @ part
        else:
            scatter += part.T @ part
    covariance = params["covariances"] + scatter / params["nk"].sum()
    try:
        cov_chol = np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError as exc:
        raise ValueError(
            "Fitting the mixture model failed because some components have "
            "ill-defined empirical covariance (for instance caused by singleton "
            "or collapsed samples). Try to decrease the number of components, "
            "increase reg_covar, or scale the input data."
        ) from exc
    params["covariances"] = covariance
    params["precisions_cholesky"] = np.linalg.solve(
        cov_chol, np.eye(X.shape[1])
    ).T.copy()
    return params


def _native(X):
    """C-contiguous X in native byte order, copied only when needed."""
    return np.ascontiguousarray(X, dtype=X.dtype.newbyteorder("="))


def _resolve_n_threads(n_jobs):
    """Threads for the core: None the threads this process may take (see
    :func:`_available_threads`), -1 all cores, -2 all but one, and so on.

    Never more than the cores available: more would only compete for them
    (and a request of 2**40 threads must not reach OpenMP).
    """
    try:
        n_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        n_cpus = os.cpu_count() or 1
    if n_jobs is None:
        return _available_threads(n_cpus)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, -1 or a positive int")
    if n_jobs < 0:
        return max(n_cpus + 1 + n_jobs, 1)
    return min(int(n_jobs), n_cpus)


# Rows per slice where per-row float64 temporaries would otherwise span all
# rows (weights of millions of distinct colours).
_SLICE_ROWS = 1 << 20


def _row_slices(n_rows):
    step = _SLICE_ROWS
    return (slice(start, start + step) for start in range(0, n_rows, step))


def _normalised_sample_weight(sample_weight, out=None):
    """Weights rescaled to sum to n_samples, so that the fit does not depend
    on their scale.

    scikit-learn's estimators add ``10 * eps`` to every component's mass,
    which is negligible next to unit weights but not next to weights of 1e-9.
    Unit weights are left exactly unchanged. The sum is taken after dividing
    by the largest weight, so that it cannot overflow; in float64, slice by
    slice, so that no float64 copy of all the weights is made. ``out`` may be
    ``sample_weight`` itself.
    """
    largest = np.float64(sample_weight.max())
    total = sum(
        float(np.sum(sample_weight[rows] / largest, dtype=np.float64))
        for rows in _row_slices(sample_weight.size)
    )
    scale = sample_weight.size / total
    out = np.empty_like(sample_weight) if out is None else out
    for rows in _row_slices(sample_weight.size):
        out[rows] = sample_weight[rows] / largest * scale
    return out


def _weighted_mean(values, weights):
    """``np.average(values, weights=weights)`` for non-negative weights, not
    all zero, without float64 copies of all the rows."""
    largest = np.float64(weights.max())
    total = weight = 0.0
    for rows in _row_slices(values.size):
        w = weights[rows] / largest
        total += float(np.sum(w * values[rows], dtype=np.float64))
        weight += float(np.sum(w, dtype=np.float64))
    return total / weight


def _check_magnitude(X):
    """Raise a ValueError when X's values are so large that the covariances
    (sums of squared differences over the features) overflow X's dtype."""
    largest = max(float(X.max()), -float(X.min()))
    limit = math.sqrt(np.finfo(X.dtype).max / (4 * X.shape[1]))
    if largest > limit:
        raise ValueError(
            f"X has values up to {largest:.3g}, too large for {X.dtype.name} "
            f"arithmetic: the covariances would overflow (the limit is about "
            f"{limit:.2g} with {X.shape[1]} features). Rescale X"
            + (", or pass float64 data." if X.dtype == np.float32 else ".")
        )


def _check_fitted_parameters(params, dtype):
    """Raise a ValueError when the fitted parameters overflow ``dtype``.

    The core computes in double; float32 data store the result in float32,
    where covariances of data near 1e20 become infinite.
    """
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        with np.errstate(over="ignore"):
            value = np.asarray(params[name], dtype=dtype)
        if not np.isfinite(value).all():
            raise ValueError(
                f"the fitted {name} overflow {np.dtype(dtype).name}: X has values "
                "too large for it. Rescale X"
                + (", or pass float64 data." if dtype == np.float32 else ".")
            )


def _available_threads(n_cpus):
    """The threads a fit with ``n_jobs=None`` takes: the cores, capped by the
    OpenMP limit in force (``OMP_NUM_THREADS``, :mod:`threadpoolctl`; joblib
    and Dask worker processes set it) and, inside a Dask worker, by the
    worker's thread count, so that searches on a cluster share its cores
    instead of each fit taking them all."""
    n_threads = min(n_cpus, _core.build_info()["max_threads"])
    return min(n_threads, _dask.worker_threads() or n_threads)


class _BaseMixture(DensityMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the mixtures fitted by the compiled EM core.

    It holds what does not depend on the component densities: parameter
    validation, the ``n_init`` restarts, warm starts, verbose output and the
    prediction methods. Subclasses provide the initialisation and the calls
    into the core.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        # max_iter is a C int in the core.
        "max_iter": [Interval(Integral, 0, 2**31 - 1, closed="both")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [
            StrOptions({"kmeans", "random", "random_from_data", "k-means++"})
        ],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        n_components,
        tol,
        reg_covar,
        max_iter,
        n_init,
        init_params,
        random_state,
        warm_start,
        verbose,
        verbose_interval,
        n_jobs,
    ):
        self.n_components = n_components
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_jobs = n_jobs

    @abstractmethod
    def _check_initial_parameters(self, X):
        """Validate user-given initial parameters; return them."""

    @abstractmethod
    def _initial_parameters(self, X, sample_weight, random_state, user_init):
        """Parameters to start EM from, as a dict of float64 arrays."""

    @abstractmethod
    def _run_em(self, X, sample_weight, params, lower_bound, n_threads):
        """EM iterations in the core; returns the core's result dict."""

    @abstractmethod
    def _evaluate(self, X, resp=False, log_norm=False, labels=False):
        """Responsibilities, log-likelihoods and/or labels of validated X."""

    @abstractmethod
    def _get_parameters(self):
        """The fitted parameters as a dict of arrays."""

    @abstractmethod
    def _set_parameters(self, params, dtype):
        """Store parameters as fitted attributes of the given dtype."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Estimate model parameters with the EM algorithm.

        The model is fitted ``n_init`` times and the parameters with the
        largest lower bound are kept. Each trial alternates E- and M-steps up
        to ``max_iter`` times or until the change of the lower bound is below
        ``tol``; otherwise a :class:`~sklearn.exceptions.ConvergenceWarning`
        is raised. With ``warm_start=True``, ``n_init`` is ignored and each
        call continues from the previous solution.

        Parameters
        ----------
        X : array-like or Dask array of shape (n_samples, n_features)
            Training data, one sample per row. A Dask array is fitted by
            distributed EM on the current Dask scheduler (see Notes).
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: a row of weight ``w`` counts as ``w``
            identical rows. None gives every row weight 1. Only their ratios
            matter (they are rescaled to sum to ``n_samples``).

        Returns
        -------
        self : object
            The fitted mixture.
        """
        self._fit(X, sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_predict(self, X, y=None, sample_weight=None):
        """Estimate model parameters using X and predict the labels for X.

        Fits as :meth:`fit` does, then returns the most probable component
        of every sample under the final parameters, so that
        ``fit_predict(X)`` always equals ``fit(X).predict(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, one sample per row.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: a row of weight ``w`` counts as ``w``
            identical rows. None gives every row weight 1. Only their ratios
            matter (they are rescaled to sum to ``n_samples``).

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels.
        """
        X = self._fit(X, sample_weight)
        if _dask.is_dask_collection(X):
            return self.predict(X)
        # The labels of the final parameters, as predict(X) would give.
        return self._evaluate(X, labels=True)[2]

    def _fit(self, X, sample_weight):
        """Run EM as :meth:`fit` documents; returns the validated ``X``.

        Unlike scikit-learn, ``fit`` ends here, without the labels of every
        sample: they would cost an E-step and an ``(n_samples,)`` array that
        ``fit`` throws away.
        """
        if _dask.is_dask_collection(X):
            _dask.fit_mixture(self, X, sample_weight)
            return X
        X = _native(validate_data(self, X, dtype=[np.float64, np.float32], order="C"))
        _check_magnitude(X)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=X.dtype, ensure_non_negative=True
            )
            n_samples = int(np.count_nonzero(sample_weight))
            if n_samples == 0:
                raise ValueError("sample_weight must not be all zero")
            sample_weight = _native(self._fit_sample_weight(sample_weight))
        else:
            n_samples = X.shape[0]
        if n_samples < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {n_samples}"
            )
        n_threads = _resolve_n_threads(self.n_jobs)
        user_init = self._check_initial_parameters(X)
        self._fit_trials(
            lambda random_state: self._initial_parameters(
                X, sample_weight, random_state, user_init
            ),
            lambda params, lower_bound: self._run_em(
                X, sample_weight, params, lower_bound, n_threads
            ),
            X.dtype,
        )
        return X

    def _fit_trials(self, initial_parameters, run_em, dtype):
        """The ``n_init`` trials (or one warm-started run) of :meth:`fit`.

        ``initial_parameters(random_state)`` gives a trial's start and
        ``run_em(params, lower_bound)`` its EM result dict, wherever the data
        live (in memory here, on a Dask cluster in :mod:`._dask`). The best
        trial's parameters are stored as fitted attributes of ``dtype``.
        """
        # With warm_start, only the first call initialises.
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)

        max_lower_bound = -np.inf
        best_params, best_n_iter, best_lower_bounds = None, 0, []
        self.converged_ = False
        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            if do_init:
                params = initial_parameters(random_state)
                lower_bound = -np.inf
            else:
                params = self._get_parameters()
                lower_bound = self.lower_bound_

            if self.max_iter == 0:
                best_params, best_n_iter = params, 0
                continue
            result = run_em(params, lower_bound)
            lower_bound = result["lower_bounds"][-1]
            self._print_verbose_msg_iters(result)
            self._print_verbose_msg_init_end(lower_bound, result["converged"])
            if lower_bound > max_lower_bound or max_lower_bound == -np.inf:
                max_lower_bound = lower_bound
                best_params = result
                best_n_iter = result["n_iter"]
                best_lower_bounds = list(result["lower_bounds"])
                self.converged_ = bool(result["converged"])

        _check_fitted_parameters(best_params, dtype)
        # Without iterations the user only wants the initial parameters.
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different "
                "init parameters, or increase max_iter, tol, or check for "
                "degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._set_parameters(best_params, dtype)
        self.n_iter_ = best_n_iter
        self.lower_bound_ = max_lower_bound
        self.lower_bounds_ = best_lower_bounds

    def _validate_X_predict(self, X):
        """Validated C-ordered X in the precision of the model (or of X)."""
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, dtype=[np.float64, np.float32], order="C"
        )
        dtype = np.result_type(X.dtype, self.means_.dtype).newbyteorder("=")
        return np.ascontiguousarray(X, dtype=dtype)

    def score_samples(self, X):
        """Compute the log-likelihood of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples, one per row.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            Log-likelihood of each sample under the current model.
        """
        if _dask.is_dask_collection(X):
            check_is_fitted(self)
            return _dask.map_rows(self, X, "score_samples")
        return self._evaluate(self._validate_X_predict(X), log_norm=True)[1]

    def score(self, X, y=None, sample_weight=None):
        """Compute the per-sample average log-likelihood of the given data X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples, one per row.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the average; None weighs every sample equally.

        Returns
        -------
        log_likelihood : float
            (Weighted) mean log-likelihood of X under the model.
        """
        log_prob = self.score_samples(X)
        if sample_weight is None:
            return float(np.mean(log_prob))
        sample_weight = _check_sample_weight(
            sample_weight, log_prob[:, None], ensure_non_negative=True
        )
        if not sample_weight.any():
            raise ValueError("sample_weight must not be all zero")
        return _weighted_mean(log_prob, sample_weight)

    def predict(self, X):
        """Predict the most probable component of every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples, one per row.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels.
        """
        if _dask.is_dask_collection(X):
            check_is_fitted(self)
            return _dask.map_rows(self, X, "predict")
        return self._evaluate(self._validate_X_predict(X), labels=True)[2]

    def predict_proba(self, X):
        """Evaluate the posterior probability of each component for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples, one per row.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Posterior probability of each component given each sample.
        """
        if _dask.is_dask_collection(X):
            check_is_fitted(self)
            return _dask.map_rows(self, X, "predict_proba")
        return self._evaluate(self._validate_X_predict(X), resp=True)[0]

    def _print_verbose_msg_init_beg(self, n_init):
        """Print the start of an initialisation."""
        if self.verbose >= 1:
            print(f"Initialization {n_init}")
        if self.verbose >= 2:
            self._init_prev_time = time()

    def _print_verbose_msg_iters(self, result):
        """Print every ``verbose_interval``-th iteration of a finished run.

        The run happens in one call into the core, so the messages come after
        it, with the times the core measured.
        """
        if self.verbose < 1:
            return
        lower_bounds = result["lower_bounds"]
        elapsed = 0.0
        for n_iter, seconds in enumerate(result["seconds"], start=1):
            elapsed += seconds
            if n_iter % self.verbose_interval:
                continue
            if self.verbose == 1:
                print(f"  Iteration {n_iter}")
            else:
                previous = lower_bounds[n_iter - 2] if n_iter > 1 else -np.inf
                change = lower_bounds[n_iter - 1] - previous
                print(
                    f"  Iteration {n_iter}\t time lapse {elapsed:.5f}s\t "
                    f"ll change {change:.5f}"
                )
                elapsed = 0.0

    def _print_verbose_msg_init_end(self, lower_bound, converged):
        """Print the end of an initialisation."""
        converged_msg = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {converged_msg}.")
        elif self.verbose >= 2:
            t = time() - self._init_prev_time
            print(
                f"Initialization {converged_msg}. time lapse {t:.5f}s\t lower bound"
                f" {lower_bound:.5f}."
            )


class GaussianMixture(_BaseMixture):
    """Gaussian mixture fitted by EM in compiled, multi-threaded C++.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture` that
    gives the same answer (same estimators, initialisations, lower bound and
    convergence test) far faster: the EM iterations run in C++ with SIMD
    kernels on ``n_jobs`` threads and stream the data in blocks, so memory
    beyond the input stays small whatever the number of samples. ``fit``,
    ``fit_predict`` and ``score`` also take ``sample_weight``, so that
    repeated rows can be given once with their count.

    Parameters
    ----------
    n_components : int, default=1
        The number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        'full': each component has its own general covariance matrix;
        'tied': all components share one general covariance matrix;
        'diag': each component has its own diagonal covariance matrix;
        'spherical': each component has its own single variance.
    tol : float, default=1e-3
        Convergence threshold: EM stops when the change of the lower bound
        (the mean log-likelihood) between iterations is below it.
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of covariances.
    max_iter : int, default=100
        The number of EM iterations to perform.
    n_init : int, default=1
        The number of initialisations; the best result is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
            default='kmeans'
        How the weights, means and precisions are initialised:
        'kmeans': responsibilities from :class:`~sklearn.cluster.KMeans`
        (run on one thread, so that the result does not depend on n_jobs);
        'k-means++': k-means++ seeds as one-point components;
        'random': random responsibilities;
        'random_from_data': randomly chosen samples as one-point components.
    weights_init : array-like of shape (n_components,), default=None
        User-provided initial weights (initialised by ``init_params`` if None).
    means_init : array-like of shape (n_components, n_features), default=None
        User-provided initial means (initialised by ``init_params`` if None).
    precisions_init : array-like, default=None
        User-provided initial precisions (inverse covariances), of shape
        (n_components,) for 'spherical', (n_features, n_features) for 'tied',
        (n_components, n_features) for 'diag' and
        (n_components, n_features, n_features) for 'full'.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation and of :meth:`sample`.
    warm_start : bool, default=False
        If True, each ``fit`` continues from the previous solution and
        ``n_init`` is ignored.
    verbose : int, default=0
        1 prints each initialisation and iteration; 2 also prints times and
        lower-bound changes.
    verbose_interval : int, default=10
        Number of iterations between messages.
    n_jobs : int, default=None
        Threads of the EM core. None uses the available cores within the
        OpenMP thread limit in force (``OMP_NUM_THREADS``, threadpoolctl) and,
        in a Dask worker, at most the worker's threads; -1 uses all cores, -2
        all but one, and so on. The result does not depend on it: the same data
        and ``random_state`` give bit-identical parameters for any value.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        The weight of each component.
    means_ : ndarray of shape (n_components, n_features)
        The mean of each component.
    covariances_ : ndarray
        The covariances, shaped as ``precisions_init``.
    precisions_ : ndarray
        The precision matrices (inverse covariances), shaped as
        ``precisions_init``.
    precisions_cholesky_ : ndarray
        Upper-triangular Cholesky factors of the precisions
        (``precisions_ = U @ U.T``), shaped as ``precisions_init``.
    converged_ : bool
        True when the best initialisation reached ``tol``.
    n_iter_ : int
        Number of EM iterations of the best initialisation.
    lower_bound_ : float
        Lower bound (mean log-likelihood) of the best initialisation.
    lower_bounds_ : list of float
        The lower bound at each iteration of the best initialisation.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.mixture.GaussianMixture : The reference implementation.

    Notes
    -----
    float32 and float64 data are both computed natively (sums in double). As
    in scikit-learn, ``lower_bounds_[i]`` is the mean log-likelihood under
    the parameters before iteration ``i + 1``'s M-step. Unlike scikit-learn,
    a single sample (say, one row standing for many by its weight) can be
    fitted with one component.

    Given a Dask array (``pip install 'skseg[dask]'``), ``fit`` runs each
    E-step where the chunks live and the M-step on the client; the fitted
    model is an ordinary in-memory one, and ``predict``, ``predict_proba``
    and ``score_samples`` of a Dask array are lazy Dask arrays. The start is
    the in-memory initialisation over all rows, or over a random sample of
    131072 rows for larger data. With row chunks from
    :func:`skseg.mixture.aligned_row_chunks` the fit is bit-identical to the
    in-memory fit from the same start, for any number of workers. Rows are
    read again at every iteration: ``persist()`` the array first if it fits
    in the cluster's memory.

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.mixture import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(gm.means_[np.argsort(gm.means_[:, 0])], 6)
    array([[ 1.,  2.],
           [10.,  2.]])
    """

    _parameter_constraints: dict = {
        **_BaseMixture._parameter_constraints,
        "covariance_type": [StrOptions({"full", "tied", "diag", "spherical"})],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        n_jobs=None,
    ):
        super().__init__(
            n_components=n_components,
            tol=tol,
            reg_covar=reg_covar,
            max_iter=max_iter,
            n_init=n_init,
            init_params=init_params,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
            verbose_interval=verbose_interval,
            n_jobs=n_jobs,
        )
        self.covariance_type = covariance_type
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init

    def _check_initial_parameters(self, X):
        """Validated copies of weights_init, means_init and precisions_init.

        Unlike scikit-learn, the validated arrays are not written back to the
        constructor parameters.
        """
        n_features = X.shape[1]
        weights = means = precisions = None
        if self.weights_init is not None:
            weights = _check_weights(self.weights_init, self.n_components)
        if self.means_init is not None:
            means = _check_means(self.means_init, self.n_components, n_features)
        if self.precisions_init is not None:
            precisions = _check_precisions(
                self.precisions_init,
                self.covariance_type,
                self.n_components,
                n_features,
            )
        return weights, means, precisions

    def _initial_parameters(self, X, sample_weight, random_state, user_init):
        """Initial parameters following scikit-learn's initialisation.

        The responsibilities of ``init_params`` are reduced to parameters in
        the core; user-given weights, means and precisions replace the
        corresponding estimates. As in scikit-learn, weights estimated here
        are the component masses divided by the number of samples.
        """
        weights_init, means_init, precisions_init = user_init
        params = {}
        if weights_init is None or means_init is None or precisions_init is None:
            params = self._parameters_from_init_params(X, sample_weight, random_state)
            total = X.shape[0] if sample_weight is None else sample_weight.sum()
            params["weights"] = params.pop("nk") / total
        if weights_init is not None:
            params["weights"] = np.asarray(weights_init, dtype=np.float64)
        if means_init is not None:
            params["means"] = np.asarray(means_init, dtype=np.float64)
        if precisions_init is not None:
            params["precisions_cholesky"] = _precision_cholesky_from_precisions(
                precisions_init, self.covariance_type
            )
            params["covariances"] = _covariances_from_precisions(
                precisions_init, self.covariance_type
            )
        return params

    def _parameters_from_init_params(self, X, sample_weight, random_state):
        """Parameters (with un-normalised ``nk``) of the init_params method."""
        n_samples, n_features = X.shape
        k = self.n_components
        n_threads = _resolve_n_threads(self.n_jobs)
        if self.init_params == "random":
            # The same random stream as scikit-learn's (n_samples, k) draw,
            # generated and reduced a block of rows at a time.
            centres = np.tile(np.average(X, axis=0, weights=sample_weight), (k, 1))
            stats = 0.0
            for start in range(0, n_samples, _RANDOM_RESP_ROWS):
                stop = min(start + _RANDOM_RESP_ROWS, n_samples)
                resp = random_state.uniform(size=(stop - start, k)).astype(X.dtype)
                resp /= resp.sum(axis=1)[:, np.newaxis]
                stats = stats + _core.gmm_resp_stats(
                    X[start:stop],
                    None if sample_weight is None else sample_weight[start:stop],
                    resp,
                    centres,
                    self.covariance_type,
                    n_threads,
                )
            return _core.gmm_params_from_stats(
                stats,
                centres,
                self.covariance_type,
                self.reg_covar,
                X.dtype == np.float32,
            )
        if self.init_params == "kmeans":
            # int32 (the core's k-means) or int64 labels: the core reads both.
            labels = self._kmeans_labels(X, sample_weight, random_state)
        else:
            labels = np.full(n_samples, -1, dtype=np.int64)
            if self.init_params == "random_from_data":
                p = None
                if sample_weight is not None:
                    p = sample_weight / sample_weight.sum()
                indices = random_state.choice(n_samples, size=k, replace=False, p=p)
            else:  # k-means++
                indices = self._kmeans_plusplus_indices(X, sample_weight, random_state)
            labels[indices] = np.arange(k)
        params = _core.gmm_params_from_labels(
            X,
            sample_weight,
            labels,
            k,
            self.covariance_type,
            self.reg_covar,
            n_threads,
        )
        if self.covariance_type == "tied" and np.any(labels < 0):
            params = _add_unassigned_scatter(params, X, sample_weight, labels < 0)
        return params

    def _fit_sample_weight(self, sample_weight):
        """The weights EM uses: rescaled by :func:`_normalised_sample_weight`."""
        return _normalised_sample_weight(sample_weight)

    def _kmeans_plusplus_indices(self, X, sample_weight, random_state):
        """Seed indices of scikit-learn's k-means++ for init_params='k-means++'."""
        _, indices = kmeans_plusplus(
            X, self.n_components, random_state=random_state, sample_weight=sample_weight
        )
        return indices

    def _kmeans_labels(self, X, sample_weight, random_state):
        """Labels of scikit-learn's KMeans for init_params='kmeans'.

        KMeans runs on one thread whatever ``n_jobs`` is: its labels change
        with its thread count (its partial sums are per thread), and the
        mixture's answer must not depend on ``n_jobs``.
        """
        with threadpool_limits(limits=1):
            kmeans = KMeans(self.n_components, n_init=1, random_state=random_state)
            return kmeans.fit(X, sample_weight=sample_weight).labels_

    def _run_em(self, X, sample_weight, params, lower_bound, n_threads):
        """EM in the core from ``params``; returns its result dict."""
        return _core.gmm_fit(
            X,
            sample_weight,
            self.covariance_type,
            params["weights"],
            params["means"],
            params["precisions_cholesky"],
            float(self.tol),
            int(self.max_iter),
            float(self.reg_covar),
            float(lower_bound),
            n_threads,
        )

    def _evaluate(self, X, resp=False, log_norm=False, labels=False):
        """(resp, log_norm, labels) of C-ordered X from the core."""
        return _core.gmm_evaluate(
            X,
            self.covariance_type,
            self.weights_,
            self.means_,
            self.precisions_cholesky_,
            resp,
            log_norm,
            labels,
            _resolve_n_threads(self.n_jobs),
        )

    def _get_parameters(self):
        """The fitted parameters as float64 arrays."""
        return {
            "weights": np.asarray(self.weights_, dtype=np.float64),
            "means": np.asarray(self.means_, dtype=np.float64),
            "covariances": np.asarray(self.covariances_, dtype=np.float64),
            "precisions_cholesky": np.asarray(
                self.precisions_cholesky_, dtype=np.float64
            ),
        }

    def _set_parameters(self, params, dtype):
        """Store params as fitted attributes in ``dtype``, with precisions_."""
        self.weights_ = np.asarray(params["weights"], dtype=dtype)
        self.means_ = np.asarray(params["means"], dtype=dtype)
        self.covariances_ = np.asarray(params["covariances"], dtype=dtype)
        self.precisions_cholesky_ = np.asarray(
            params["precisions_cholesky"], dtype=dtype
        )
        prec_chol = self.precisions_cholesky_
        if self.covariance_type == "full":
            self.precisions_ = prec_chol @ np.transpose(prec_chol, (0, 2, 1))
        elif self.covariance_type == "tied":
            self.precisions_ = prec_chol @ prec_chol.T
        else:
            self.precisions_ = prec_chol**2

    def _n_parameters(self):
        """Return the number of free parameters in the model."""
        _, n_features = self.means_.shape
        if self.covariance_type == "full":
            cov_params = self.n_components * n_features * (n_features + 1) / 2.0
        elif self.covariance_type == "diag":
            cov_params = self.n_components * n_features
        elif self.covariance_type == "tied":
            cov_params = n_features * (n_features + 1) / 2.0
        else:
            cov_params = self.n_components
        mean_params = n_features * self.n_components
        return int(cov_params + mean_params + self.n_components - 1)

    def bic(self, X):
        """Bayesian information criterion for the current model on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input samples.

        Returns
        -------
        bic : float
            The lower the better.
        """
        n_samples = np.shape(X)[0]
        return -2 * self.score(X) * n_samples + self._n_parameters() * math.log(
            n_samples
        )

    def aic(self, X):
        """Akaike information criterion for the current model on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input samples.

        Returns
        -------
        aic : float
            The lower the better.
        """
        return -2 * self.score(X) * np.shape(X)[0] + 2 * self._n_parameters()

    def sample(self, n_samples=1):
        """Generate random samples from the fitted Gaussian mixture.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Randomly generated samples.
        y : ndarray of shape (n_samples,)
            Component of each sample.
        """
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples} . The sampling "
                "requires at least one sample."
            )
        _, n_features = self.means_.shape
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        if self.covariance_type == "full":
            parts = [
                rng.multivariate_normal(mean, cov, int(n))
                for mean, cov, n in zip(
                    self.means_, self.covariances_, counts, strict=True
                )
            ]
        elif self.covariance_type == "tied":
            parts = [
                rng.multivariate_normal(mean, self.covariances_, int(n))
                for mean, n in zip(self.means_, counts, strict=True)
            ]
        else:
            parts = [
                mean + rng.standard_normal(size=(n, n_features)) * np.sqrt(cov)
                for mean, cov, n in zip(
                    self.means_, self.covariances_, counts, strict=True
                )
            ]
        X = np.vstack(parts).astype(np.float64, copy=False)
        y = np.concatenate(
            [np.full(int(n), k, dtype=np.int64) for k, n in enumerate(counts)]
        )
        return X, y
