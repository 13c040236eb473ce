"""Writes a small pickle shaped like the LPIPS weights (nested dicts of numpy arrays) for
the numpy fuzz target, without numpy: stand-in modules with the same names make pickle
emit the same records (GLOBAL numpy.core.multiarray._reconstruct, BUILD with the array
state), which is all the reader sees."""
import pickle
import struct
import sys
import types


def module(name):
    m = types.ModuleType(name)
    sys.modules[name] = m
    return m


np = module("numpy")
core = module("numpy.core")
multiarray = module("numpy.core.multiarray")
np.core = core
core.multiarray = multiarray


class ndarray:
    pass


class dtype:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (dtype, (self.code, False, True), (3, "<", None, None, None, -1, -1, 0))


def _reconstruct(*args):
    raise RuntimeError("never called")


ndarray.__module__ = "numpy"
dtype.__module__ = "numpy"
_reconstruct.__module__ = "numpy.core.multiarray"
np.ndarray, np.dtype, multiarray._reconstruct = ndarray, dtype, _reconstruct


class Array:
    def __init__(self, shape, values):
        self.shape, self.values = shape, values

    def __reduce__(self):
        raw = struct.pack(f"<{len(self.values)}f", *self.values)
        return (_reconstruct, (ndarray, (0,), b"b"), (1, self.shape, dtype("f4"), False, raw))


weights = {
    "AlexNet_0": {"Conv_0": {"kernel": Array((2, 2, 3, 2), [0.5] * 24), "bias": Array((2,), [0.1, -0.1])}},
    "NetLinLayer_0": {"Conv_0": {"kernel": Array((1, 1, 2, 1), [0.25, 0.75])}},
}
sys.stdout.buffer.write(pickle.dumps(weights, protocol=4))
