from .launch import UserInputError, check_inputs, load_config

__all__ = ['UserInputError', 'check_inputs', 'load_config']
