"""Environment report in the shape of mmdet's `collect_env`, plus what this project needs."""
import mmap
import platform
import struct
from collections import OrderedDict
from typing import List, Tuple

# what nvcc puts at the start of each fat binary it embeds (the .nv_fatbin section)
FATBIN_MAGIC = struct.pack('<I', 0xBA55ED50)


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


def cuda_archs(path: str) -> Tuple[List[str], List[str]]:
    """(SASS, PTX) architectures of the CUDA kernels in a shared library, e.g.
    ``(['8.0', '9.0'], [])``: the GPUs it runs on natively, and the ones it can JIT for.

    Reads the headers of the fat binaries nvcc embeds (a 16-byte header: magic, version, header
    size, payload size; then entries: kind 1 PTX / 2 ELF, header size, payload size, and the SM
    version at byte 28), so it needs no cuobjdump, nor a GPU.
    """
    sass, ptx = set(), set()
    with open(path, 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        start = data.find(FATBIN_MAGIC)
        while start >= 0:
            header_size, size = struct.unpack_from('<HQ', data, start + 6)
            entry, end = start + header_size, start + header_size + size
            while entry + 32 <= min(end, len(data)):
                kind, _, entry_header, payload = struct.unpack_from('<HHIQ', data, entry)
                sm = struct.unpack_from('<I', data, entry + 28)[0]
                if kind in (1, 2) and sm and entry + entry_header + payload <= len(data):
                    (ptx if kind == 1 else sass).add(sm)
                entry += entry_header + payload
            start = data.find(FATBIN_MAGIC, start + 4)
    return ([f'{a // 10}.{a % 10}' for a in sorted(sass)],
            [f'{a // 10}.{a % 10}' for a in sorted(ptx)])


def _mmcv_ops():
    """(compiled ops importable, CUDA version the ops were built with or None)."""
    try:
        from mmcv.ops import get_compiling_cuda_version
    except Exception:  # mmcv-lite, or a broken build
        return False, None
    cuda = get_compiling_cuda_version()
    return True, (None if cuda in ('not available', '', None) else cuda)


def _describe_cuda_ops(cuda: str) -> str:
    """'yes (compiled for 8.0;9.0, CUDA 13.0)': the GPUs the compiled ops run on."""
    import importlib.util
    spec = importlib.util.find_spec('mmcv._ext')
    sass, ptx = cuda_archs(spec.origin) if spec and spec.origin else ([], [])
    archs = ';'.join(sass) + (f" + PTX {';'.join(ptx)}" if ptx else '')
    return f"yes (compiled for {archs or 'unknown architectures'}, CUDA {cuda})"


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
        env['MMCV CUDA ops'] = _describe_cuda_ops(cuda) if cuda else 'no'
    except ImportError:
        env['MMCV'] = 'not installed'
    for name, module in (('MMEngine', 'mmengine'), ('MMDetection', 'mmdet'),
                         ('resnext_det', 'resnext_det')):
        try:
            env[name] = __import__(module).__version__
        except ImportError:
            env[name] = 'not installed'
    return env
