# The demo detector on the fast path, to check that it learns as well as the plain one
# (`python tools/demo.py --fast`). On CPU that is channels_last and the frozen BN folded; AMP
# runs on GPUs only (mmengine), add it there with
#   --cfg-options optim_wrapper.type=AmpOptimWrapper optim_wrapper.dtype=bfloat16
# (tools/demo.py --fast does so where torch sees a GPU)
_base_ = './faster_rcnn_x50_8x4d_slim_pretrained_demo.py'
model = dict(backbone=dict(channels_last=True, fold_frozen_bn=True))
env_cfg = dict(cudnn_benchmark=True)
