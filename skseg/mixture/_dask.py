"""Gaussian mixtures and image segmenters over Dask collections.

What the estimators of :mod:`skseg.mixture` do when given a Dask array (or a
list of image paths) instead of data in memory. The EM iterations are
distributed: every chunk's E-step statistics are computed by the compiled core
on the worker that holds the chunk, only those small ``(K, width)`` arrays
travel, and the client adds them in row order and runs the M-step. The fitted
estimator is an ordinary in-memory one.

The core sums a fit over a fixed partition of the rows (``_core.gmm_chunk_rows``
rows per chunk, the same for any thread count). Each Dask task returns the
statistics of the pieces that partition cuts from its chunk, and the client
adds the pieces in row order. When the Dask chunk boundaries are multiples of
the partition's chunk size (:func:`aligned_row_chunks`), every piece is a whole
chunk summed exactly as in memory, so the fit is bit-identical to the in-memory
fit from the same start for any number of workers; other layouts agree up to
rounding.

Dask is an optional extra (``pip install 'skseg[dask]'``): nothing here imports
it before a Dask collection is met.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

from .. import _core

__all__ = ["aligned_row_chunks", "predict_files"]

_DASK_HINT = "install the extra with: pip install 'skseg[dask]'"

# Rows gathered to the client to initialise a fit over a Dask array: all rows
# when there are at most this many (the start is then the in-memory one),
# else a uniform random sample of this size.
INIT_SAMPLE_ROWS = 1 << 17


def require_dask(purpose):
    """Import dask (with dask.array) or say how to install it."""
    try:
        import dask
        import dask.array  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs dask, which is not installed; {_DASK_HINT}"
        ) from exc
    return dask


def is_dask_collection(X):
    """True for a Dask collection, without importing dask for other inputs."""
    if not type(X).__module__.startswith("dask"):
        return False
    import dask

    return dask.is_dask_collection(X)


def is_path_list(X):
    """True for a non-empty list or tuple of file paths."""
    return (
        isinstance(X, list | tuple)
        and len(X) > 0
        and all(isinstance(p, str | os.PathLike) for p in X)
    )


def worker_threads():
    """The thread count of the Dask worker running this code, or None."""
    if "distributed" not in sys.modules:  # no worker without it
        return None
    from distributed import get_worker

    try:
        return get_worker().state.nthreads
    except (ValueError, AttributeError):
        return None


def aligned_row_chunks(n_rows, rows_per_chunk):
    """Row chunks near ``rows_per_chunk`` that keep the in-memory partition.

    Parameters
    ----------
    n_rows : int
        Number of rows of the array.
    rows_per_chunk : int
        Wanted rows per Dask chunk; rounded to a multiple (at least one) of
        the rows of the core's fixed chunks for ``n_rows`` rows.

    Returns
    -------
    chunks : tuple of int
        Row chunk sizes for ``dask.array.rechunk`` or ``from_array``; a fit
        over an array chunked so equals the in-memory fit bit for bit.
    """
    core_rows = _core.gmm_chunk_rows(int(n_rows))
    size = max(1, round(rows_per_chunk / core_rows)) * core_rows
    chunks = [size] * (n_rows // size)
    if n_rows % size:
        chunks.append(n_rows % size)
    return tuple(chunks)


# -- distributed EM -------------------------------------------------------------


def _check_rows(X, sample_weight):
    """Validated 2-D float Dask array with one column chunk, and its weights."""
    da = require_dask("GaussianMixture.fit on a Dask array").array
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "X has chunks of unknown size; call X.compute_chunk_sizes() first"
        )
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind not in "uif":
            raise TypeError(f"X must hold numbers, got dtype {X.dtype}")
        X = X.astype(np.float64)
    X = X.rechunk({1: -1})
    if sample_weight is not None:
        sample_weight = da.asarray(sample_weight).astype(X.dtype)
        if sample_weight.shape != (X.shape[0],):
            raise ValueError(
                f"sample_weight must have shape ({X.shape[0]},), "
                f"got {sample_weight.shape}"
            )
        sample_weight = sample_weight.rechunk((X.chunks[0],))
    return X, sample_weight


def _block_slots(X, w, covariance_type, params, row_offset, chunk_rows, n_jobs):
    """E-step statistics of one Dask chunk's pieces (runs on a worker)."""
    from .gaussian_mixture import _native, _resolve_n_threads

    return _core.gmm_estep_slots(
        _native(X),
        None if w is None else _native(w),
        covariance_type,
        params["weights"],
        params["means"],
        params["precisions_cholesky"],
        int(row_offset),
        int(chunk_rows),
        _resolve_n_threads(n_jobs),
    )


class _DaskEM:
    """EM iterations over a Dask array, one graph per E-step."""

    def __init__(self, mixture, X, sample_weight):
        import dask

        self.mixture = mixture
        self.chunk_rows = _core.gmm_chunk_rows(X.shape[0])
        self.x_blocks = list(X.to_delayed()[:, 0])
        self.w_blocks = (
            [None] * len(self.x_blocks)
            if sample_weight is None
            else list(sample_weight.to_delayed())
        )
        self.offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]])
        self.float32 = X.dtype == np.float32
        self.dtype = X.dtype
        self._delayed = dask.delayed(_block_slots, pure=True)

    def e_step(self, params):
        """Totals of the chunk statistics, added in row order on the client."""
        import dask

        m = self.mixture
        tasks = [
            self._delayed(
                x, w, m.covariance_type, params, off, self.chunk_rows, m.n_jobs
            )
            for x, w, off in zip(
                self.x_blocks, self.w_blocks, self.offsets, strict=True
            )
        ]
        slots = np.concatenate(dask.compute(*tasks))
        # Added one piece after another, as the core adds its chunks.
        total = np.zeros(slots.shape[1])
        for piece in slots:
            total += piece
        return total

    def run(self, params, lower_bound):
        """EM from ``params`` as the core's ``gmm_fit`` runs it in memory."""
        m = self.mixture
        k = m.n_components
        result = {
            "lower_bounds": [],
            "seconds": [],
            "converged": False,
            "n_iter": 0,
            **params,
        }
        for n_iter in range(1, m.max_iter + 1):
            start = time.perf_counter()
            previous = lower_bound
            params = {
                key: np.asarray(result[key], dtype=np.float64)
                for key in ("weights", "means", "precisions_cholesky")
            }
            total = self.e_step(params)
            if not total[-1] > 0:
                raise ValueError("sample_weight must not sum to zero")
            lower_bound = total[-2] / total[-1]
            # The statistics are taken around the means as the kernels hold
            # them: rounded to the data's precision.
            centres = params["means"].astype(self.dtype).astype(np.float64)
            new = _core.gmm_params_from_stats(
                total[:-2].reshape(k, -1),
                centres,
                m.covariance_type,
                float(m.reg_covar),
                self.float32,
            )
            new.pop("nk")
            result.update(new)
            result["n_iter"] = n_iter
            result["lower_bounds"].append(lower_bound)
            result["seconds"].append(time.perf_counter() - start)
            if abs(lower_bound - previous) < m.tol:
                result["converged"] = True
                break
        return result


def _first_pass(X, sample_weight, random_state, size):
    """One pass over the data: the rows (and weights) an initialisation
    starts from, in memory (all rows when there are at most ``size``, else a
    uniform sample of ``size``), X's extremes and the weights' maximum, sum
    and non-zero count."""
    import dask
    import dask.array as da

    n_rows = X.shape[0]
    sample_X, sample_w = X, sample_weight
    if n_rows > size:
        rows = np.sort(random_state.choice(n_rows, size, replace=False))
        sample_X = X[rows]
        sample_w = None if sample_weight is None else sample_weight[rows]
    summary = [X.max(), X.min()]
    if sample_weight is not None:
        # (All-zero weights are refused once counted: no 0 / 0 meanwhile.)
        largest = da.maximum(sample_weight.max(), np.finfo(np.float64).tiny)
        scaled = sample_weight.astype(np.float64) / largest
        summary += [sample_weight.max(), scaled.sum(), (sample_weight > 0).sum()]
    return dask.compute(sample_X, sample_w, *summary)


def _normalised(sample_weight, largest, scaled_sum, n_rows):
    """The in-memory fit's weight normalisation (to sum ``n_rows``), for a
    Dask or numpy array: the same values whenever ``scaled_sum`` is summed
    exactly (integer counts, for example)."""
    w = sample_weight.astype(np.float64) / largest * (n_rows / scaled_sum)
    return w.astype(sample_weight.dtype)


def fit_mixture(mixture, X, sample_weight):
    """Fit ``mixture`` (a GaussianMixture) to the rows of Dask array ``X``.

    The start is the in-memory initialisation over all rows when there are
    at most :data:`INIT_SAMPLE_ROWS`, else over a uniform sample of that many
    rows (with their weights); user-given initial parameters replace it as in
    memory. The EM iterations run on the cluster (:class:`_DaskEM`).
    """
    from sklearn.utils import check_random_state

    from .gaussian_mixture import _check_magnitude, _native

    X, sample_weight = _check_rows(X, sample_weight)
    n_rows, n_features = X.shape
    if n_rows < max(2, mixture.n_components):
        raise ValueError(
            "Expected n_samples >= n_components "
            f"but got n_components = {mixture.n_components}, n_samples = {n_rows}"
        )
    if hasattr(mixture, "feature_names_in_"):
        del mixture.feature_names_in_
    mixture.n_features_in_ = n_features
    # A start given in full needs no rows: two are read for their checks. A
    # sample (when needed) has its own draw, so that the trials' random
    # stream is the in-memory one whenever all rows are gathered.
    given = (mixture.weights_init, mixture.means_init, mixture.precisions_init)
    size = 2 if all(p is not None for p in given) else INIT_SAMPLE_ROWS
    sample_X, sample_w, largest, smallest, *weights = _first_pass(
        X, sample_weight, check_random_state(mixture.random_state), size
    )
    extremes = np.array([largest, smallest], dtype=X.dtype)
    _check_magnitude(np.repeat(extremes[:, None], n_features, axis=1))
    sample_X = _native(np.asarray(sample_X))
    if sample_weight is not None:
        w_max, scaled_sum, n_nonzero = weights
        if n_nonzero == 0:
            raise ValueError("sample_weight must not be all zero")
        if n_nonzero < mixture.n_components:
            raise ValueError(
                "Expected n_samples >= n_components but got n_components = "
                f"{mixture.n_components}, n_samples = {n_nonzero}"
            )
        sample_weight = _normalised(sample_weight, w_max, scaled_sum, n_rows)
        sample_w = _native(_normalised(np.asarray(sample_w), w_max, scaled_sum, n_rows))
    user_init = mixture._check_initial_parameters(sample_X)
    em = _DaskEM(mixture, X, sample_weight)

    def initial_parameters(random_state):
        return mixture._initial_parameters(sample_X, sample_w, random_state, user_init)

    mixture._fit_trials(initial_parameters, em.run, X.dtype)
    return mixture


def map_rows(mixture, X, method):
    """``method`` ("predict", "predict_proba", "score_samples") of every chunk
    of a 2-D Dask array, lazily (``map_blocks``)."""
    require_dask(f"GaussianMixture.{method} on a Dask array")
    X = X.rechunk({1: -1})
    compute = getattr(mixture, method)
    if method == "predict_proba":
        return X.map_blocks(
            compute,
            dtype=np.result_type(X.dtype, mixture.means_.dtype),
            chunks=(X.chunks[0], (mixture.n_components,)),
        )
    dtype = np.int64 if method == "predict" else mixture.means_.dtype
    return X.map_blocks(compute, dtype=dtype, drop_axis=1)


# -- image segmenters ------------------------------------------------------------


def _read_as_batch(path):
    from ..io import read_image

    return [read_image(path)]


def _image_batches(X):
    """Delayed lists of images: one per chunk of an ``(N, H, W, C)`` Dask
    array, or one per path (read on the worker)."""
    import dask

    if is_path_list(X):
        read = dask.delayed(_read_as_batch, pure=True)
        return [read(str(p)) for p in X]
    X = _check_image_array(X)
    return [dask.delayed(list, pure=True)(b) for b in X.to_delayed().ravel()]


def _distinct_colours(images):
    """Distinct pixels of a list of images with their counts (on a worker)."""
    from .._validation import check_images
    from .segmenter import _distinct_colors

    images, _ = check_images(images)
    pixels = [im.reshape(-1, im.shape[2]) for im in images]
    pixels = np.concatenate(pixels) if len(pixels) > 1 else pixels[0]
    colours, counts, _ = _distinct_colors(pixels, None)
    return colours, counts, images[0].shape[2]


def _merge_colours(parts):
    """Union of per-chunk distinct colours, counts added (on the client)."""
    from .segmenter import _distinct_colors

    dtypes = {u.dtype for u, _, _ in parts}
    if len(dtypes) > 1:
        raise TypeError(
            f"the images have different dtypes ({sorted(map(str, dtypes))}); "
            "give images of one dtype"
        )
    channels = {c for _, _, c in parts}
    if len(channels) > 1:
        raise ValueError(f"the images have different channel counts {channels}")
    colours = np.concatenate([u for u, _, _ in parts])
    counts = np.concatenate([c for _, c, _ in parts])
    unique, _, index = _distinct_colors(colours, None, return_index=True)
    return unique, np.bincount(index, weights=counts, minlength=len(unique))


def _pixel_features(segmenter, images, dtype):
    """Features of every pixel of a list of images (on a worker)."""
    from .._validation import check_images

    images, _ = check_images(images)
    return np.concatenate([segmenter._pixel_features(im, dtype) for im in images])


def fit_segmenter(segmenter, X, k_values):
    """Fit a GMMImageSegmenter to a Dask array of images or a list of paths.

    Without spatial features, the distinct colours of every chunk are
    counted on the workers and merged on the client; the mixtures of every
    candidate k are fitted to them with their counts as weights, which is the
    in-memory fit exactly (the colours of ``uint8`` images fit in memory
    whatever the number of pixels). With spatial features every pixel
    differs: the pixel features are built chunk by chunk and the mixture of
    the one given k is fitted by distributed EM.
    """
    dask = require_dask("GMMImageSegmenter.fit on a Dask array or paths")
    batches = _image_batches(X)
    count = dask.delayed(_distinct_colours, pure=True)
    parts = dask.compute(*[count(b) for b in batches])
    colours, counts = _merge_colours(parts)
    n_channels = parts[0][2]
    dtype = np.dtype(np.float64 if colours.dtype == np.float64 else np.float32)
    segmenter._check_color_space(n_channels)
    if not segmenter._n_spatial():
        features = segmenter._color_features(colours, dtype)
        weights = counts.astype(dtype)
        return segmenter._fit_mixtures(features, weights, k_values, n_channels)

    import dask.array as da

    if len(k_values) != 1:
        raise ValueError(
            "with spatial_weight > 0 a Dask fit takes one k, not a search over "
            f"{k_values}: each candidate would be a distributed fit"
        )
    features = dask.delayed(_pixel_features, pure=True)
    n_features = n_channels if segmenter.color_space == "rgb" else 3
    n_pixels = [int(c.sum()) for _, c, _ in parts]
    blocks = [
        da.from_delayed(
            features(segmenter, b, dtype), shape=(n, n_features + 2), dtype=dtype
        )
        for b, n in zip(batches, n_pixels, strict=True)
    ]
    segmenter._check_k_fits(k_values[0], sum(n_pixels))
    # Chunks of the core's partition: EM sums as in memory (and starts as in
    # memory up to INIT_SAMPLE_ROWS pixels).
    rows = aligned_row_chunks(sum(n_pixels), max(n_pixels))
    mixture = segmenter._mixture(k_values[0])
    mixture.fit(da.concatenate(blocks).rechunk((rows, -1)))
    # The criterion needs a second distributed pass; with one k it chooses
    # nothing, so it is left undefined.
    return segmenter._set_fitted(mixture, n_channels, k_values, [np.nan])


def map_images(segmenter, X, method):
    """``method`` ("predict" or "recolor") of every chunk of an
    ``(N, H, W, C)`` Dask array of images, lazily (``map_blocks``)."""
    require_dask(f"GMMImageSegmenter.{method} on a Dask array")
    X = _check_image_array(X)
    compute = getattr(segmenter, method)
    if method == "predict":
        return X.map_blocks(compute, dtype=np.int64, drop_axis=3)
    return X.map_blocks(compute, dtype=X.dtype)


def _check_image_array(X):
    """An ``(N, H, W, C)`` Dask array chunked along N only."""
    if X.ndim != 4:
        raise ValueError(
            f"a Dask array of images must be 4-D (N, H, W, C), got {X.ndim}-D"
        )
    return X.rechunk({1: -1, 2: -1, 3: -1})


# -- folders of images -------------------------------------------------------------


def _output_path(path, output_dir, method):
    path = Path(path)
    folder = path.parent if output_dir is None else Path(output_dir)
    suffix = "_labels.png" if method == "predict" else "_recolor.png"
    return folder / f"{path.stem}{suffix}"


def _segment_file(estimator, path, out, method):
    """Read one image, segment it and write the result (on a worker)."""
    from ..io import read_image, write_image, write_label_map

    image = read_image(path)
    if method == "predict":
        write_label_map(out, np.asarray(estimator.predict(image)).astype(np.uint8))
    else:
        write_image(out, estimator.recolor(image))
    return str(out)


def predict_files(
    estimator, paths, *, output_dir=None, method="predict", progress=True
):
    """Segment image files on a Dask cluster and write the results to files.

    Each file is one task that reads the image, runs ``method`` and writes the
    result, so a worker holds one image at a time whatever the number of
    files. The tasks run on the current Dask scheduler: the distributed
    client if one is active, else dask's default (threads).

    Parameters
    ----------
    estimator : fitted skseg segmenter
        Any estimator with ``predict`` (and ``recolor`` for
        ``method="recolor"``) that takes one image.
    paths : str, path-like or list of them
        Image files, or a folder whose image files are all taken.
    output_dir : str or path-like, default=None
        Folder of the results (created if missing); None writes each result
        beside its image.
    method : {"predict", "recolor"}, default="predict"
        "predict" writes ``NAME_labels.png`` (palette PNG of the labels, at
        most 256); "recolor" writes ``NAME_recolor.png``.
    progress : bool, default=True
        Show a progress bar (``distributed.progress`` with a client, else
        ``dask.diagnostics.ProgressBar``).

    Returns
    -------
    written : list of str
        The files written, in the order of ``paths``.
    """
    dask = require_dask("predict_files")
    if method not in ("predict", "recolor"):
        raise ValueError(f"method must be 'predict' or 'recolor', got {method!r}")
    if not hasattr(estimator, method):
        raise TypeError(f"{type(estimator).__name__} has no {method} method")
    paths = _list_images(paths)
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    task = dask.delayed(_segment_file, pure=False)
    tasks = [
        task(estimator, str(p), str(_output_path(p, output_dir, method)), method)
        for p in paths
    ]
    client = _current_client()
    if client is not None:
        futures = client.compute(tasks)
        if progress:
            from distributed import progress as show_progress

            show_progress(futures)
        return client.gather(futures)
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return list(dask.compute(*tasks))
    return list(dask.compute(*tasks))


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}


def _list_images(paths):
    """The image files of a folder, or the given paths checked to exist."""
    if isinstance(paths, str | os.PathLike) and Path(paths).is_dir():
        paths = sorted(
            p
            for p in Path(paths).iterdir()
            if p.suffix.lower() in _IMAGE_SUFFIXES
            and not p.stem.endswith(("_labels", "_recolor"))
        )
        if not paths:
            raise ValueError("the folder has no image files")
        return paths
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise ValueError(f"no such image file: {missing[0]}")
    return [Path(p) for p in paths]


def _current_client():
    """The active distributed client, or None."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None
