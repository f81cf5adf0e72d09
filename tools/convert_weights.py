"""Convert torchvision/timm/mmpretrain/mmdet weights into a backbone checkpoint for the configs.

    python tools/convert_weights.py torchvision resnext50_32x4d-7cdf4587.pth \
        checkpoints/resnext50_32x4d.pth --arch 50,32,4
    python tools/convert_weights.py timm resnext50d_32x4d.safetensors \
        checkpoints/resnext50d_32x4d.pth --arch 50,32,4,d

writes exactly the output path given, the file a config's
``init_cfg=dict(type='Pretrained', checkpoint=...)`` names, and prints it with the inferred
architecture, then the weights' sha256 (stored in the file's meta['sha256']) and the file's
own sha256. ``--publish`` names the file ``<stem>-<sha256 of the file[:8]>.pth`` instead, as
mmdet's publish_model does. An output file with other content is not overwritten without
``--force``. Nothing is written when the weights are not a complete ResNet/ResNeXt backbone or
do not match ``--arch``. Input: any torch checkpoint, or a ``.safetensors`` file.
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse

from resnext_det.errors import user_errors
from resnext_det.weights import (
    SOURCES,
    convert,
    read_checkpoint,
    save_backbone_checkpoint,
    verify_against,
)

# the 4th --arch field: the stem and shortcut of the ResNet variants of Bag of Tricks
# (He et al. 2019), as mmdet/mmpretrain (ResNetV1c/V1d) and timm (resnet50c/d) name them
VARIANTS = {
    'b': dict(deep_stem=False, avg_down=False),  # 7x7 stem: torchvision, mmdet ResNe(X)t
    'c': dict(deep_stem=True, avg_down=False),   # three 3x3 convs
    'd': dict(deep_stem=True, avg_down=True),    # + avg-pool before the shortcut's 1x1
}
ARCH_HELP = ('refuse weights of any other architecture: DEPTH,GROUPS,BASE_WIDTH[,VARIANT], '
             'e.g. 101,32,4 or 50,1,64 (ResNet-50); VARIANT b (default): 7x7 stem, c: deep '
             'stem, d: deep stem and avg-down shortcuts (ResNet-D: timm resnet50d/'
             'resnext50d_32x4d, mmpretrain ResNetV1d)')


def parse_arch(text: str) -> dict:
    fields = text.split(',')
    try:
        if len(fields) not in (3, 4) or (len(fields) == 4 and fields[3] not in VARIANTS):
            raise ValueError
        depth, groups, base_width = (int(v) for v in fields[:3])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not DEPTH,GROUPS,BASE_WIDTH[,VARIANT] with VARIANT one of '
            f'{", ".join(VARIANTS)} (e.g. 101,32,4 or 50,32,4,d)') from None
    return dict(depth=depth, groups=groups, base_width=base_width,
                **VARIANTS[fields[3] if len(fields) == 4 else 'b'])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('source', choices=SOURCES, help='library the weights come from')
    parser.add_argument('src', help='checkpoint to convert (.pth/.pt/.bin or .safetensors)')
    parser.add_argument('dst', help='output path, written as given (see --publish)')
    parser.add_argument('--arch', type=parse_arch, metavar='DEPTH,GROUPS,BASE_WIDTH[,VARIANT]',
                        help=ARCH_HELP)
    parser.add_argument('--publish', action='store_true',
                        help='name the output <dst minus .pth>-<sha256 of the file[:8]>.pth')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an output file that holds other content')
    args = parser.parse_args()
    with user_errors(OSError):  # OSError: a missing input, an unwritable output
        state_dict = convert(args.source, read_checkpoint(args.src))
        if args.arch:
            verify_against(state_dict, args.arch)
        saved = save_backbone_checkpoint(state_dict, args.dst,
                                         dict(source=args.src, format=args.source),
                                         publish=args.publish, force=args.force)
    print(saved.report())
    arch = saved.meta['arch']
    # what the configs here (ResNeXt's defaults) do not build: the config must ask for it
    options = [f'model.backbone.{k}=True' for k in ('deep_stem', 'avg_down') if arch[k]]
    if arch['stem_channels'] != arch['base_channels']:
        options.append(f"model.backbone.stem_channels={arch['stem_channels']}")
    if options:
        print(f"not the stem the configs here build: train with --cfg-options "
              f"{' '.join(options)} (or set them in the config's backbone)")


if __name__ == '__main__':
    main()
