"""Carry a submission's variables from its kernel to the checks, as data and never as code.

The grader runs a submission's cells in one sandboxed process and its checks in another, fresh
one (:mod:`modlib.companion.course_grading`). :func:`dump` runs last in the submission's kernel
and pickles the variables that the checks read; :func:`load` runs in the checks' interpreter and
unpickles them with :class:`DataUnpickler`, which builds data and nothing else:

- a global (``module.name``) is resolved only if it is on an allowlist: the reconstructors of
  NumPy arrays and scalars, pandas frames and indexes, PyTorch parameters, ``copyreg``'s
  object reconstructor, and classes whose code lives in ``modlib`` (not its machinery),
  ``torch.nn``, ``pandas.core``, NumPy, ``collections`` or a few safe builtins;
- a call (``REDUCE``) is allowed only for those reconstructors and for a short list of
  classes (``set``, ``OrderedDict``, ``numpy.dtype``, ``torch.Size``, ...): ``eval``,
  ``exec``, ``os.system``, ``getattr``, ``pandas.read_pickle`` and every class or function of
  the submission itself are refused;
- an object's state is set (``BUILD``) and items are added only to objects built by this very
  load, never to a module, a class or a function, so that a pickle cannot patch a library the
  checks use;
- tensors travel as NumPy arrays (:func:`_tensor`), modules and library functions by name
  (:func:`_module`, :func:`_ref`), resolved only inside the packages listed in
  :data:`PACKAGES`.

A variable that cannot be carried (a function or class the submission defined, an open file,
a generator, a refused global) is left out with the reason, and a check that reads it fails with
``NameError``; the grader reports the reason in the row's note. Whatever a submission writes
into the file, the checks see plain data and run library code only.
"""

from __future__ import annotations

import collections
import functools
import importlib
import io
import pickle
import re
import sys
import types

PACKAGES = ("numpy", "pandas", "torch", "scipy", "sklearn", "networkx", "math", "cmath",
            "statistics", "collections", "itertools", "modlib")
# classes whose code may run while building a value (only __new__ and __setstate__)
CLASS_MODULES = ("modlib.", "torch.nn.", "pandas.core.", "pandas._libs.", "pandas.arrays",
                 "numpy", "collections", "datetime", "fractions", "decimal", "networkx.classes.",
                 "scipy.sparse.", "pathlib")
SAFE_BUILTINS = {"set", "frozenset", "complex", "slice", "range", "bytearray", "object",
                 "list", "dict", "tuple", "int", "float", "str", "bytes", "bool"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_SKIP = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def _tensor(array, requires_grad: bool, parameter: bool, dtype: str):
    """A tensor from its NumPy array (``dtype``: the tensor's own, e.g. ``bfloat16``)."""
    import torch

    tensor = torch.from_numpy(array).to(getattr(torch, dtype))
    if parameter:
        return torch.nn.Parameter(tensor, requires_grad=requires_grad)
    return tensor.requires_grad_(requires_grad) if tensor.is_floating_point() else tensor


def _sparse(indices, values, size):
    """A sparse COO tensor from its indices and values (NumPy arrays)."""
    import torch

    return torch.sparse_coo_tensor(torch.from_numpy(indices), _tensor(*values), size,
                                   check_invariants=True)


def _trusted(module: str) -> bool:
    return bool(_MODULE.match(module)) and module.split(".")[0] in PACKAGES \
        and not module.startswith("modlib.companion")


def _module(name: str):
    """The module ``name`` of one of :data:`PACKAGES` (imported afresh by the checks)."""
    if not _trusted(name):
        raise pickle.UnpicklingError(f"module {name!r} is not one of the packages the checks "
                                     f"may use ({', '.join(PACKAGES)})")
    return importlib.import_module(name)


def _ref(module: str, qualname: str):
    """The function or class ``module.qualname`` of one of :data:`PACKAGES`, by name."""
    target = _module(module)
    for part in qualname.split("."):
        if not _NAME.match(part):
            raise pickle.UnpicklingError(f"{module}.{qualname} is not a public name")
        target = getattr(target, part)
    if not isinstance(target, (type, types.FunctionType, types.BuiltinFunctionType,
                               types.ModuleType)) and not callable(target):
        raise pickle.UnpicklingError(f"{module}.{qualname} is not a function or class")
    return target


class _Pickler(pickle.Pickler):
    """Tensors as NumPy arrays, modules and library functions by name; whatever the
    submission defined itself (``__main__``) is refused."""

    def reducer_override(self, obj):
        kind = type(obj)
        if kind.__module__.startswith("torch") and kind.__name__ in ("Tensor", "Parameter"):
            return _reduce_tensor(obj)
        if isinstance(obj, types.ModuleType):
            return _module, (obj.__name__,)
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, type)):
            module = getattr(obj, "__module__", None) or ""
            if (module, getattr(obj, "__name__", "")) in _allowed_functions() or (
                    module == "builtins" and obj.__name__ in SAFE_BUILTINS) or (
                    _data_class(obj)):
                return NotImplemented   # a reconstructor or data class: saved by reference
            if module == "__main__" or not _trusted(module):
                raise pickle.PicklingError(f"{getattr(obj, '__qualname__', obj)!r} is defined "
                                           f"in {module or 'the notebook'}, not a library")
            return _ref, (module, obj.__qualname__)
        return NotImplemented


def _reduce_tensor(obj):
    import torch

    parameter = isinstance(obj, torch.nn.Parameter)
    tensor = obj.detach().cpu()
    if tensor.is_sparse:
        tensor = tensor.coalesce()
        values = tensor.values()
        return _sparse, (tensor.indices().numpy(), _reduce_tensor(values)[1], tuple(tensor.shape))
    dtype = str(tensor.dtype).removeprefix("torch.")
    array = (tensor.float() if dtype == "bfloat16" else tensor.to_dense()).numpy()
    return _tensor, (array, bool(obj.requires_grad), parameter, dtype)


def dump(namespace: dict, names, path: str) -> dict[str, str]:
    """Pickle the variables ``names`` of ``namespace`` (a kernel's ``globals()``) to ``path``,
    each on its own; returns ``{name: reason}`` for those left out (absent, or not data)."""
    values, skipped = {}, {}
    for name in sorted(set(names) - _SKIP):
        if name not in namespace:
            continue
        buffer = io.BytesIO()
        try:
            _Pickler(buffer, protocol=5).dump(namespace[name])
        except Exception as err:   # noqa: BLE001 - any object may fail to pickle, any way
            skipped[name] = f"{type(namespace[name]).__name__}: {str(err)[:200]}"
            continue
        values[name] = buffer.getvalue()
    with open(path, "wb") as handle:
        pickle.dump({"values": values, "skipped": skipped}, handle, protocol=5)
    return skipped


@functools.cache
def _allowed_functions() -> dict[tuple[str, str], str]:
    """The reconstructors a pickle may call, by (module, name)."""
    names = [("copyreg", "_reconstructor"), ("copyreg", "__newobj__"),
             ("copyreg", "__newobj_ex__"),
             ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
             ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
             ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
             ("pandas.core.indexes.base", "_new_Index"),
             ("pandas._libs.internals", "_unpickle_block"),
             ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
             ("torch._utils", "_rebuild_parameter"),
             (__name__, "_tensor"), (__name__, "_sparse"), (__name__, "_module"),
             (__name__, "_ref")]
    return {pair: "function" for pair in names}


_CALLABLE_CLASSES = {set, frozenset, complex, slice, range, bytearray, collections.OrderedDict,
                     collections.defaultdict, collections.Counter, collections.deque}


def _callable_class(cls) -> bool:
    """Classes a pickle may call with arguments: a few builtins and collections, NumPy's
    ``dtype``, ``torch.Size`` and ``torch.device``, and pandas' frames, series and indexes."""
    if cls in _CALLABLE_CLASSES:
        return True
    module = getattr(cls, "__module__", "") or ""
    if module == "numpy" and cls.__name__ == "dtype":
        return True
    if module == "torch" and cls.__name__ in ("Size", "device"):
        return True
    if module == "pathlib" and cls.__name__ in ("PosixPath", "PurePosixPath"):
        return True
    return module.startswith(("pandas.core.", "pandas._libs.", "numpy.dtypes")) or (
        module == "pandas" and _data_class(cls))


class DataUnpickler(pickle._Unpickler):   # the Python implementation: its opcodes can be guarded
    """An unpickler that builds data only (module docstring); anything else raises
    :class:`pickle.UnpicklingError` naming what was refused."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file):
        super().__init__(file)
        self._functions = _allowed_functions()
        self._built: set[int] = set()

    def find_class(self, module, name):
        if (module, name) in self._functions:
            return super().find_class(module, name)
        if module == "builtins" and name in SAFE_BUILTINS:
            return super().find_class(module, name)
        if module == "torch" and _NAME.match(name):
            import torch

            value = getattr(torch, name, None)
            if isinstance(value, torch.dtype) or value in (torch.Size, torch.device):
                return value
        if any(module.startswith(m) for m in CLASS_MODULES + ("pandas",)) \
                and _trusted_class(module, name):
            cls = super().find_class(module, name)
            if _data_class(cls):
                return cls
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed (only data types and "
                                     "their reconstructors are)")

    def _made(self, value):
        self._built.add(id(value))
        return value

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        allowed = any(func is _resolve(pair) for pair in self._functions) \
            or (isinstance(func, type) and _callable_class(func))
        if not allowed:
            raise pickle.UnpicklingError(f"calling {getattr(func, '__qualname__', func)!r} is "
                                         "not allowed while loading data")
        value = func(*args)
        self.stack[-1] = value if func in (_module, _ref) else self._made(value)
    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self._check_class(cls)
        self.append(self._made(cls.__new__(cls, *args)))
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self):
        kwargs, args, cls = self.stack.pop(), self.stack.pop(), self.stack.pop()
        self._check_class(cls)
        self.append(self._made(cls.__new__(cls, *args, **kwargs)))
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def _check_class(self, cls):
        if not (cls in _CALLABLE_CLASSES or _data_class(cls) or (
                isinstance(cls, type) and cls.__module__ == "builtins"
                and cls.__name__ in SAFE_BUILTINS)):
            raise pickle.UnpicklingError(f"creating {cls!r} is not allowed while loading data")

    def _own(self, target, what: str):
        if isinstance(target, (types.ModuleType, type, types.FunctionType,
                               types.BuiltinFunctionType, types.MethodType)):
            raise pickle.UnpicklingError(f"{what} on {target!r} is not allowed")
        if id(target) not in self._built and type(target) not in (
                list, dict, set, collections.OrderedDict, collections.defaultdict):
            raise pickle.UnpicklingError(f"{what} on {type(target).__name__} objects that this "
                                         "load did not build is not allowed")

    def load_build(self):
        self._own(self.stack[-2], "setting state")
        super().load_build()
    dispatch[pickle.BUILD[0]] = load_build

    def load_setitem(self):
        self._own(self.stack[-3], "setting items")
        super().load_setitem()
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        self._own(self._marked(), "setting items")
        super().load_setitems()
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_append(self):
        self._own(self.stack[-2], "appending")
        super().load_append()
    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self):
        self._own(self._marked(), "appending")
        super().load_appends()
    dispatch[pickle.APPENDS[0]] = load_appends

    def load_additems(self):
        self._own(self._marked(), "adding items")
        super().load_additems()
    dispatch[pickle.ADDITEMS[0]] = load_additems

    def _marked(self):
        """The object that SETITEMS, APPENDS and ADDITEMS fill: the top of the stack saved at
        the last MARK (the items since then sit on ``self.stack``)."""
        if not self.metastack or not self.metastack[-1]:
            raise pickle.UnpicklingError("malformed pickle: nothing to fill")
        return self.metastack[-1][-1]

    def _refuse(self):
        raise pickle.UnpicklingError("this pickle opcode is not allowed while loading data")
    for _op in (pickle.INST, pickle.OBJ, pickle.EXT1, pickle.EXT2, pickle.EXT4, pickle.PERSID,
                pickle.BINPERSID):
        dispatch[_op[0]] = _refuse


def _resolve(pair: tuple[str, str]):
    """The allowed function ``pair`` if its module is loaded (a function of a module that was
    never imported cannot be on the unpickler's stack)."""
    module = sys.modules.get(pair[0])
    return getattr(module, pair[1], None) if module is not None else None


def _data_class(cls) -> bool:
    """A class whose instances a pickle may build: its code lives in :data:`CLASS_MODULES`,
    or it is one of pandas' public data classes (their ``__module__`` is plain ``pandas``)."""
    if not isinstance(cls, type):
        return False
    module = cls.__module__ or ""
    if module.startswith("modlib.companion"):
        return False
    if any(module.startswith(m) for m in CLASS_MODULES):
        return True
    if module == "pandas":
        import pandas

        return issubclass(cls, (pandas.DataFrame, pandas.Series, pandas.Index,
                                pandas.api.extensions.ExtensionArray,
                                pandas.api.extensions.ExtensionDtype))
    return False


def _trusted_class(module: str, name: str) -> bool:
    return bool(_MODULE.match(module)) and all(_NAME.match(p) or p.startswith("_")
                                               for p in name.split("."))


def loads(data: bytes):
    """One value from bytes written by :func:`dump`'s pickler, with :class:`DataUnpickler`."""
    return DataUnpickler(io.BytesIO(data)).load()


def load(path: str) -> tuple[dict, dict[str, str]]:
    """The variables :func:`dump` wrote to ``path`` and ``{name: reason}`` for those that were
    left out or refused here; never runs code of the submission."""
    try:
        with open(path, "rb") as handle:
            carried = loads(handle.read())
        values, skipped = dict(carried["values"]), dict(carried.get("skipped", {}))
    except Exception as err:   # noqa: BLE001 - a broken or forged file is the submission's fault
        return {}, {"*": f"the variables file is unreadable ({type(err).__name__}: {err})"}
    env = {}
    for name, data in values.items():
        if not (isinstance(name, str) and isinstance(data, bytes)):
            continue
        try:
            env[name] = loads(data)
        except Exception as err:   # noqa: BLE001
            skipped[name] = f"refused: {type(err).__name__}: {str(err)[:200]}"
    return env, {str(k): str(v)[:300] for k, v in skipped.items()}
