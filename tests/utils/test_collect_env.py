"""The environment report reads the GPU architectures of compiled CUDA kernels from the fat
binaries nvcc embeds, without cuobjdump or a GPU."""
import struct

from resnext_det.utils.collect_env import FATBIN_MAGIC, cuda_archs


def fatbin(entries) -> bytes:
    """A fat binary as nvcc lays it out: header, then (kind, SM version, payload) entries."""
    body = b''
    for kind, sm, payload in entries:
        header = struct.pack('<HHIQ', kind, 0x101, 64, len(payload))
        header += bytes(28 - len(header)) + struct.pack('<I', sm)
        body += header + bytes(64 - len(header)) + payload
    return FATBIN_MAGIC + struct.pack('<HHQ', 1, 16, len(body)) + body


def test_archs_of_every_fat_binary_in_the_file(tmp_path):
    library = tmp_path / 'lib_ext.so'
    library.write_bytes(b'\x7fELF' + bytes(100)
                        + fatbin([(2, 80, b'sass80' * 7), (2, 90, b'sass90')])
                        + bytes(33)
                        + fatbin([(2, 90, b'x' * 10), (1, 90, b'.version 9.0 ptx')]))
    assert cuda_archs(str(library)) == (['8.0', '9.0'], ['9.0'])


def test_a_library_without_cuda_kernels(tmp_path):
    library = tmp_path / 'cpu_only.so'
    library.write_bytes(b'\x7fELF' + bytes(1000))
    assert cuda_archs(str(library)) == ([], [])


def test_an_entry_cut_short_is_not_counted(tmp_path):
    library = tmp_path / 'truncated.so'
    library.write_bytes(fatbin([(2, 86, b'y' * 50), (2, 120, b'z' * 50)])[:-60])
    assert cuda_archs(str(library)) == (['8.6'], [])
