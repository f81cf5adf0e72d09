"""One hierarchy of user errors: each is a UserInputError and still the builtin type callers
caught before; the tools end on one with one `error:` line and exit status 2, and on anything
else with its traceback."""
import pytest

from resnext_det import errors
from resnext_det.datasets import DatasetError as DatasetErrorFromDatasets
from resnext_det.errors import (
    CheckpointLoadError,
    DatasetError,
    NonFiniteLossError,
    OutputExistsError,
    UserInputError,
    WeightsError,
    first_few,
    user_errors,
)
from resnext_det.weights import WeightsError as WeightsErrorFromWeights


@pytest.mark.parametrize('error, builtin', [
    (DatasetError('bad data'), ValueError),
    (WeightsError('not a backbone'), ValueError),
    (CheckpointLoadError('a.pth', 'truncated'), RuntimeError),
    (OutputExistsError('out.pth'), FileExistsError),
    (NonFiniteLossError('nan at iteration 3'), FloatingPointError),
])
def test_every_project_error_is_a_user_error_and_its_builtin(error, builtin):
    assert isinstance(error, UserInputError) and isinstance(error, builtin)


def test_the_packages_export_the_same_classes():
    assert DatasetErrorFromDatasets is DatasetError and WeightsErrorFromWeights is WeightsError
    project_errors = {v for v in vars(errors).values()
                      if isinstance(v, type) and issubclass(v, Exception)}
    assert all(issubclass(e, UserInputError) for e in project_errors)


def test_messages_name_the_path_and_the_fix():
    assert str(CheckpointLoadError('a.pth', 'truncated')) == 'a.pth: truncated'
    error = OutputExistsError('out.pth')
    assert error.path == 'out.pth'
    assert str(error) == ('out.pth already exists with different content; not overwriting it: '
                          'pass --force to overwrite it, or give another output path')
    assert str(OutputExistsError('d', 'is a directory', fix='give a file path')) == \
        'd is a directory; not overwriting it: give a file path'


def test_user_errors_end_with_one_line_and_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info, user_errors():
        raise DatasetError('train.json: 3 boxes have no area')
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == 'error: train.json: 3 boxes have no area\n'


def test_user_errors_takes_the_builtins_a_tool_declares(capsys):
    with pytest.raises(SystemExit) as exit_info, user_errors(OSError):
        raise FileNotFoundError(2, 'No such file or directory', 'in.pth')
    assert exit_info.value.code == 2
    assert "in.pth" in capsys.readouterr().err


def test_anything_else_keeps_its_traceback(capsys):
    with pytest.raises(ZeroDivisionError), user_errors(OSError):
        1 / 0
    assert capsys.readouterr().err == ''


@pytest.mark.parametrize('items, kwargs, expected', [
    ([], {}, ''),
    (['a', 'b'], {}, 'a, b'),
    (['a', 'b', 'c'], {}, 'a, b, c'),
    (list('abcdefg'), {}, 'a, b, c and 4 more'),
    (list('abcdefg'), dict(limit=5, describe=repr), "'a', 'b', 'c', 'd', 'e' and 2 more"),
    ([('x.jpg', 'corrupt'), ('y.jpg', 'empty')],
     dict(limit=1, describe=lambda i: f'{i[0]} ({i[1]})', sep='; '), 'x.jpg (corrupt) and 1 more'),
])
def test_first_few(items, kwargs, expected):
    assert first_few(items, **kwargs) == expected
