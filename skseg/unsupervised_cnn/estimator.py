"""Unsupervised image segmentation by backpropagation (Kanezaki 2018; Kim,
Kanezaki and Tanaka 2020) as a scikit-learn estimator on torch."""

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._torch import require, resolve_device, torch_seed
from .._validation import (
    check_images,
    check_masks,
    check_positive_int,
    check_real,
    format_images,
    format_label_maps,
    image_to_float,
)
from ..color import mean_color_image

_METHODS = ("superpixel", "continuity")
_SUPERPIXELS = ("slic", "felzenszwalb")
# Settings of the papers' code: SLIC as in Kanezaki (2018); felzenszwalb as in
# the widely used fast variant of the same method.
_SUPERPIXEL_DEFAULTS = {
    "slic": {"n_segments": 10000, "compactness": 100.0},
    "felzenszwalb": {"scale": 32.0, "sigma": 0.5, "min_size": 64},
}
# Prediction needs no autograd buffers, so it fits several times the training
# budget in the same memory.
_PREDICT_BUDGET_FACTOR = 4
_PURPOSE = "UnsupervisedCNNSegmenter"


class UnsupervisedCNNSegmenter(BaseEstimator):
    """Unsupervised image segmentation by backpropagation.

    A small fully convolutional network (``n_conv`` blocks of conv 3x3, ReLU
    and batch norm, then conv 1x1 and batch norm, ``n_channels`` channels)
    gives every pixel a response over ``n_channels`` classes. Each iteration
    takes the argmax label of every pixel as its own training target and takes
    one SGD step on the cross-entropy toward it, so that the network groups
    pixels of similar features; training stops after ``max_iter`` iterations
    or once at most ``min_labels`` labels remain. Two published variants:

    * ``method="superpixel"`` (Kanezaki, ICASSP 2018): before the loss, the
      labels are replaced inside each superpixel (SLIC or Felzenszwalb, from
      scikit-image, computed once) by the superpixel's majority label, ties
      going to the smallest label. The refinement runs on the device in one
      vectorised pass.
    * ``method="continuity"`` (Kim, Kanezaki and Tanaka, IEEE TIP 2020): no
      superpixels; ``continuity_weight`` times the mean absolute difference
      between vertically and horizontally adjacent responses is added to the
      loss. Partial labels ("scribbles") given as ``y`` make it
      semi-supervised.

    The defaults are those of the papers' code (identical for both methods):
    100 channels, 2 conv 3x3 layers, SGD with learning rate 0.1 and momentum
    0.9, up to 1000 iterations, stop at 3 labels; SLIC with 10000 segments and
    compactness 100; continuity weight 1 and scribble weight 0.5 (the paper
    reports continuity weights from 1 to 5). A much faster preset, common for
    the superpixel method, is ``superpixels="felzenszwalb"`` (scale 32, sigma
    0.5, min_size 64), ``lr=0.05``, ``max_iter=64``.

    Parameters
    ----------
    method : {"superpixel", "continuity"}, default="superpixel"
        Which variant to train (see above).
    superpixels : {"slic", "felzenszwalb"}, default="slic"
        Superpixel algorithm of the superpixel method.
    superpixel_params : dict, default=None
        Keyword arguments for ``skimage.segmentation.slic`` or
        ``felzenszwalb``, overriding the defaults above (``n_segments=10000,
        compactness=100`` for SLIC; ``scale=32, sigma=0.5, min_size=64`` for
        Felzenszwalb). Superpixels are computed on the image as floats in
        ``[0, 1]``.
    n_channels : int, default=100
        Channels of every layer, hence the largest possible number of labels.
    n_conv : int, default=2
        Number of conv 3x3 blocks.
    lr : float, default=0.1
        SGD learning rate.
    momentum : float, default=0.9
        SGD momentum.
    max_iter : int, default=1000
        Maximum number of iterations (each one SGD step per training image).
    min_labels : int, default=3
        Training stops once the argmax labels of the training images take at
        most this many distinct values. With scribbles, the number of
        scribbled classes replaces it, as in the authors' code.
    continuity_weight : float, default=1.0
        Weight of the spatial continuity loss of the continuity method.
    scribble_weight : float, default=0.5
        Weight of the scribble loss of the continuity method with scribbles.
    ignore_index : int, default=255
        Value of unlabelled pixels in scribbles (255 in the authors' scribble
        files).
    use_scribbles : bool, default=True
        Whether the continuity method uses ``y`` in ``fit`` as scribbles. Set
        to False to ignore ``y``, for example in ``GridSearchCV``, which
        passes the ground truth to ``fit`` as well as to the scorer.
    max_pixels : int or None, default=1_000_000
        Pixel budget per training image. Training needs about 40 bytes per
        pixel and channel (about 4 KB per pixel, 4 GB per megapixel with 100
        channels). Larger images are trained on a copy downscaled to this
        budget (with anti-aliasing; scribbles by nearest neighbour), and
        predicted at full size up to four times the budget (prediction keeps
        no gradients), beyond which the prediction runs on a downscaled copy
        and its labels are enlarged by nearest neighbour. None: no limit.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; or ``"cpu"``,
        ``"cuda"``, ``"cuda:1"``...
    mixed_precision : bool, default=True
        On CUDA GPUs with bfloat16 support, run the layers up to the last batch
        norm in bfloat16 autocast (the last one, whose output gives the labels,
        stays in float32; bfloat16 needs no loss scaling, hence no extra host
        synchronisation). On CUDA, images and weights are always stored
        channels-last. The CPU always computes in float32, channels-first.
    random_state : int, RandomState instance or None, default=None
        Seeds the network's initial weights (the only random step). The same
        value and the same number of CPU threads give the same labels on the
        CPU; GPU kernels may differ from run to run in the last bits.
    verbose : bool or int, default=False
        Show a progress bar (tqdm) with the label count and the loss.

    Attributes
    ----------
    net_ : torch.nn.Module
        The trained network.
    n_input_channels_ : int
        Channels of the images seen in ``fit``.
    n_labels_ : int
        Number of distinct labels the trained network gives the training
        images (as trained, that is after any downscaling).
    n_iter_ : int
        Iterations run.
    history_ : dict
        ``"loss"`` (float array, mean loss over the images) and ``"n_labels"``
        (int array, distinct argmax labels over the images before refinement)
        at each iteration.
    device_ : str
        Device the network was trained on, for example ``"cpu"`` or
        ``"cuda:0"``.

    Notes
    -----
    Batch normalisation always uses the statistics of the image it is applied
    to, as in the authors' code, so a label depends on the whole image.

    A pickled segmenter holds its weights as numpy arrays; unpickling needs
    torch and rebuilds the network on the CPU. It moves to the device given by
    ``device`` at the next prediction.

    References
    ----------
    A. Kanezaki. Unsupervised image segmentation by backpropagation. ICASSP
    2018. W. Kim, A. Kanezaki and M. Tanaka. Unsupervised learning of image
    segmentation based on differentiable feature clustering. IEEE Transactions
    on Image Processing 29, 2020.

    Examples
    --------
    >>> from skimage.data import coffee
    >>> from skseg import UnsupervisedCNNSegmenter
    >>> seg = UnsupervisedCNNSegmenter(superpixels="felzenszwalb", lr=0.05,
    ...                                max_iter=16, random_state=0)
    >>> image = coffee()[::10, ::10]  # 40x60, to keep the example fast
    >>> labels = seg.fit_predict(image)
    >>> labels.shape
    (40, 60)
    """

    def __init__(
        self,
        method="superpixel",
        *,
        superpixels="slic",
        superpixel_params=None,
        n_channels=100,
        n_conv=2,
        lr=0.1,
        momentum=0.9,
        max_iter=1000,
        min_labels=3,
        continuity_weight=1.0,
        scribble_weight=0.5,
        ignore_index=255,
        use_scribbles=True,
        max_pixels=1_000_000,
        device="auto",
        mixed_precision=True,
        random_state=None,
        verbose=False,
    ):
        self.method = method
        self.superpixels = superpixels
        self.superpixel_params = superpixel_params
        self.n_channels = n_channels
        self.n_conv = n_conv
        self.lr = lr
        self.momentum = momentum
        self.max_iter = max_iter
        self.min_labels = min_labels
        self.continuity_weight = continuity_weight
        self.scribble_weight = scribble_weight
        self.ignore_index = ignore_index
        self.use_scribbles = use_scribbles
        self.max_pixels = max_pixels
        self.device = device
        self.mixed_precision = mixed_precision
        self.random_state = random_state
        self.verbose = verbose

    # -- public API ------------------------------------------------------------

    def fit(self, X, y=None):
        """Train the network on one image or a batch.

        Parameters
        ----------
        X : array-like or list of array-like
            One image ``(H, W[, C])``, an ``(N, H, W, C)`` batch or a list of
            images (sizes may differ, channel counts must agree). One network
            is trained on all of them.
        y : array-like or list of array-like, default=None
            Scribbles for ``method="continuity"``: one ``(H, W)`` label map per
            image, with class labels ``0..n_channels-1`` on scribbled pixels
            and ``ignore_index`` elsewhere. Ignored by the superpixel method
            and when ``use_scribbles=False``.

        Returns
        -------
        self : UnsupervisedCNNSegmenter
            The fitted segmenter.
        """
        images, _ = check_images(X)
        self._check_params()
        for i, im in enumerate(images):
            if im.shape[0] * im.shape[1] < 2:
                raise ValueError(
                    f"X[{i}] has a single pixel; batch normalisation needs at "
                    "least 2 pixels per image"
                )
        scribbles = None
        if self.method == "continuity" and self.use_scribbles and y is not None:
            scribbles = self._check_scribbles(y, images)
        torch = require("torch", _PURPOSE)
        device = resolve_device(self.device, _PURPOSE)
        amp = self._use_amp(torch, device)

        problems, stop_at = self._training_problems(torch, images, scribbles, device)
        from .network import build_net
        from .training import train

        net = build_net(
            torch,
            images[0].shape[2],
            self.n_channels,
            self.n_conv,
            torch_seed(self.random_state),
        )
        net = net.to(device)
        if device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)

        progress = None
        if self.verbose:
            tqdm = require("tqdm", _PURPOSE)
            progress = tqdm.tqdm(total=self.max_iter, desc=_PURPOSE, unit="it")
        try:
            losses, counts = train(
                torch,
                net,
                problems,
                n_classes=self.n_channels,
                lr=float(self.lr),
                momentum=float(self.momentum),
                max_iter=self.max_iter,
                stop_at=stop_at,
                continuity_weight=float(self.continuity_weight),
                scribble_weight=float(self.scribble_weight),
                amp=amp,
                progress=progress,
            )
        finally:
            if progress is not None:
                progress.close()

        self.net_ = net
        self.device_ = str(device)
        self.n_input_channels_ = images[0].shape[2]
        self.history_ = {"loss": losses, "n_labels": counts}
        self.n_iter_ = len(losses)
        self.n_labels_ = self._count_final_labels(torch, problems, amp)
        return self

    def predict(self, X, *, return_mean_color=False):
        """Label the pixels of one image or a batch with the trained network.

        Parameters
        ----------
        X : array-like or list of array-like
            One image or a batch, with the channel count seen in ``fit``
            (unseen images are fine).
        return_mean_color : bool, default=False
            Also return each image with every segment painted in its mean
            colour.

        Returns
        -------
        labels : ndarray of shape (H, W), or (N, H, W) array or list of them
            Labels ``0..n-1``, numbered in the order of the network's
            channels (so scribbled classes ``0..k-1`` keep their values when
            they all occur). A batch gives an array when ``X`` was an array,
            else a list (see :func:`skseg._validation.format_label_maps`).
        painted : ndarray or list of ndarray
            Only with ``return_mean_color``: images of the input's shape and
            dtype, every segment filled with its mean colour.
        """
        check_is_fitted(self, "net_")
        images, is_batch = check_images(X)
        if images[0].shape[2] != self.n_input_channels_:
            raise ValueError(
                f"X has {images[0].shape[2]} channels but the segmenter was "
                f"fitted on {self.n_input_channels_}"
            )
        torch = require("torch", _PURPOSE)
        device = resolve_device(self.device, _PURPOSE)
        amp = self._use_amp(torch, device)
        net = self._net_on(torch, device)
        budget = None
        if self.max_pixels is not None:
            budget = self.max_pixels * _PREDICT_BUDGET_FACTOR
        labels = [
            self._predict_one(torch, net, im, device, amp, budget) for im in images
        ]
        labels_out = format_label_maps(labels, is_batch, like=X)
        if not return_mean_color:
            return labels_out
        painted = [
            mean_color_image(im, lab) for im, lab in zip(images, labels, strict=True)
        ]
        return labels_out, format_images(painted, is_batch, like=X)

    def fit_predict(self, X, y=None, **predict_params):
        """Fit on ``X`` (and scribbles ``y``) and return its label maps.

        Parameters
        ----------
        X, y
            As in :meth:`fit`.
        **predict_params
            Passed to :meth:`predict` (``return_mean_color``).

        Returns
        -------
        labels : ndarray or list of ndarray
            As :meth:`predict` returns.
        """
        return self.fit(X, y).predict(X, **predict_params)

    # -- pickling --------------------------------------------------------------

    def __getstate__(self):
        # object.__getstate__ returns the instance's own __dict__: copy it
        # before replacing the network.
        state = dict(super().__getstate__())
        net = state.pop("net_", None)
        if net is not None:
            from .network import net_state_to_numpy

            state["_net_weights"] = net_state_to_numpy(net)
        return state

    def __setstate__(self, state):
        state = dict(state)
        weights = state.pop("_net_weights", None)
        super().__setstate__(state)
        if weights is not None:
            torch = require("torch", f"unpickling a fitted {_PURPOSE}")
            from .network import net_from_numpy_state

            self.net_ = net_from_numpy_state(
                torch, weights, self.n_input_channels_, self.n_channels, self.n_conv
            )

    # -- helpers ---------------------------------------------------------------

    def _check_params(self):
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}")
        if self.method == "superpixel":
            if self.superpixels not in _SUPERPIXELS:
                raise ValueError(
                    f"superpixels must be one of {_SUPERPIXELS}, got "
                    f"{self.superpixels!r}"
                )
            if self.superpixel_params is not None and not isinstance(
                self.superpixel_params, dict
            ):
                raise TypeError(
                    "superpixel_params must be a dict of keyword arguments or "
                    f"None, got {type(self.superpixel_params).__name__}"
                )
        check_positive_int(self.n_channels, "n_channels", minimum=2)
        check_positive_int(self.n_conv, "n_conv")
        check_positive_int(self.max_iter, "max_iter")
        check_positive_int(self.min_labels, "min_labels")
        if self.min_labels >= self.n_channels:
            raise ValueError(
                f"min_labels={self.min_labels} must be smaller than "
                f"n_channels={self.n_channels}"
            )
        check_real(self.lr, "lr", low=0.0, low_open=True)
        check_real(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        check_real(self.continuity_weight, "continuity_weight", low=0.0)
        check_real(self.scribble_weight, "scribble_weight", low=0.0, low_open=True)
        if isinstance(self.ignore_index, bool) or not isinstance(
            self.ignore_index, numbers.Integral
        ):
            raise TypeError(
                f"ignore_index must be an integer, got {self.ignore_index!r}"
            )
        if self.max_pixels is not None:
            check_positive_int(self.max_pixels, "max_pixels", minimum=2)

    def _check_scribbles(self, y, images):
        masks = check_masks(y, images, ignore_index=self.ignore_index, name="y")
        classes = set()
        for i, m in enumerate(masks):
            values = np.unique(m[m != self.ignore_index])
            if values.size and values[-1] >= self.n_channels:
                raise ValueError(
                    f"y[{i}] has scribble label {int(values[-1])}, but labels must "
                    f"be below n_channels={self.n_channels} (or equal "
                    f"ignore_index={self.ignore_index})"
                )
            classes.update(values.tolist())
        if not classes:
            raise ValueError(
                f"y has no scribbled pixels (every value is ignore_index="
                f"{self.ignore_index}); pass y=None for unsupervised training"
            )
        return masks

    def _training_problems(self, torch, images, scribbles, device):
        from .training import ImageProblem

        problems = []
        classes = set()
        for i, im in enumerate(images):
            image = image_to_float(im, np.float32).astype(np.float32, copy=False)
            scribble = None if scribbles is None else scribbles[i]
            if self.max_pixels is not None and _n_pixels(image) > self.max_pixels:
                shape = _budget_shape(image.shape[:2], self.max_pixels)
                image = _resize_image(image, shape)
                if scribble is not None:
                    scribble = _resize_nearest(scribble, shape)
            segments = None
            if self.method == "superpixel":
                segments = self._superpixels(image)
            if scribble is not None:
                classes.update(np.unique(scribble[scribble != self.ignore_index]))
            problems.append(
                ImageProblem(
                    torch,
                    image,
                    device,
                    device.type == "cuda",
                    self.n_channels,
                    segments=segments,
                    scribbles=scribble,
                    ignore_index=self.ignore_index,
                )
            )
        stop_at = len(classes) if classes else self.min_labels
        return problems, stop_at

    def _superpixels(self, image):
        """Superpixels of a float image, numbered ``0..n-1``."""
        segmentation = require("skimage.segmentation", _PURPOSE)
        params = dict(_SUPERPIXEL_DEFAULTS[self.superpixels])
        params.update(self.superpixel_params or {})
        algorithm = getattr(segmentation, self.superpixels)
        try:
            segments = algorithm(image, channel_axis=-1, **params)
        except TypeError as exc:
            raise ValueError(
                f"superpixel_params={self.superpixel_params!r} are not accepted by "
                f"skimage.segmentation.{self.superpixels}: {exc}"
            ) from exc
        _, inverse = np.unique(segments, return_inverse=True)
        return inverse.reshape(segments.shape)

    def _count_final_labels(self, torch, problems, amp):
        from .refinement import argmax_channels, labels_present
        from .training import forward

        present = None
        with torch.inference_mode():
            for problem in problems:
                labels = argmax_channels(forward(torch, self.net_, problem, amp))
                present = labels_present(
                    torch, labels.view(-1), self.n_channels, out=present
                )
        return int(present.sum())

    def _use_amp(self, torch, device):
        return (
            bool(self.mixed_precision)
            and device.type == "cuda"
            and torch.cuda.is_bf16_supported()
        )

    def _net_on(self, torch, device):
        """The network on ``device`` (moved there once, after unpickling or a
        change of the ``device`` parameter)."""
        first = next(self.net_.parameters())
        if first.device != device:
            self.net_ = self.net_.to(device)
        if device.type == "cuda":
            self.net_ = self.net_.to(memory_format=torch.channels_last)
        return self.net_

    def _predict_one(self, torch, net, image, device, amp, budget):
        from .refinement import argmax_channels, consecutive_labels
        from .training import ImageProblem, forward

        full_shape = image.shape[:2]
        image = image_to_float(image, np.float32).astype(np.float32, copy=False)
        if budget is not None and _n_pixels(image) > budget:
            image = _resize_image(image, _budget_shape(full_shape, budget))
        if _n_pixels(image) < 2:
            raise ValueError(
                "cannot predict a single-pixel image: batch normalisation needs "
                "at least 2 pixels"
            )
        problem = ImageProblem(
            torch, image, device, device.type == "cuda", self.n_channels
        )
        with torch.inference_mode():
            labels = argmax_channels(forward(torch, net, problem, amp)).view(-1)
            labels = consecutive_labels(torch, labels, self.n_channels)
            labels = labels.cpu().numpy().reshape(image.shape[:2])
        if labels.shape != full_shape:
            labels = _resize_nearest(labels, full_shape)
        return labels


def _n_pixels(image):
    return image.shape[0] * image.shape[1]


def _budget_shape(shape, budget):
    """The largest ``(h, w)`` with the aspect ratio of ``shape`` and at most
    ``budget`` pixels."""
    height, width = shape
    scale = math.sqrt(budget / (height * width))
    return max(1, int(height * scale)), max(1, int(width * scale))


def _resize_image(image, shape):
    transform = require("skimage.transform", _PURPOSE)
    out = transform.resize(image, (*shape, image.shape[2]), order=1, anti_aliasing=True)
    return out.astype(np.float32, copy=False)


def _resize_nearest(labels, shape):
    """Nearest-neighbour resampling of a label map (labels are never
    interpolated)."""
    height, width = labels.shape
    rows = (np.arange(shape[0]) + 0.5) * height / shape[0]
    cols = (np.arange(shape[1]) + 0.5) * width / shape[1]
    rows = np.minimum(rows.astype(np.int64), height - 1)
    cols = np.minimum(cols.astype(np.int64), width - 1)
    return labels[rows[:, None], cols[None, :]]
