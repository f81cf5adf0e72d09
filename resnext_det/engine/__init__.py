from .launch import UserInputError, check_inputs, load_config, setup_cpu_distributed
from .wrappers import CPUDistributedDataParallel

__all__ = [
    'CPUDistributedDataParallel', 'UserInputError', 'check_inputs', 'load_config',
    'setup_cpu_distributed'
]
