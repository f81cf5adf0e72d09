"""The error datasets raise for bad data the user can fix.

The CLIs print its message as one ``error:`` line (exit status 2), raised while the dataset is
built in the main process, before any dataloader worker starts.
"""


class DatasetError(ValueError):
    """Bad data: the message names the file, what is wrong (counts, first examples) and the
    fix."""


def first_few(names, limit: int = 3) -> str:
    """``'a, b, c and 4 more'``: enough to find the problem, short enough for one line."""
    names = list(names)
    shown = ', '.join(map(str, names[:limit]))
    return shown + (f' and {len(names) - limit} more' if len(names) > limit else '')
