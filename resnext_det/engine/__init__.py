from .launch import (UserInputError, add_common_args, check_inputs, load_config, parse_cli,
                     setup_cpu_distributed)
from .hooks import NonFiniteLossError, NonFiniteLossHook
from .wrappers import CPUDistributedDataParallel

__all__ = [
    'CPUDistributedDataParallel', 'NonFiniteLossError', 'NonFiniteLossHook', 'UserInputError',
    'add_common_args', 'check_inputs', 'load_config', 'parse_cli', 'setup_cpu_distributed'
]
