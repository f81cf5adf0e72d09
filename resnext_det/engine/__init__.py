from .launch import (UserInputError, add_common_args, check_inputs, load_config, parse_cli,
                     setup_cpu_distributed)
from .checkpointing import (AtomicLocalBackend, RandomStateHook, is_complete_checkpoint,
                            latest_complete_checkpoint)
from .hooks import NonFiniteLossError, NonFiniteLossHook
from .wrappers import CPUDistributedDataParallel

__all__ = [
    'AtomicLocalBackend', 'CPUDistributedDataParallel', 'NonFiniteLossError',
    'NonFiniteLossHook', 'RandomStateHook', 'UserInputError', 'add_common_args',
    'check_inputs', 'is_complete_checkpoint', 'latest_complete_checkpoint', 'load_config',
    'parse_cli', 'setup_cpu_distributed'
]
