"""Training hooks."""
import math

import torch
from mmengine.hooks import Hook, RuntimeInfoHook

from ..errors import NonFiniteLossError
from ..registry import HOOKS


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first non-finite loss term, before anything is checkpointed.

    mmdet's `CheckInvalidLossHook` only asserts on the total loss every 50 iterations; this
    checks every logged term every iteration, and runs before CheckpointHook (priority), so the
    checkpoints on disk all predate the divergence and `--resume` starts from a good one.
    """
    priority = 'ABOVE_NORMAL'

    def before_train(self, runner) -> None:
        # RuntimeInfoHook (VERY_HIGH, so before this hook) copies every term to the host for the
        # logs; reading its copies adds no device sync per term and iteration
        self._logged = any(isinstance(h, RuntimeInfoHook) for h in runner.hooks)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        logged = getattr(self, '_logged', False)
        values = {}
        for key, value in (outputs or {}).items():
            if not key.startswith('loss'):
                continue
            buffer = runner.message_hub.log_scalars.get(f'train/{key}') if logged else None
            if buffer is not None:
                values[key] = float(buffer.current())
            else:
                values[key] = float(value.detach() if isinstance(value, torch.Tensor) else value)
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if not bad:
            return
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        last = runner.message_hub.get_info('last_ckpt')
        raise NonFiniteLossError(
            f'non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): '
            f'{terms}. Last good checkpoint: {last or "none saved yet"}. Lower the lr, enable '
            'gradient clipping (optim_wrapper.clip_grad) or check the data, then --resume.')
