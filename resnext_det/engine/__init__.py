"""Runner glue: what the CLIs share, checkpoint reliability and training hooks."""
from .cli import (
    add_common_args,
    check_inputs,
    end_cpu_distributed_run,
    load_config,
    parse_cli,
    setup_cpu_distributed,
)
from .durable_checkpoints import (
    ATOMIC_BACKEND,
    AtomicLocalBackend,
    RandomStateHook,
    TensorOnlyCheckpointHook,
    is_complete_checkpoint,
    latest_complete_checkpoint,
    register_atomic_backend,
)
from .hooks import NonFiniteLossHook

__all__ = [
    'ATOMIC_BACKEND', 'AtomicLocalBackend', 'NonFiniteLossHook',
    'RandomStateHook', 'TensorOnlyCheckpointHook', 'add_common_args',
    'check_inputs', 'is_complete_checkpoint', 'latest_complete_checkpoint',
    'load_config', 'parse_cli', 'register_atomic_backend', 'setup_cpu_distributed',
    'end_cpu_distributed_run'
]
