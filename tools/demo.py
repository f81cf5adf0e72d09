"""The main job on the bundled demo data (`make demo`): generate the data, pretrain the slim
ResNeXt-50 on the classification crops, export its backbone, train Faster R-CNN from it,
evaluate with COCO metrics, draw predictions, print the table.

    python tools/demo.py [--work-dir work_dirs/demo] [--compare] [--scratch] [--fast]

--compare  also runs the slim ResNet-50 of the same depth and prints both side by side;
--scratch  also trains the detector from scratch, to show what pretraining brings;
--fast     also trains the ResNeXt detector on the fast path (same export), to show that it
           learns as well as the plain path.
Every step is one of the project's own CLIs, run as a user would run it.
"""
import argparse
import glob
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# name: (classification config, detection config from the export, detection from scratch)
ARCHS = {
    'r50_slim': ('configs/demo/resnet50_slim_cls_demo.py',
                 'configs/demo/faster_rcnn_r50_slim_pretrained_demo.py',
                 'configs/demo/faster_rcnn_r50_slim_demo.py'),
    'x50_8x4d_slim': ('configs/demo/resnext50_8x4d_slim_cls_demo.py',
                      'configs/demo/faster_rcnn_x50_8x4d_slim_pretrained_demo.py',
                      'configs/demo/faster_rcnn_x50_8x4d_slim_demo.py'),
}
FAST = {'x50_8x4d_slim': 'configs/demo/faster_rcnn_x50_8x4d_slim_pretrained_fast_demo.py'}


def run(step, args):
    print(f'\n==> {step}: {" ".join(args)}', flush=True)
    start = time.time()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)
    print(f'==> {step} done in {time.time() - start:.0f}s', flush=True)


def last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:  # written by mmengine
        return f.read().strip()


def detect(name, config, work_dir, extra=()):
    run(f'train {name}', ['tools/train.py', config, '--work-dir', work_dir, *extra])
    run(f'test {name}', ['tools/test.py', config, last_checkpoint(work_dir), '--work-dir',
                         work_dir, '--show-dir', 'predictions', *extra])
    return work_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--compare', action='store_true',
                        help='also run the slim ResNet-50 baseline and compare')
    parser.add_argument('--scratch', action='store_true',
                        help='also train the detector from scratch (no pretraining)')
    parser.add_argument('--fast', action='store_true',
                        help='also train the ResNeXt detector on the fast path')
    args = parser.parse_args()
    start = time.time()
    run('demo data', ['tools/make_demo_data.py', '--out', 'data/demo'])
    names = list(ARCHS) if args.compare else ['x50_8x4d_slim']
    work_dirs = []
    for name in names:
        cls_config, det_config, scratch_config = ARCHS[name]
        cls_dir = osp.join(args.work_dir, f'{name}_cls')
        run(f'pretrain {name}', ['tools/train.py', cls_config, '--work-dir', cls_dir])
        best = sorted(glob.glob(osp.join(cls_dir, 'best_accuracy_top1_epoch_*.pth')))[-1]
        backbone = osp.join(args.work_dir, 'backbones', f'{name}.pth')
        # --force: a rerun pretrains again and replaces its own previous export
        run(f'export {name}', ['tools/export_backbone.py', best, backbone, '--force'])
        from_export = ['--cfg-options', f'model.backbone.init_cfg.checkpoint={backbone}']
        work_dirs.append(detect(name, det_config, osp.join(args.work_dir, name), from_export))
        if args.fast and name in FAST:
            work_dirs.append(detect(f'{name} fast path', FAST[name],
                                    osp.join(args.work_dir, f'{name}_fast'), from_export))
        if args.scratch:
            work_dirs.append(detect(f'{name} from scratch', scratch_config,
                                    osp.join(args.work_dir, f'{name}_scratch')))
    run('compare', ['tools/compare_results.py', *work_dirs, '--plot',
                    osp.join(args.work_dir, 'curves.png')])
    # the trained detector on a few images, as on your own: tools/infer.py
    infer_dir = osp.join(args.work_dir, 'infer')
    run('predict on images', ['tools/infer.py', 'data/demo/coco/val/00000[1-4].jpg',
                              ARCHS['x50_8x4d_slim'][1],
                              last_checkpoint(osp.join(args.work_dir, 'x50_8x4d_slim')),
                              '--out-dir', infer_dir])
    print(f'\ndemo finished in {(time.time() - start) / 60:.1f} min; predictions drawn under '
          f'{args.work_dir}/*/<timestamp>/predictions')
    print(f'tools/infer.py on 4 val images: drawn in {infer_dir}/vis, JSON in {infer_dir}/preds')


if __name__ == '__main__':
    main()
