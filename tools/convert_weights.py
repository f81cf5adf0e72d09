"""Convert torchvision/timm/mmpretrain/mmdet weights into a hashed backbone checkpoint.

    python tools/convert_weights.py torchvision resnext50_32x4d-7cdf4587.pth \
        checkpoints/resnext50_32x4d.pth --arch 50,32,4

writes checkpoints/resnext50_32x4d-<sha256[:8]>.pth, for a config's
``init_cfg=dict(type='Pretrained', checkpoint=...)``. Nothing is written when the weights are
not a complete ResNet/ResNeXt backbone or do not match ``--arch``.
"""
import argparse

from resnext_det.weights import (SOURCES, WeightsError, convert, infer_arch, read_checkpoint,
                                 save_backbone_checkpoint, verify_against)


def parse_arch(text: str) -> dict:
    try:
        depth, groups, base_width = (int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not depth,groups,base_width (e.g. 101,32,4)') from None
    return dict(depth=depth, groups=groups, base_width=base_width)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('source', choices=SOURCES, help='library the weights come from')
    parser.add_argument('src', help='checkpoint to convert')
    parser.add_argument('dst', help='output path; -<sha256[:8]> is added before .pth')
    parser.add_argument('--arch', type=parse_arch, metavar='DEPTH,GROUPS,BASE_WIDTH',
                        help='refuse weights of any other architecture, e.g. 101,32,4')
    args = parser.parse_args()
    try:
        state_dict = convert(args.source, read_checkpoint(args.src))
        arch = verify_against(state_dict, args.arch) if args.arch else infer_arch(state_dict)
        path = save_backbone_checkpoint(state_dict, args.dst,
                                        dict(source=args.src, format=args.source))
    except (WeightsError, FileExistsError, FileNotFoundError) as exc:
        parser.exit(2, f'error: {exc}\n')
    print(f"{path}: depth={arch['depth']} groups={arch['groups']} "
          f"base_width={arch['base_width']} base_channels={arch['base_channels']}")


if __name__ == '__main__':
    main()
