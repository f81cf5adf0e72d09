"""Environment report in the shape of mmdet's `collect_env`, plus what this project needs."""
import platform
from collections import OrderedDict


def cpu_name() -> str:
    """The CPU model ('AMD EPYC ...'), for reports that name the machine they measured on."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mmcv_ops():
    """(compiled ops importable, CUDA version the ops were built with or None)."""
    try:
        from mmcv.ops import get_compiling_cuda_version
    except Exception:  # mmcv-lite, or a broken build
        return False, None
    cuda = get_compiling_cuda_version()
    return True, (None if cuda in ('not available', '', None) else cuda)


def collect_env():
    """Return an ordered dict of versions: mmengine's report plus mmcv ops, mmdet, resnext_det."""
    import torchvision
    from mmengine.utils.dl_utils import collect_env as mmengine_collect_env

    env = OrderedDict(mmengine_collect_env())
    env['TorchVision'] = torchvision.__version__
    try:
        import mmcv
        env['MMCV'] = mmcv.__version__
        ops, cuda = _mmcv_ops()
        env['MMCV ops'] = 'yes' if ops else 'no'
        env['MMCV CUDA ops'] = f'yes (CUDA {cuda})' if cuda else 'no'
    except ImportError:
        env['MMCV'] = 'not installed'
    for name, module in (('MMEngine', 'mmengine'), ('MMDetection', 'mmdet'),
                         ('resnext_det', 'resnext_det')):
        try:
            env[name] = __import__(module).__version__
        except ImportError:
            env[name] = 'not installed'
    return env
