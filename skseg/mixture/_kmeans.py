"""Weighted k-means in the compiled core, and the mixture it initialises.

:class:`GaussianMixture` keeps scikit-learn's ``KMeans`` for
``init_params="kmeans"`` (and its ``kmeans_plusplus`` for "k-means++") so
that it stays a drop-in replacement.
``GMMImageSegmenter`` fits the distinct colours of its images, weighted by
their counts, and initialises from :func:`weighted_kmeans` instead: the same
algorithm (greedy k-means++, then Lloyd iterations to scikit-learn's
tolerance), several times faster on a few hundred thousand weighted colours,
with no ``(n_samples, n_clusters)`` array, and bit-identical for any
``n_jobs``; its "k-means++" seeds come from the same seeding.
"""

import numpy as np

from .. import _core
from .gaussian_mixture import GaussianMixture, _resolve_n_threads

# scikit-learn's KMeans defaults.
_MAX_ITER = 300
_TOL = 1e-4


def weighted_kmeans(X, sample_weight, n_clusters, random_state, *, n_jobs=None):
    """Weighted k-means of C-contiguous float32/float64 ``X`` in the core.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The points, C-contiguous float32 or float64.
    sample_weight : ndarray of shape (n_samples,) or None
        Non-negative weights of X's dtype; None gives every point weight 1.
    n_clusters : int
        Number of clusters.
    random_state : numpy.random.RandomState
        Draws the seed of the k-means++ initialisation.
    n_jobs : int, default=None
        Threads of the core; the result does not depend on it.

    Returns
    -------
    centres : ndarray of shape (n_clusters, n_features)
        Final centres (float64).
    labels : ndarray of shape (n_samples,)
        Cluster of each point (int32), for the final centres.
    inertia : float
        Weighted sum of squared distances to the assigned centres.
    n_iter : int
        Lloyd iterations run.
    """
    return _core.kmeans(
        X,
        sample_weight,
        int(n_clusters),
        None,  # initial centres: k-means++ from the seed
        _draw_seed(random_state),
        _MAX_ITER,
        _TOL,
        _resolve_n_threads(n_jobs),
    )


def weighted_kmeans_plusplus(
    X, sample_weight, n_clusters, random_state, *, n_jobs=None
):
    """Greedy k-means++ seeding of :func:`weighted_kmeans`, alone.

    Parameters are those of :func:`weighted_kmeans`.

    Returns
    -------
    indices : ndarray of shape (n_clusters,)
        Rows of X chosen as the initial centres (int64), the ones
        :func:`weighted_kmeans` starts its Lloyd iterations from for the same
        random state.
    """
    return _core.kmeans_plusplus(
        X,
        sample_weight,
        int(n_clusters),
        _draw_seed(random_state),
        _resolve_n_threads(n_jobs),
    )


def _draw_seed(random_state):
    # One integer, as scikit-learn draws one for each sub-estimator.
    return int(random_state.randint(np.iinfo(np.int32).max))


class ColorMixture(GaussianMixture):
    """GaussianMixture initialised by the core's weighted k-means.

    What ``GMMImageSegmenter`` fits: for ``init_params="kmeans"`` the
    responsibilities come from :func:`weighted_kmeans` instead of
    scikit-learn's ``KMeans``, for ``init_params="k-means++"`` the seeds from
    :func:`weighted_kmeans_plusplus` instead of scikit-learn's
    ``kmeans_plusplus``. Everything else (the other initialisations,
    ``n_init``, ``warm_start``, EM and prediction) is :class:`GaussianMixture`.
    """

    def _fit_sample_weight(self, sample_weight):
        # GMMImageSegmenter normalises the colour counts once for all its
        # fits (_normalised_sample_weight): no copy of millions of weights
        # per fit.
        return sample_weight

    def _kmeans_labels(self, X, sample_weight, random_state):
        return weighted_kmeans(
            X, sample_weight, self.n_components, random_state, n_jobs=self.n_jobs
        )[1]

    def _kmeans_plusplus_indices(self, X, sample_weight, random_state):
        return weighted_kmeans_plusplus(
            X, sample_weight, self.n_components, random_state, n_jobs=self.n_jobs
        )
