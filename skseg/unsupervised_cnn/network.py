"""The small fully convolutional network of Kanezaki (2018) and Kim, Kanezaki
and Tanaka (2020), built and initialised reproducibly. Torch is passed in by
the caller: this module does not import it."""

import math

import numpy as np


def build_net(torch, in_channels, n_channels, n_conv, seed):
    """Build the response network.

    ``n_conv`` blocks of conv 3x3 -> ReLU -> batch norm (the first from the
    image's channels), then conv 1x1 -> batch norm, all with ``n_channels``
    channels, as in the authors' code. Batch norm always normalises with the
    statistics of the image at hand (``track_running_stats=False``): the
    reference never switches to running statistics, the similarity target is
    the argmax of this normalised response, and prediction then leaves the
    network unchanged.

    Weights are drawn with PyTorch's default initialisation from a private
    ``torch.Generator`` seeded with ``seed`` on the CPU, so the global random
    state is untouched and the same seed gives the same network on any device.
    """
    nn = torch.nn
    layers = []
    channels_in = in_channels
    for _ in range(n_conv):
        layers += [
            nn.Conv2d(channels_in, n_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(n_channels, track_running_stats=False),
        ]
        channels_in = n_channels
    layers += [
        nn.Conv2d(n_channels, n_channels, kernel_size=1),
        nn.BatchNorm2d(n_channels, track_running_stats=False),
    ]
    net = nn.Sequential(*layers)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for module in net:
            if isinstance(module, nn.Conv2d):
                # nn.Conv2d.reset_parameters, with our generator.
                nn.init.kaiming_uniform_(
                    module.weight, a=math.sqrt(5), generator=generator
                )
                fan_in = module.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
    return net


def net_state_to_numpy(net):
    """The network's weights as a dict of numpy arrays (copied to the host)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def net_from_numpy_state(torch, state, in_channels, n_channels, n_conv):
    """Rebuild a network on the CPU from :func:`net_state_to_numpy`'s output."""
    net = build_net(torch, in_channels, n_channels, n_conv, seed=0)
    net.load_state_dict(
        {k: torch.from_numpy(np.asarray(v).copy()) for k, v in state.items()}
    )
    return net
