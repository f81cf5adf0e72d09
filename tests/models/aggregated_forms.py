"""Reference modules for the paper's equivalent forms of a ResNeXt block (Fig. 3).

The backbone uses form (c), one grouped 3x3 convolution. These modules rebuild the same block as

* form (a), split-transform-merge: ``y = relu(x + BN3(sum_i conv3_i(T_i(x))))`` with C separate
  paths ``T_i = relu . BN2_i . conv2_i . relu . BN1_i . conv1_i``;
* form (b), early concatenation: ``y = relu(x + BN3(conv3(concat_i T_i(x))))``.

They are equal to form (c) because BN and ReLU act per channel (so splitting channels into paths
changes nothing, batch statistics included), a grouped conv is C independent convs on channel
slices, and a 1x1 conv on a concatenation is the sum of 1x1 convs on the slices. They exist to
document and test that claim (tests/models/test_resnext.py): each is built from a form-(c)
``Bottleneck``, whose weights it maps, e.g. ``SplitTransformMerge(block)``; they are C times
slower.
"""
import copy

import torch
import torch.nn as nn

from resnext_det.models import Bottleneck


def _bn_slice(bn: nn.BatchNorm2d, start: int, stop: int) -> nn.BatchNorm2d:
    out = nn.BatchNorm2d(stop - start, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                         track_running_stats=bn.track_running_stats)
    out.load_state_dict({
        k: (v[start:stop] if v.dim() else v).clone() for k, v in bn.state_dict().items()
    })
    out.train(bn.training)
    return out


def _conv_like(conv: nn.Conv2d, weight: torch.Tensor, groups: int = 1) -> nn.Conv2d:
    out = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], conv.kernel_size,
                    stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                    groups=groups, bias=False)
    out.weight.data.copy_(weight)
    return out


def _check_plain(block: Bottleneck) -> int:
    plugins = block.with_plugins and any(
        getattr(block, f'after_conv{k}_plugin_names') for k in (1, 2, 3))
    if not isinstance(block.norm1, nn.BatchNorm2d) or plugins:
        raise ValueError('aggregated forms are defined for plain BN bottlenecks without plugins')
    return block.conv2.groups


class _Paths(nn.Module):
    """The C transformations T_i up to (not including) the last 1x1 conv."""

    def __init__(self, block: Bottleneck):
        super().__init__()
        groups = _check_plain(block)
        d = block.conv2.out_channels // groups
        self.paths = nn.ModuleList()
        for i in range(groups):
            s = slice(i * d, (i + 1) * d)
            self.paths.append(nn.Sequential(
                _conv_like(block.conv1, block.conv1.weight[s]),
                _bn_slice(block.norm1, s.start, s.stop), nn.ReLU(),
                _conv_like(block.conv2, block.conv2.weight[s]),
                _bn_slice(block.norm2, s.start, s.stop), nn.ReLU()))
        self.width = d


class SplitTransformMerge(_Paths):
    """Form (a): C full paths, each ending in its own 1x1 conv, summed."""

    def __init__(self, block: Bottleneck):
        super().__init__(block)
        d = self.width
        self.expands = nn.ModuleList(
            _conv_like(block.conv3, block.conv3.weight[:, i * d:(i + 1) * d])
            for i in range(len(self.paths)))
        self.norm3 = copy.deepcopy(block.norm3)
        self.downsample = copy.deepcopy(block.downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        aggregated = sum(expand(path(x)) for path, expand in zip(self.paths, self.expands))
        identity = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.norm3(aggregated) + identity)


class EarlyConcatenation(_Paths):
    """Form (b): C paths up to the 3x3, concatenated, then one 1x1 conv."""

    def __init__(self, block: Bottleneck):
        super().__init__(block)
        self.conv3 = _conv_like(block.conv3, block.conv3.weight)
        self.norm3 = copy.deepcopy(block.norm3)
        self.downsample = copy.deepcopy(block.downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        concatenated = torch.cat([path(x) for path in self.paths], dim=1)
        identity = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.norm3(self.conv3(concatenated)) + identity)
