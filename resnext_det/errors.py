"""The errors a user can fix, and how the command-line tools report them.

Everything the package raises for input the user can fix (a config value, a data file, a
checkpoint, an output path, a diverging run) is a :class:`UserInputError` whose message names
the problem and the fix. Each tool catches it once (:func:`user_errors`) and prints it as one
``error:`` line, exit status 2 (argparse's status for bad arguments). Any other exception is a
bug, ours or in a user's own module, and keeps its traceback.

Each subclass also derives from the builtin type that callers caught before (``ValueError`` for
bad data, ``FileExistsError`` for an output in the way, ...), so ``except ValueError`` around a
dataset still works.
"""
import contextlib
import sys
from typing import Callable, Iterable, Iterator, NoReturn, Type

# How many items an error message names before "and N more".
FIRST_FEW = 3


class UserInputError(Exception):
    """Bad input the user can fix; the message names the problem and the fix."""


class DatasetError(UserInputError, ValueError):
    """Bad data: the message names the file, what is wrong (counts, first examples), the fix."""


class WeightsError(UserInputError, ValueError):
    """A checkpoint that does not fit the ResNeXt backbone, or is not a checkpoint at all."""


class CheckpointLoadError(UserInputError, RuntimeError):
    """A checkpoint file that cannot be loaded safely; the message names the file and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f'{path}: {reason}')
        self.path, self.reason = path, reason


class CheckpointMismatchError(UserInputError):
    """The checkpoint's tensors do not fit the model the config builds."""


class OutputExistsError(UserInputError, FileExistsError):
    """The output path holds a file with other content, and overwriting was not asked for."""

    def __init__(self, path: str, reason: str = 'already exists with different content',
                 fix: str = 'pass --force to overwrite it, or give another output path'):
        super().__init__(f'{path} {reason}; not overwriting it: {fix}')
        self.path = path


class NonFiniteLossError(UserInputError, FloatingPointError):
    """Training produced a NaN/inf loss; the message names the iteration, the term and the last
    good checkpoint."""


def exit_with_error(message) -> NoReturn:
    """How every tool stops on a user error: one ``error:`` line on stderr, exit status 2, no
    traceback."""
    print(f'error: {message}', file=sys.stderr)
    raise SystemExit(2)


@contextlib.contextmanager
def user_errors(*also: Type[BaseException]) -> Iterator[None]:
    """``with user_errors(): main()``: a :class:`UserInputError`, or one of the types in
    ``also`` that a tool knows to be the user's (``OSError`` for its input and output paths),
    ends the tool with its one line; every other exception propagates with its traceback."""
    try:
        yield
    except (UserInputError, *also) as e:
        exit_with_error(e)


def first_few(items: Iterable, limit: int = FIRST_FEW, describe: Callable = str,
              sep: str = ', ') -> str:
    """``'a, b, c and 4 more'``: enough to find the problem, short enough for one line."""
    items = list(items)
    shown = sep.join(describe(item) for item in items[:limit])
    return shown + (f' and {len(items) - limit} more' if len(items) > limit else '')
