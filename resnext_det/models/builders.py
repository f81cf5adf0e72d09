"""One builder per variant (torchvision style). Keyword arguments go to :class:`ResNeXt`."""
from .resnext import ResNeXt


def resnet50(**kwargs) -> ResNeXt:
    return ResNeXt(depth=50, groups=1, base_width=64, **kwargs)


def resnet101(**kwargs) -> ResNeXt:
    return ResNeXt(depth=101, groups=1, base_width=64, **kwargs)


def resnet152(**kwargs) -> ResNeXt:
    return ResNeXt(depth=152, groups=1, base_width=64, **kwargs)


def resnext50_32x4d(**kwargs) -> ResNeXt:
    return ResNeXt(depth=50, groups=32, base_width=4, **kwargs)


def resnext101_32x4d(**kwargs) -> ResNeXt:
    return ResNeXt(depth=101, groups=32, base_width=4, **kwargs)


def resnext101_32x8d(**kwargs) -> ResNeXt:
    return ResNeXt(depth=101, groups=32, base_width=8, **kwargs)


def resnext101_64x4d(**kwargs) -> ResNeXt:
    return ResNeXt(depth=101, groups=64, base_width=4, **kwargs)


def resnext152_32x4d(**kwargs) -> ResNeXt:
    return ResNeXt(depth=152, groups=32, base_width=4, **kwargs)
