"""The U-Net network (torch ``nn.Module``) behind :class:`skseg.UNetSegmenter`.

Imported only once torch is needed, so this module may import torch at load.
"""

from .._torch import require

torch = require("torch", "UNetSegmenter")
nn = torch.nn


def _conv_block(in_channels, out_channels, n_convs, batch_norm):
    layers = []
    for i in range(n_convs):
        layers.append(
            nn.Conv2d(
                in_channels if i == 0 else out_channels,
                out_channels,
                kernel_size=3,
                padding=1,
                # A bias before batch norm is cancelled by its mean subtraction.
                bias=not batch_norm,
            )
        )
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _UpStep(nn.Module):
    """Double the resolution, concatenate the skip connection, convolve."""

    def __init__(self, in_channels, out_channels, n_convs, batch_norm, upsampling):
        super().__init__()
        if upsampling == "transpose":
            self.up = nn.ConvTranspose2d(
                in_channels, out_channels, kernel_size=2, stride=2
            )
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, kernel_size=1),
            )
        self.block = _conv_block(2 * out_channels, out_channels, n_convs, batch_norm)

    def forward(self, x, skip):
        return self.block(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """Classic U-Net (Ronneberger et al. 2015) with same-padded convolutions.

    Parameters
    ----------
    in_channels, out_channels : int
        Image channels and output logits (1 for binary problems).
    depth : int
        Number of 2x down-sampling steps; inputs must have sides divisible by
        ``2**depth`` (the estimator pads them).
    init_features : int
        Feature maps at full resolution; they double at each level.
    convs_per_level : int
        3x3 convolutions in each block.
    batch_norm : bool
        Batch normalisation after every convolution.
    upsampling : {"transpose", "bilinear"}
        Transposed 2x2 convolution, or bilinear up-sampling then a 1x1 conv.
    dropout : float
        Channel dropout probability after the deepest encoder block and the
        bottleneck, where the original paper puts it.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        *,
        depth,
        init_features,
        convs_per_level,
        batch_norm,
        upsampling,
        dropout,
    ):
        super().__init__()
        features = [init_features * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList()
        previous = in_channels
        for level in range(depth):
            self.encoders.append(
                _conv_block(previous, features[level], convs_per_level, batch_norm)
            )
            previous = features[level]
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _conv_block(
            previous, features[depth], convs_per_level, batch_norm
        )
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.decoders = nn.ModuleList(
            _UpStep(
                features[level + 1],
                features[level],
                convs_per_level,
                batch_norm,
                upsampling,
            )
            for level in reversed(range(depth))
        )
        self.head = nn.Conv2d(features[0], out_channels, kernel_size=1)

    def forward(self, x):
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x)
            if i == len(self.encoders) - 1:
                x = self.dropout(x)
            skips.append(x)
            x = self.pool(x)
        x = self.dropout(self.bottleneck(x))
        for decoder, skip in zip(self.decoders, reversed(skips), strict=True):
            x = decoder(x, skip)
        return self.head(x)


class _ResidualUnit(nn.Module):
    """``n_convs`` 3x3 convolutions (the first with ``stride``) plus a shortcut
    (pooling and a 1x1 convolution where the shape changes), as in ResNet and
    MONAI's ``ResidualUnit``."""

    def __init__(self, in_channels, out_channels, n_convs, batch_norm, stride=1):
        super().__init__()
        layers = []
        for i in range(n_convs):
            layers.append(
                nn.Conv2d(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    kernel_size=3,
                    stride=stride if i == 0 else 1,
                    padding=1,
                    bias=not batch_norm,
                )
            )
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            if i < n_convs - 1:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        elif stride == 1:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1)
        else:
            # Average pooling then a 1x1 convolution (ResNet-D): every input
            # pixel counts, and torch 2.13's channels-last backward of a
            # strided 1x1 convolution with few (3, 4, 8) input channels
            # corrupts the heap on the CPU.
            self.shortcut = nn.Sequential(
                nn.AvgPool2d(stride), nn.Conv2d(in_channels, out_channels, 1)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


def _up(in_channels, out_channels, upsampling):
    if upsampling == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(in_channels, out_channels, kernel_size=1),
    )


class ResidualUNet(nn.Module):
    """A U-Net whose levels are residual units that down-sample first.

    As MONAI's ``UNet``: the first convolution of every encoder level has
    stride 2, so nothing but the last up-sampling runs at full resolution and
    most of the work runs at a quarter of the pixels or less. Encoder level
    ``i`` outputs ``init_features * 2**i`` maps at ``1 / 2**(i + 1)`` of the
    input's side; the bottleneck (stride 1, ``init_features * 2**depth``
    maps) and each decoder step concatenate the encoder's output of their
    resolution, up-sample 2x and run a residual unit; the last step's
    up-sampling (the head) gives the logits at full resolution, each pixel its
    own weights of the half-resolution features under it.

    Parameters
    ----------
    in_channels, out_channels, depth, init_features, batch_norm, upsampling
        As in :class:`UNet`.
    convs_per_level : int
        3x3 convolutions per residual unit.
    dropout : float
        Channel dropout on the deepest encoder level's output and the
        bottleneck.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        *,
        depth,
        init_features,
        convs_per_level,
        batch_norm,
        upsampling,
        dropout,
    ):
        super().__init__()
        features = [init_features * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList()
        previous = in_channels
        for level in range(depth):
            self.encoders.append(
                _ResidualUnit(
                    previous, features[level], convs_per_level, batch_norm, stride=2
                )
            )
            previous = features[level]
        self.bottleneck = _ResidualUnit(
            previous, features[depth], convs_per_level, batch_norm
        )
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.decoders = nn.ModuleList()
        previous = features[depth]
        for level in reversed(range(1, depth)):
            # Step ``level`` reads 1 / 2**(level + 1) and outputs 1 / 2**level.
            width = features[level - 1]
            self.decoders.append(
                nn.Sequential(
                    _up(previous + features[level], width, upsampling),
                    _ResidualUnit(width, width, convs_per_level, batch_norm),
                )
            )
            previous = width
        self.head = _up(previous + features[0], out_channels, upsampling)

    def forward(self, x):
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
        x = skips[-1] = self.dropout(x)
        x = self.dropout(self.bottleneck(x))
        for decoder, skip in zip(self.decoders, reversed(skips[1:]), strict=True):
            x = decoder(torch.cat([x, skip], dim=1))
        return self.head(torch.cat([x, skips[0]], dim=1))


def receptive_radius(depth, convs_per_level, upsampling, architecture="classic"):
    """Half-width in pixels of the region of the input that one output pixel
    sees, rounded up, plus one down-sampling cell of slack for the pooling grid.

    Tiled prediction matches whole-image prediction exactly when the pixels a
    tile contributes lie at least this far from the tile's inner edges.
    """
    size = 1
    if architecture == "residual":
        # Every 3x3 convolution widens the field by 2 pixels of its input's
        # spacing: level i's first one (stride 2) reads spacing 2**i, the
        # rest spacing 2**(i + 1); the decoder's units run at spacing 2**level
        # (level >= 1; the head is an up-sampling).
        for level in range(depth):
            size += 2 * 2**level + 2 * (convs_per_level - 1) * 2 ** (level + 1)
        size += 2 * convs_per_level * 2**depth  # bottleneck
        for level in range(depth):
            if level > 0:
                size += 2 * convs_per_level * 2**level
            if upsampling == "bilinear":
                size += 2 ** (level + 1)
        return (size + 1) // 2 + 2**depth
    for level in range(depth):
        size += 2 * convs_per_level * 2**level  # encoder 3x3 convs
        size += 2**level  # 2x2 max pooling
    size += 2 * convs_per_level * 2**depth  # bottleneck
    for level in range(depth):
        size += 2 * convs_per_level * 2**level  # decoder 3x3 convs
        if upsampling == "bilinear":
            size += 2 ** (level + 1)
    return (size + 1) // 2 + 2**depth


class _DecoderStep(nn.Module):
    """Double the resolution, concatenate the encoder's feature map of that
    resolution (if any), convolve."""

    def __init__(
        self, in_channels, skip_channels, out_channels, n_convs, batch_norm, upsampling
    ):
        super().__init__()
        if upsampling == "transpose":
            self.up = nn.ConvTranspose2d(
                in_channels, out_channels, kernel_size=2, stride=2
            )
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, kernel_size=1),
            )
        self.block = _conv_block(
            out_channels + skip_channels, out_channels, n_convs, batch_norm
        )

    def forward(self, x, skip=None):
        x = self.up(x)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.block(x)


class EncoderUNet(nn.Module):
    """A U-Net decoder on a (pretrained) encoder's feature maps.

    The encoder (:mod:`skseg.unet.encoders`) gives feature maps at strides
    2 .. ``2**depth``. From the deepest, each decoder step doubles the
    resolution and concatenates the encoder's map of that stride; the last step
    reaches full resolution, where there is no encoder map. The step that
    outputs stride ``2**level`` has ``init_features * 2**level`` channels.

    Parameters
    ----------
    encoder : str
        One of :data:`skseg.unet.encoders.ENCODERS`.
    in_channels, out_channels : int
    depth : int
        Encoder stages used (1 to 5); inputs must have sides divisible by
        ``2**depth`` (the estimator pads them).
    init_features, convs_per_level, batch_norm, upsampling, dropout
        As in :class:`UNet`; ``dropout`` acts on the deepest encoder map.
    """

    def __init__(
        self,
        encoder,
        in_channels,
        out_channels,
        *,
        depth,
        init_features,
        convs_per_level,
        batch_norm,
        upsampling,
        dropout,
    ):
        super().__init__()
        from .encoders import build_encoder

        self.encoder = build_encoder(encoder, in_channels, depth)
        skips = self.encoder.out_channels
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.decoders = nn.ModuleList()
        previous = skips[-1]
        for level in reversed(range(depth)):
            width = init_features * 2**level
            skip = skips[level - 1] if level > 0 else 0
            self.decoders.append(
                _DecoderStep(
                    previous, skip, width, convs_per_level, batch_norm, upsampling
                )
            )
            previous = width
        self.head = nn.Conv2d(init_features, out_channels, kernel_size=1)

    def forward(self, x):
        features = self.encoder(x)
        x = self.dropout(features[-1])
        skips = [None, *features[:-1]]
        for decoder, skip in zip(self.decoders, reversed(skips), strict=True):
            x = decoder(x, skip)
        return self.head(x)
