"""A run that cannot start is rolled back; a config error becomes one line, a bug in a user's own
module keeps its traceback."""
import importlib.util

import pytest
from mmengine.registry import MODELS

from resnext_det.engine.startup import rollback_unless_started
from resnext_det.errors import DatasetError, UserInputError

BUGGY_MODULE = '''
def build():
    return {}['a key the user forgot']  # a bug in the user's own code
'''


def import_user_module(tmp_path):
    path = tmp_path / 'my_project' / 'buggy_backbone.py'
    path.parent.mkdir()
    path.write_text(BUGGY_MODULE)
    spec = importlib.util.spec_from_file_location('buggy_backbone', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_bug_in_a_users_module_keeps_its_traceback_and_is_rolled_back(tmp_path):
    work_dir = tmp_path / 'work'
    module = import_user_module(tmp_path)
    with pytest.raises(KeyError) as info:
        with rollback_unless_started(str(work_dir)):
            work_dir.mkdir()
            (work_dir / 'partial.log').write_text('started')
            module.build()
    assert 'buggy_backbone.py' in str(info.traceback[-1].path)
    assert not work_dir.exists()


def test_a_config_that_mmengine_cannot_build_is_one_line(tmp_path):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'keep.txt').write_text('user data')
    with pytest.raises(UserInputError, match=r'the run could not start: KeyError: .*NoSuchNeck'):
        with rollback_unless_started(str(work_dir)):
            (work_dir / '20261203_000000').mkdir()
            MODELS.build(dict(type='NoSuchNeck'))
    assert sorted(p.name for p in work_dir.iterdir()) == ['keep.txt']


def test_a_user_error_propagates_as_it_is(tmp_path):
    with pytest.raises(DatasetError, match='^train.json: no images$'):
        with rollback_unless_started(str(tmp_path / 'work')):
            raise DatasetError('train.json: no images')


def test_the_traceback_switch_keeps_every_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv('RESNEXT_DET_TRACEBACK', '1')
    with pytest.raises(KeyError):
        with rollback_unless_started(str(tmp_path / 'work')):
            MODELS.build(dict(type='NoSuchNeck'))


def test_a_failure_after_the_first_iteration_is_not_rolled_back(tmp_path):
    work_dir = tmp_path / 'work'
    with pytest.raises(ZeroDivisionError):
        with rollback_unless_started(str(work_dir)) as started:
            work_dir.mkdir()
            (work_dir / 'epoch_1.pth').write_bytes(b'weights')
            started.after_train_iter(runner=None, batch_idx=0)
            1 / 0
    assert (work_dir / 'epoch_1.pth').read_bytes() == b'weights'

