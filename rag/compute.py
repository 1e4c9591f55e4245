"""Where the generator computes: the GPU layers resolved from the setting (in one place), the
devices llama.cpp sees, and the one line and JSON object that report them.

`Settings.n_gpu_layers` is None by default ("auto"): every layer goes to the GPU when the
installed llama.cpp can offload (`llama_supports_gpu_offload()`: a GPU backend such as CUDA was
compiled in and sees a device), none otherwise. A number given with RAG_N_GPU_LAYERS is used as
it is (0 keeps everything on the CPU, -1 offloads every layer). On a CPU-only build auto is 0,
exactly what the default was before, so nothing changes there (nor the probe's cache key).

llama.cpp offloads min(n_gpu_layers, n_layer + 1) layers (the repeating layers plus the output
layer; llama-cpp-python passes -1 as "as many as there are") and only when it has a GPU device.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass, field

# enum ggml_backend_dev_type (ggml-backend.h of the llama.cpp in llama-cpp-python 0.3.36)
DEVICE_KINDS = ("CPU", "GPU", "IGPU", "ACCEL", "META")
GPU_KINDS = ("GPU", "IGPU")


@dataclass(frozen=True)
class Device:
    """One device of a llama.cpp backend: "CUDA0", "NVIDIA H100 80GB HBM3", kind "GPU", bytes."""

    name: str
    description: str
    kind: str
    backend: str = ""  # the backend that registered it: "CUDA", "Vulkan", "Metal", "CPU"
    memory_free: int | None = None
    memory_total: int | None = None


def resolve_gpu_layers(requested: int | None, offload_supported: bool) -> int:
    """The layers to ask llama.cpp to offload: the setting, or with auto (None) all of them
    (-1) when the build can offload and none (0) when it cannot.

    >>> resolve_gpu_layers(None, True), resolve_gpu_layers(None, False)
    (-1, 0)
    >>> resolve_gpu_layers(0, True), resolve_gpu_layers(12, False)
    (0, 12)
    """
    if requested is None:
        return -1 if offload_supported else 0
    return requested


def offload_supported() -> bool:
    """Whether the installed llama.cpp can put layers on a GPU (False when it is not installed:
    loading a model then says how to install it)."""
    try:
        import llama_cpp
    except ImportError:
        return False
    return bool(llama_cpp.llama_supports_gpu_offload())


def gpu_layers(requested: int | None, supported: Callable[[], bool] | None = None) -> int:
    """The one place the setting becomes the number llama.cpp is given (`supported`: whether the
    library can offload, asked only for auto; default `offload_supported`)."""
    if requested is not None:
        return requested
    return resolve_gpu_layers(None, (supported or offload_supported)())


def offloaded_layers(gpu_layers: int, model_layers: int, has_gpu: bool) -> int:
    """How many of the model's layers llama.cpp puts on the GPU (it logs "offloaded N/M").

    >>> offloaded_layers(-1, 30, True), offloaded_layers(10, 30, True), offloaded_layers(-1, 30, False)
    (31, 10, 0)
    """
    if not has_gpu or gpu_layers == 0:
        return 0
    total = model_layers + 1
    return total if gpu_layers < 0 else min(gpu_layers, total)


@dataclass(frozen=True)
class Compute:
    """What the generator runs on, for `rag models` and `rag ask --json`.

    `backend` is "CPU", a GPU backend's name ("CUDA", "Vulkan", "Metal"), "server" (a served
    generator: its compute is the server's) or "" when no generator was loaded."""

    backend: str
    requested: int | None  # the setting: None is auto
    gpu_layers: int | None = None  # what llama.cpp was asked for (-1: all)
    offloaded: int | None = None  # layers on the GPU, when the model's layer count is known
    total: int | None = None  # the model's layers as llama.cpp counts them (n_layer + 1)
    devices: tuple[Device, ...] = field(default_factory=tuple)
    why: str = ""  # why the CPU: "llama.cpp built without GPU offload", "RAG_N_GPU_LAYERS=0"
    where: str = ""  # a served generator's URL

    def line(self) -> str:
        """e.g. 'GPU offload, all 31 layers (CUDA: NVIDIA H100 80GB HBM3)' or
        'CPU (llama.cpp built without GPU offload)'."""
        if self.backend == "server":
            return f"served by {self.where} (the server decides where it computes)"
        if not self.backend:
            return "not loaded"
        if self.backend == "CPU":
            return f"CPU ({self.why})" if self.why else "CPU"
        gpus = [d for d in self.devices if d.kind in GPU_KINDS]
        names = ", ".join(dict.fromkeys(d.description or d.name for d in gpus))
        where = f"{self.backend}: {names}" if names else self.backend
        if self.total is None:
            count = "all layers" if self.gpu_layers == -1 else f"{self.gpu_layers} layers"
        elif self.offloaded == self.total:
            count = f"all {self.total} layers"
        else:
            count = f"{self.offloaded} of {self.total} layers (the rest on the CPU)"
        return f"GPU offload, {count} ({where})"

    def as_json(self) -> dict:
        """{"backend": "CUDA", "gpu_layers_requested": "auto", "gpu_layers": -1,
        "layers_offloaded": 31, "layers": 31, "devices": ["NVIDIA H100 80GB HBM3"]}; null where not
        known (a model not loaded; a served generator, whose layers are the server's business)."""
        gpus = [d for d in self.devices if d.kind in GPU_KINDS]
        requested = None if self.backend == "server" else "auto" if self.requested is None else self.requested
        return {
            "backend": self.backend or None,
            **({"url": self.where} if self.where else {}),
            "gpu_layers_requested": requested,
            "gpu_layers": self.gpu_layers,
            "layers_offloaded": self.offloaded,
            "layers": self.total,
            "devices": [d.description or d.name for d in gpus],
        }


def describe(requested: int | None, gpu_layers: int, supported: bool, devices: list[Device],
             model_layers: int | None) -> Compute:
    """The compute of a model with `model_layers` repeating layers (None: not known) loaded with
    `gpu_layers`, on a build that can (`supported`) or cannot offload, seeing `devices`.

    >>> describe(None, 0, False, [], 18).line()
    'CPU (llama.cpp built without GPU offload)'
    >>> h100 = Device("CUDA0", "NVIDIA H100 80GB HBM3", "GPU", "CUDA")
    >>> describe(None, -1, True, [h100], 30).line()
    'GPU offload, all 31 layers (CUDA: NVIDIA H100 80GB HBM3)'
    >>> describe(0, 0, True, [h100], 30).line()
    'CPU (GPU offload turned off: RAG_N_GPU_LAYERS=0)'
    """
    gpus = [d for d in devices if d.kind in GPU_KINDS]
    total = None if model_layers is None else model_layers + 1
    if not supported or not gpus:
        why = "llama.cpp built without GPU offload" if not supported else "llama.cpp sees no GPU"
        return Compute("CPU", requested, gpu_layers, 0 if total is not None else None, total, tuple(devices), why)
    if gpu_layers == 0:
        return Compute("CPU", requested, 0, 0 if total is not None else None, total, tuple(devices),
                       "GPU offload turned off: RAG_N_GPU_LAYERS=0")
    offloaded = None if model_layers is None else offloaded_layers(gpu_layers, model_layers, True)
    return Compute(gpus[0].backend or gpus[0].name.rstrip("0123456789"), requested, gpu_layers, offloaded, total,
                   tuple(devices))


def served(requested: int | None, url: str) -> Compute:
    """A generator behind an OpenAI-compatible server."""
    return Compute("server", requested, where=url)


def planned(requested: int | None) -> Compute:
    """The compute a model would get if loaded now, read from the installed library without
    loading it (`rag models`; the layer count is known once a model is loaded)."""
    supported = offload_supported()
    return describe(requested, resolve_gpu_layers(requested, supported), supported, devices(supported), None)


# ---------------------------------------------------------------- the library's devices

def devices(supported: bool = True) -> list[Device]:
    """The devices of llama.cpp's backends (ggml's device registry), through its C API: not
    wrapped by llama-cpp-python 0.3.36, so read with ctypes from the libggml it loads. Empty when
    the library is missing or does not export them, and for a build that cannot offload
    (`supported` False: its one device is the CPU, and the CPU path never goes through ctypes)."""
    if not supported:
        return []
    try:
        from llama_cpp import _ggml

        return _read_devices(_ggml.libggml)
    except Exception:  # an older or newer library without these symbols: report what is known
        return []


def _read_devices(lib) -> list[Device]:
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_get.restype, lib.ggml_backend_dev_get.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(lib, name).restype, getattr(lib, name).argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    lib.ggml_backend_dev_type.restype, lib.ggml_backend_dev_type.argtypes = ctypes.c_int, [ctypes.c_void_p]
    lib.ggml_backend_dev_memory.restype = None
    lib.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
    lib.ggml_backend_dev_backend_reg.restype, lib.ggml_backend_dev_backend_reg.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    lib.ggml_backend_reg_name.restype, lib.ggml_backend_reg_name.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    found = []
    for index in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(index)
        kind = lib.ggml_backend_dev_type(dev)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        reg = lib.ggml_backend_dev_backend_reg(dev)
        found.append(Device(_text(lib.ggml_backend_dev_name(dev)), _text(lib.ggml_backend_dev_description(dev)),
                            DEVICE_KINDS[kind] if 0 <= kind < len(DEVICE_KINDS) else f"type {kind}",
                            _text(lib.ggml_backend_reg_name(reg)) if reg else "",
                            int(free.value) or None, int(total.value) or None))
    return found


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw else ""
