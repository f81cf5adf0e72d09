"""Property-based: any backbone configuration either builds a consistent network or fails
with a ValueError that names the offending argument (never a bare TypeError/IndexError)."""
from hypothesis import HealthCheck, given, settings, strategies as st

from resnext_det.models import ResNeXt

junk = st.sampled_from([None, '4', 2.5, True, [], (1, ), {}])
small_int = st.integers(min_value=-2, max_value=6)
int_seq = st.lists(st.integers(min_value=-1, max_value=4), max_size=5).map(tuple)

CONFIGS = st.fixed_dictionaries({}, optional={
    'depth': st.sampled_from([50, 101, 152, 18, 0, 50.0, '50', None]),
    'groups': small_int | junk,
    'base_width': small_int | junk,
    'base_channels': st.sampled_from([-1, 0, 4, 8, 3.0, '8', None]),
    'in_channels': st.integers(min_value=-1, max_value=4) | junk,
    'stem_channels': st.sampled_from([None, 1, 2, 8, 0, -4, 2.0]),
    'num_stages': st.integers(min_value=-1, max_value=6) | junk,
    'strides': int_seq | junk,
    'dilations': int_seq | junk,
    'out_indices': int_seq | junk,
    'frozen_stages': st.integers(min_value=-3, max_value=6) | junk,
    'style': st.sampled_from(['pytorch', 'caffe', 'tf', None, 1]),
    'deep_stem': st.booleans(),
    'avg_down': st.booleans(),
})
ARG_NAMES = ('depth', 'groups', 'base_width', 'base_channels', 'in_channels', 'stem_channels',
             'num_stages', 'strides', 'dilations', 'out_indices', 'frozen_stages', 'style')


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIGS)
def test_random_configs_build_or_fail_cleanly(kwargs):
    kwargs.setdefault('depth', 50)
    kwargs.setdefault('base_channels', 8)  # keep the networks that do build small
    try:
        model = ResNeXt(**kwargs)
    except ValueError as e:
        message = str(e)
        assert message.startswith('ResNeXt: ')
        assert any(f'{name}=' in message for name in ARG_NAMES), message
        return
    assert len(model.out_channels) == len(set(model.out_indices)) >= 1
    assert len(model.res_layers) == model.num_stages
    assert model.out_channels[-1] == model.base_channels * 2**max(model.out_indices) * 4
    assert list(model.out_channels) == sorted(model.out_channels)  # forward's (stage) order
