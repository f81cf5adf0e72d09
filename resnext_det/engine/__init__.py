"""Runner glue: what the CLIs share, checkpoint reliability and training hooks."""
from ..errors import NonFiniteLossError, UserInputError, exit_with_error
from .checkpointing import (
    ATOMIC_BACKEND,
    AtomicLocalBackend,
    RandomStateHook,
    TensorOnlyCheckpointHook,
    is_complete_checkpoint,
    latest_complete_checkpoint,
    register_atomic_backend,
)
from .hooks import NonFiniteLossHook
from .launch import (
    add_common_args,
    check_inputs,
    end_cpu_distributed_run,
    load_config,
    parse_cli,
    setup_cpu_distributed,
)

__all__ = [
    'ATOMIC_BACKEND', 'AtomicLocalBackend', 'NonFiniteLossError', 'NonFiniteLossHook',
    'RandomStateHook', 'TensorOnlyCheckpointHook', 'UserInputError', 'add_common_args',
    'check_inputs', 'exit_with_error', 'is_complete_checkpoint', 'latest_complete_checkpoint',
    'load_config', 'parse_cli', 'register_atomic_backend', 'setup_cpu_distributed',
    'end_cpu_distributed_run'
]
