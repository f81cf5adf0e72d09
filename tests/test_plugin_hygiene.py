"""`import resnext_det` registers its modules and changes nothing else in the process; the
process-wide parts (atomic checkpoint backend, tensor-only loader) come with the explicit
`import resnext_det.runtime`, and with nothing else.

Checked in a fresh interpreter: every attribute of every loaded mmengine / mmdet / mmcv / torch /
numpy / ... module (and of the classes they define) is compared by identity before and after the
import, plus the contents of the global tables a plugin could write into.
"""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SNAPSHOT_SCRIPT = r'''
import json, logging, os, sys, types, warnings

import cv2, numpy, torch, torchvision  # noqa: E401
import mmcv, mmengine, mmdet  # noqa: E401
# everything the plugin builds on, imported first, so the import below can only add its own
# modules, not first-time imports of ours to tell apart from changes
import mmdet.datasets, mmdet.engine, mmdet.evaluation, mmdet.models, mmdet.registry  # noqa
import mmdet.utils  # noqa
import mmengine.fileio, mmengine.hooks, mmengine.logging, mmengine.model  # noqa
import mmengine.registry, mmengine.runner  # noqa
import pycocotools.cocoeval, faster_coco_eval  # noqa
import torch.utils.data, torchvision.transforms.v2  # noqa
from mmengine.analysis import FlopAnalyzer  # noqa
from mmengine.fileio import io as fileio
from mmengine.fileio.backends import backends, prefix_to_backends
from mmengine.logging import HistoryBuffer
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import CheckpointLoader

PACKAGES = ('mmengine', 'mmdet', 'mmcv', 'torch', 'torchvision', 'numpy', 'cv2', 'pycocotools',
            'faster_coco_eval', 'logging', 'warnings', 'pickle', 'copyreg')


def registries():
    out = {}
    for module in (mmdet.registry, mmengine.registry):
        for name, value in vars(module).items():
            if isinstance(value, mmengine.registry.Registry):
                out[f'{module.__name__}.{name}'] = sorted(value.module_dict)
    return out


def snapshot():
    ids = {}
    for name, module in list(sys.modules.items()):
        if module is None or name.split('.')[0] not in PACKAGES:
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, types.ModuleType):
                continue  # a package gains its submodules as they are imported
            ids[f'{name}:{attr}'] = id(value)
            if isinstance(value, type) and value.__module__ == name:
                for key, member in list(vars(value).items()):
                    ids[f'{name}:{attr}.{key}'] = id(member)
    tables = dict(
        file_backends={k: v.__qualname__ for k, v in backends.items()},
        prefix_to_backends={k: v.__qualname__ for k, v in prefix_to_backends.items()},
        backend_instances=sorted(fileio.backend_instances),
        checkpoint_loaders={k: f'{v.__module__}.{v.__qualname__}'
                            for k, v in CheckpointLoader._schemes.items()},
        torch_safe_globals=sorted(map(str, torch.serialization.get_safe_globals())),
        history_buffer_statistics=sorted(HistoryBuffer._statistics_methods),
        registries=registries(),
        warnings_filters=[str(f) for f in warnings.filters],
        root_logger=[repr(h) for h in logging.getLogger().handlers] + [logging.getLogger().level],
        environ=dict(os.environ),
        default_scope=repr(DefaultScope.get_current_instance()),
        threads=[torch.get_num_threads(), cv2.getNumThreads()],
        torch_flags=[str(torch.get_default_dtype()), torch.backends.cudnn.benchmark,
                     torch.are_deterministic_algorithms_enabled()],
    )
    return ids, tables


def diff(before, after):
    (ids0, tables0), (ids1, tables1) = before, after
    changed = sorted(k for k in ids0 if k in ids1 and ids0[k] != ids1[k])
    added = sorted(k for k in ids1 if k not in ids0 and k.split(':')[0] in
                   {key.split(':')[0] for key in ids0})
    removed = sorted(k for k in ids0 if k not in ids1)
    tables = {k: [tables0[k], tables1[k]] for k in tables0 if tables0[k] != tables1[k]}
    return dict(changed=changed, added=added, removed=removed, tables=tables)


before = snapshot()
import resnext_det  # noqa: E402
after_import = snapshot()
import resnext_det.runtime  # noqa: E402
after_runtime = snapshot()
print(json.dumps(dict(plugin=diff(before, after_import),
                      runtime=diff(after_import, after_runtime))))
'''


def run_snapshots():
    proc = subprocess.run([sys.executable, '-c', SNAPSHOT_SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_changes_nothing_global_and_runtime_only_what_it_documents():
    result = run_snapshots()
    plugin = result['plugin']
    assert plugin == dict(changed=[], added=[], removed=[], tables={}), plugin

    runtime = result['runtime']
    # the opt-in is seen by the same snapshot, so the check above could fail
    # (register_scheme re-sorts the loader table into a new OrderedDict)
    assert runtime['changed'] in ([], ['mmengine.runner.checkpoint:CheckpointLoader._schemes'])
    assert runtime['added'] == [] and runtime['removed'] == [], runtime
    assert set(runtime['tables']) == {'file_backends', 'checkpoint_loaders'}, runtime['tables']
    backends_before, backends_after = runtime['tables']['file_backends']
    assert backends_after == dict(backends_before,
                                  **{'resnext_det.atomic_local': 'AtomicLocalBackend'})
    loaders_before, loaders_after = runtime['tables']['checkpoint_loaders']
    assert loaders_after == dict(loaders_before, **{'': 'resnext_det.runtime._load_local'})
