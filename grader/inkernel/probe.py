"""Runs INSIDE the student's kernel: exercise a student class on the grader's data.

This file is never imported by the grader. grader.harvest reads its text and
sends it through the kernel channel; it is exec'd in a fresh namespace and
`main(request_dir, user_ns)` is called with the notebook's namespace, which is
only used to look up the student's class.

It decides nothing. It reads a request (JSON + .npy written by the trusted
process), runs the student's class, and writes plain arrays (.npy) plus a JSON
manifest. The trusted process validates those files and computes every verdict.
Whatever the student's code does here (print, patch torch, raise, write files)
can at worst spoil the arrays it returns, i.e. make its own checks fail.

Each step is guarded separately so one failure does not lose the others, and
the manifest is written last, atomically, so a half-finished run reads as
"no result" rather than as a partial one.

Three request modes, one protocol: `inspect` (build, parameters, module tree,
initial values), `run` (forward/backward on the grader's weights and inputs) and
`device` (the forward pass with parameters and inputs on the `meta` device, to
find tensors created without a device). One text because the kernel is sent one
text per probe call and the modes share the builder and the reply format; that
is why the file is longer than the project's 400 lines.
"""
# Captured at exec time, in the probe's own namespace: names the notebook
# rebinds (np, json, open, print, ...) cannot reach these.
import builtins as _builtins
import copy as _copy
import json as _json
import linecache as _linecache
import os as _os
import sys as _sys
import sysconfig as _sysconfig

import numpy as _np
import torch as _torch

_isinstance = _builtins.isinstance
_getattr = _builtins.getattr
_len = _builtins.len
_open = _builtins.open
_str = _builtins.str
_repr = _builtins.repr
_type = _builtins.type
_Tensor = _torch.Tensor
_Parameter = _torch.nn.Parameter
_Module = _torch.nn.Module
_Linear = _torch.nn.Linear
_from_numpy = _torch.from_numpy
_no_grad = _torch.no_grad
_enable_grad = _torch.enable_grad
_set_default_dtype = _torch.set_default_dtype
_get_default_dtype = _torch.get_default_dtype
_fork_rng = _torch.random.fork_rng
_np_save = _np.save
_np_load = _np.load
_np_ascontiguousarray = _np.ascontiguousarray
_json_dumps = _json.dumps
_json_loads = _json.loads
_replace = _os.replace
_join = _os.path.join
_dirname = _os.path.dirname
_getframe = _sys._getframe
_getline = _linecache.getline
_tuple = _builtins.tuple
_dict = _builtins.dict
_id = _builtins.id
_device = _torch.device
_empty = _torch.empty
_tensor_to = _Tensor.to
_set_default_device = _torch.set_default_device
_modules = _sys.modules
_deepcopy = _copy.deepcopy
# Operations that legitimately take tensors on two devices: moving, copying, indexing with a CPU index.
_CROSS_DEVICE_OK = frozenset({_Tensor.to, _Tensor.copy_, _Tensor.__getitem__, _Tensor.__setitem__})

from torch.overrides import TorchFunctionMode as _TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode as _TorchDispatchMode

PROBE_VERSION = 1
# Names of torch functions and ATen operators that run a whole recurrent layer or cell: nn.LSTM & co. and
# torch.lstm reach `lstm`/`mkldnn_rnn_layer`/`_cudnn_rnn`, cells `lstm_cell`, NPU builds `npu_lstm`.
_RECURRENT_NAMES = ("lstm", "gru", "rnn_tanh", "rnn_relu", "cudnn_rnn", "miopen_rnn", "mkldnn_rnn", "rnn_layer")
MAX_OBSERVED = 20
MAX_ARRAY_ELEMENTS = 1_000_000  # no legitimate output of the lab's classes comes close
MAX_ERROR_CHARS = 500
MAX_LIST = 200
_DTYPES = {"float64": _torch.float64, "float32": _torch.float32}
# Where library code lives: a frame outside these (and outside this probe) is the student's own code.
_LIBRARY_DIRS = _tuple({_dirname(_torch.__file__), _dirname(_np.__file__),
                        *(_sysconfig.get_paths().get(k) or "/nonexistent" for k in ("stdlib", "platstdlib",
                                                                                   "purelib", "platlib"))})
_PROBE_FILE = "<grader-probe>"
MAX_BORN = 1000       # device-less tensors remembered during one forward pass (a few per time step at most)
MAX_CODE_CHARS = 200


def _err(exc):
    text = f"{_type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]


class _Out:
    """Collects step reports and arrays; writes the manifest last."""

    def __init__(self, out_dir):
        self.dir = out_dir
        self.steps = {}
        self.arrays = {}
        self._n = 0

    def step(self, name, info):
        self.steps[name] = info

    def array(self, key, value):
        """Save a tensor/ndarray as float64 .npy; returns False when refused."""
        if _isinstance(value, _Tensor):
            value = value.detach().to("cpu", _torch.float64).numpy()
        arr = _np_ascontiguousarray(value, dtype=_np.float64)
        if arr.size > MAX_ARRAY_ELEMENTS:
            return False
        self._n += 1
        fname = f"a{self._n}.npy"
        _np_save(_join(self.dir, fname), arr, allow_pickle=False)
        self.arrays[key] = {"file": fname, "shape": [int(s) for s in arr.shape], "dtype": "float64"}
        return True

    def finish(self):
        manifest = {"version": PROBE_VERSION, "steps": self.steps, "arrays": self.arrays}
        tmp = _join(self.dir, "manifest.json.tmp")
        with _open(tmp, "w", encoding="utf-8") as fh:
            fh.write(_json_dumps(manifest))
        _replace(tmp, _join(self.dir, "manifest.json"))


def _locate(model, path):
    """The object at a dotted attribute path, or None."""
    obj = model
    for part in path.split("."):
        try:
            obj = _getattr(obj, part)
        except Exception:
            return None
    return obj


def _describe(model, path, registered):
    obj = _locate(model, path)
    if obj is None:
        return {"kind": "missing"}
    if not _isinstance(obj, _Tensor):
        return {"kind": "other", "type": _type(obj).__name__}
    return {
        "kind": "parameter" if _isinstance(obj, _Parameter) else "tensor",
        "shape": [int(s) for s in obj.shape],
        "dtype": _str(obj.dtype).replace("torch.", ""),
        "requires_grad": bool(obj.requires_grad),
        "registered": path in registered,
    }


def _build(user_ns, req):
    cls = user_ns.get(req["class_name"])
    if cls is None:
        return None, {"ok": False, "reason": "missing"}
    if not _isinstance(cls, _type):
        return None, {"ok": False, "reason": "not_class", "found": _type(cls).__name__}
    if not issubclass(cls, _Module):
        return None, {"ok": False, "reason": "not_module", "found": cls.__name__}
    try:
        model = cls(*req["sizes"])
    except BaseException as exc:  # SystemExit/KeyboardInterrupt from student code too
        return None, {"ok": False, "reason": "ctor_error", "error": _err(exc)}
    if not _isinstance(model, _Module):
        return None, {"ok": False, "reason": "not_module", "found": _type(model).__name__}
    return model, {"ok": True}


def _inspect(model, req, out):
    try:
        named = [(n, p) for n, p in model.named_parameters()]
        registered = {n for n, _ in named}
        out.step(
            "params",
            {
                "ok": True,
                "expected": {p: _describe(model, p, registered) for p in req["params"]},
                "named_parameters": [[n, [int(s) for s in p.shape]] for n, p in named[:MAX_LIST]],
            },
        )
    except BaseException as exc:
        out.step("params", {"ok": False, "error": _err(exc)})
    try:
        modules = []
        for m in list(model.modules())[:MAX_LIST]:
            modules.append([f"{c.__module__}.{c.__qualname__}" for c in _type(m).__mro__][:20])
        info = {"ok": True, "modules": modules}
        readout = req.get("linear_readout")
        if readout:
            fc = _locate(model, readout)
            info["readout"] = {
                "type": _type(fc).__name__,
                "is_linear": _isinstance(fc, _Linear),
                "in_features": int(fc.in_features) if _isinstance(fc, _Linear) else None,
                "out_features": int(fc.out_features) if _isinstance(fc, _Linear) else None,
            }
        out.step("modules", info)
    except BaseException as exc:
        out.step("modules", {"ok": False, "error": _err(exc)})


def _init_samples(user_ns, req, out):
    """Build the class a few times and return the initial values of each weight."""
    counts = {}
    try:
        for k in range(int(req.get("init_repeats", 3))):
            model, info = _build(user_ns, req)
            if model is None:
                out.step("init", {"ok": False, "error": info.get("error", info["reason"])})
                return
            for path in req["params"]:
                obj = _locate(model, path)
                if _isinstance(obj, _Tensor) and out.array(f"init/{k}/{path}", obj):
                    counts[path] = counts.get(path, 0) + 1
        out.step("init", {"ok": True, "samples": counts})
    except BaseException as exc:
        out.step("init", {"ok": False, "error": _err(exc)})


def _load(req_dir, fname):
    return _np_load(_join(req_dir, fname), allow_pickle=False)


def _write_weights(model, req, req_dir):
    """Copy the grader's weights (already in the student's layout) into the model."""
    problems = {}
    with _no_grad():
        for path, fname in req["weights"].items():
            obj = _locate(model, path)
            if not _isinstance(obj, _Tensor):
                problems[path] = "missing"
                continue
            src = _from_numpy(_load(req_dir, fname))
            if list(obj.shape) != list(src.shape):
                problems[path] = f"shape {list(obj.shape)}"
                continue
            try:
                obj.copy_(src)
            except BaseException as exc:
                problems[path] = _err(exc)
    return problems


def _as_output(value):
    if _isinstance(value, _Tensor):
        return value, None
    return None, _type(value).__name__


def _run_calls(model, req, req_dir, dtype, out, tag):
    """Forward calls (no grad), then one call with backward; each guarded."""
    device = req.get("device") or "cpu"
    inputs = {k: _from_numpy(_load(req_dir, f)).to(device=device, dtype=dtype) for k, f in req["inputs"].items()}
    calls = {}
    for call in req["calls"]:
        name = call["name"]
        try:
            with _no_grad():
                y = model(*[inputs[a] for a in call["args"]])
            t, other = _as_output(y)
            if t is None:
                calls[name] = {"ok": False, "returned": other}
            else:
                out.array(f"{tag}/out/{name}", t)
                calls[name] = {"ok": True, "dtype": _str(t.dtype).replace("torch.", ""),
                               "shape": [int(s) for s in t.shape]}
        except BaseException as exc:
            calls[name] = {"ok": False, "error": _err(exc)}
    try:
        grad = {"ok": True, "params": _backward_call(model, req, req_dir, inputs, device, dtype, out, tag)}
    except BaseException as exc:
        grad = {"ok": False, "error": _err(exc)}
    return calls, grad


def _backward_call(model, req, req_dir, inputs, device, dtype, out, tag):
    """One forward call with grad, backward through a fixed random projection; each parameter's gradient status."""
    for p in model.parameters():
        p.grad = None
    tensors = {p: _locate(model, p) for p in req["params"]}
    for t in tensors.values():
        if _isinstance(t, _Tensor) and t.is_leaf:
            t.grad = None
    r = _from_numpy(_load(req_dir, req["R"])).to(device=device, dtype=dtype)
    with _enable_grad():
        y = model(*[inputs[a] for a in req["grad_call"]])
        t, other = _as_output(y)
        if t is None:
            raise TypeError(f"forward returned {other}")
        (t * r).sum().backward()
    status = {}
    for path, tensor in tensors.items():
        if not _isinstance(tensor, _Tensor):
            status[path] = "missing"
        elif tensor.grad is None:
            status[path] = "no_grad" if not tensor.requires_grad else "grad_none"
        elif out.array(f"{tag}/grad/{path}", tensor.grad):
            status[path] = "ok"
        else:
            status[path] = "too_large"
    return status


def _is_recurrent(name):
    low = _str(name).lower()
    return any(key in low for key in _RECURRENT_NAMES)


class _SeenFunctions(_TorchFunctionMode):
    """Records the recurrent torch functions called (torch.lstm, _VF.gru, torch.lstm_cell, ...)."""

    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = _getattr(func, "__name__", "")
        if _is_recurrent(name) and _len(self.seen) < MAX_OBSERVED:
            self.seen.add("torch." + _str(name))
        return func(*args, **(kwargs or {}))


class _SeenOperators(_TorchDispatchMode):
    """Records the recurrent ATen operators dispatched (what a fused LSTM kernel runs as)."""

    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = _str(_getattr(func, "overloadpacket", func))
        if _is_recurrent(name) and _len(self.seen) < MAX_OBSERVED:
            self.seen.add(name)
        return func(*args, **(kwargs or {}))


def _observe(model, args):
    """One more forward call, watched: the recurrent functions and operators it ran.

    Separate from the calls that are judged, so that watching can never change a verdict on the equations.
    Runs in the student's process, which can undo it: defence in depth behind the static scan.
    """
    seen = _builtins.set()
    try:
        with _no_grad(), _SeenFunctions(seen), _SeenOperators(seen):
            model(*args)
    except BaseException as exc:
        return {"ok": False, "error": _err(exc), "recurrent": _builtins.sorted(seen)}
    return {"ok": True, "recurrent": _builtins.sorted(seen)}


def _student_site():
    """The innermost frame of the student's own code: its line number and the line's text."""
    frame = _getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if name != _PROBE_FILE and not name.startswith(_LIBRARY_DIRS):
            return {"line": int(frame.f_lineno), "code": _getline(name, frame.f_lineno).strip()[:MAX_CODE_CHARS]}
        frame = frame.f_back
    return None


def _tensors_in(values, depth=0):
    found = []
    for value in values:
        if _isinstance(value, _Tensor):
            found.append(value)
        elif _isinstance(value, (_builtins.list, _tuple)) and depth < 2:
            found.extend(_tensors_in(value[:MAX_LIST], depth + 1))
    return found


class _DeviceClash(RuntimeError):
    pass


class _DeviceWatch(_TorchFunctionMode):
    """Sends every device the code names to the stand-in device; stops at the first operation that mixes devices.

    `device=...`, `.to(device)` and `.to('npu')` all name the device the code means, so they go to the stand-in
    (the parameters and inputs are there). A tensor created with no device falls on the CPU: that is the bug on
    an NPU. Some operations on `meta` do not check their operands' devices (a matrix product, einsum, in-place
    arithmetic), so the watch checks them itself, before each call, and raises as the NPU would. Where each
    CPU tensor was created is remembered for the report.
    """

    def __init__(self, target, attributes):
        super().__init__()
        self.target = target
        self.attributes = attributes  # ids of tensors the model holds as plain attributes
        self.born = {}
        self.clash = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = _dict(kwargs or {})
        if kwargs.get("device") is not None:
            kwargs["device"] = self.target
        if func is _tensor_to and _len(args) > 1 and _isinstance(args[1], (_str, _device)):
            args = (args[0], self.target, *args[2:])
        inputs = _tensors_in(args) + _tensors_in(_builtins.list(kwargs.values()))
        if func not in _CROSS_DEVICE_OK and _len({t.device.type for t in inputs if t.dim() > 0}) > 1:
            self._note_clash(inputs)
            raise _DeviceClash("tensors on two devices meet in one operation")
        try:
            out = func(*args, **kwargs)
        except BaseException:
            self._note_clash(inputs)
            raise
        self._remember(out, inputs)
        return out

    def _remember(self, out, inputs):
        """Off-target results: born here without a device, or computed from such a tensor (site inherited)."""
        for t in _tensors_in([out]):
            if t.device.type == self.target.type or _len(self.born) >= MAX_BORN:
                continue
            site = self.site_of(inputs)
            if site is None and not any(_id(i) in self.attributes for i in inputs):
                site = _student_site()
            if site is not None:
                self.born[_id(t)] = (t, site)

    def site_of(self, tensors):
        for t in tensors:
            if _id(t) in self.born:
                return self.born[_id(t)][1]
        return None

    def _note_clash(self, inputs):
        """A mixing of devices is kept once seen; any other error only until a later one (the student's code
        may catch errors and go on: the last is the one that stopped the forward pass)."""
        if self.clash is None or not self.clash.get("mixed"):
            self.clash = self._describe_clash(inputs)

    def _describe_clash(self, inputs):
        kinds = _builtins.sorted({_str(t.device.type) for t in inputs if t.dim() > 0})
        if _len(kinds) < 2:
            return {"mixed": False, "at": _student_site()}
        strays = [t for t in inputs if t.device.type != self.target.type]
        site = self.site_of(strays)
        return {"mixed": True, "at": _student_site(), "devices": kinds, "created": [site] if site else [],
                "attribute": any(_id(t) in self.attributes for t in strays)}


def _attribute_tensors(model):
    """Ids of the tensors the model's modules hold as plain attributes (model.to() leaves them where they are)."""
    found = _builtins.set()
    for module in _builtins.list(model.modules())[:MAX_LIST]:
        for value in _builtins.list(_getattr(module, "__dict__", {}).values())[:MAX_LIST]:
            for t in _tensors_in([value]):
                found.add(_id(t))
    return found


def _default_device():
    """The device torch.set_default_device() set in the notebook, else None."""
    # torch.utils._device is imported by set_default_device itself: absent, no default device was ever set.
    return _getattr(_modules.get("torch.utils._device"), "CURRENT_DEVICE", None)


def _device_check(user_ns, req, out):
    """The forward pass with a copy of the model and its inputs on `meta`: does any tensor stay on the CPU?"""
    dtype = _DTYPES[req["dtype"]]
    target = _device("meta")
    old_dtype, old_default = _get_default_dtype(), _default_device()
    try:
        _set_default_dtype(dtype)
        if old_default is not None:
            _set_default_device(target)  # the notebook's own default device is the model's device too
        model, info = _build(user_ns, req)
        if model is None:
            out.step("device", {"ok": False, "built": False, "error": info.get("error", info["reason"])})
            return
        # A copy: a submodule shared with the notebook (self.fc = a global layer) must stay where it is. A model
        # that cannot be copied is the fresh instance _build made for this check alone.
        try:
            model = _deepcopy(model)
        except Exception:
            pass
        model = model.to(target)
        args = [_empty(_tuple(int(n) for n in shape), dtype=dtype, device=target) for shape in req["args"]]
        watch = _DeviceWatch(target, _attribute_tensors(model))
        try:
            with _no_grad(), watch:
                y = model(*args)
        except BaseException as exc:
            out.step("device", {"ok": False, "built": True, "error": _err(exc), **(watch.clash or {})})
            return
        if watch.clash is not None and watch.clash.get("mixed"):
            # The forward pass caught the error itself and went on: on the NPU that operation still fails.
            out.step("device", {"ok": False, "built": True, "error": "_DeviceClash: caught by the forward pass",
                                **watch.clash})
            return
        found = _str(y.device.type) if _isinstance(y, _Tensor) else None
        site = watch.site_of([y]) if _isinstance(y, _Tensor) else None
        out.step("device", {"ok": True, "built": True, "output_device": found, "created": [site] if site else []})
    finally:
        _set_default_dtype(old_dtype)
        if old_default is not None:
            _set_default_device(old_default)


def _run(user_ns, req, req_dir, out):
    """Forward/backward in each requested dtype until the plain call works."""
    attempts = []
    for dname in req["dtypes"]:
        dtype = _DTYPES[dname]
        old = _get_default_dtype()
        tag = dname
        try:
            # The template builds h0 with torch.zeros(batch, hidden): the default
            # dtype decides whether the whole computation runs in float64.
            _set_default_dtype(dtype)
            model, info = _build(user_ns, req)
            if model is None:
                attempts.append({"dtype": dname, "ok": False, "error": info.get("error", info["reason"])})
                continue
            # The grading device (the notebook's own `device` points there too).
            model = model.to(req.get("device") or "cpu")
            problems = _write_weights(model, req, req_dir)
            if problems:
                attempts.append({"dtype": dname, "ok": False, "weights": problems})
                break  # a layout problem does not depend on the dtype
            dtypes = {p: _str(t.dtype).replace("torch.", "") for p in req["params"]
                      for t in [_locate(model, p)] if _isinstance(t, _Tensor)}
            calls, grad = _run_calls(model, req, req_dir, dtype, out, tag)
            ok = calls.get(req["calls"][0]["name"], {}).get("ok", False)
            attempts.append({"dtype": dname, "ok": ok, "calls": calls, "grad": grad, "param_dtypes": dtypes})
            if ok:
                device = req.get("device") or "cpu"
                first = req["calls"][0]["args"]
                args = [_from_numpy(_load(req_dir, req["inputs"][a])).to(device=device, dtype=dtype) for a in first]
                out.step("observed", _observe(model, args))
                break
        except BaseException as exc:
            attempts.append({"dtype": dname, "ok": False, "error": _err(exc)})
        finally:
            _set_default_dtype(old)
    out.step("run", {"ok": True, "attempts": attempts})


def main(request_dir, user_ns):
    req = _json_loads(_open(_join(request_dir, "request.json"), encoding="utf-8").read())
    out_dir = _join(request_dir, "out")
    _os.makedirs(out_dir, exist_ok=True)
    out = _Out(out_dir)
    grad_was = _torch.is_grad_enabled()
    default_was = _get_default_dtype()
    # Building models draws from torch's global RNG; leave the notebook's stream as it was.
    with _fork_rng(devices=[]):
        try:
            if req["mode"] == "inspect":
                model, info = _build(user_ns, req)
                out.step("construct", info)
                if model is not None:
                    _inspect(model, req, out)
                    _init_samples(user_ns, req, out)
            elif req["mode"] == "run":
                _run(user_ns, req, request_dir, out)
            elif req["mode"] == "device":
                _device_check(user_ns, req, out)
        except BaseException as exc:
            out.step("probe", {"ok": False, "error": _err(exc)})
        finally:
            _torch.set_grad_enabled(grad_was)
            _set_default_dtype(default_was)
    out.finish()
