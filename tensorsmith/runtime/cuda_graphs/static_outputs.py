"""The outputs of a captured call, in memory every replay rewrites, and the liveness rule.

A replay rewrites the same output memory, so it must never run while anything outside still
references an earlier replay's outputs (the user kept `loss`, autograd saved an activation,
AccumulateGrad made a gradient `param.grad`). StaticOutputs keeps, per distinct output storage, one
private whole-storage tensor (never handed out) and a weak reference to the storage; each call
hands out NEW tensor objects (`set_` on that storage, no `_base`), so every outside reference, to a
handed-out tensor, a view or detach of one, or a gradient stolen into `.grad`, is a tensor of its
own that holds one more use of the storage. The storage's use count (`torch._C._storage_Use_Count`,
as Inductor's cudagraph trees read it) is then exactly: 1 (the private tensor) + the PyObject
PyTorch keeps for a storage whose Python object was created (PRESERVED, 0 or 1, probed once;
StaticOutputs creates that object before it measures, so it is there from then on) + outside
references. The count measured right after capture must equal 1 + PRESERVED (else the graph is not
replayed: something unknown holds it); before each replay a count above that means "held", and
that call runs the ordinary way with fresh outputs. Handing out the private tensor itself would
make this blind: outside holders of the same tensor object add no storage use. Outputs of at most
COPY_OUT_BYTES (a loss) are handed out as copies instead, so that `loss = model(x)` in a loop,
which holds the last loss through the next call, does not make every other call ordinary.

Not covered (nothing in the storage counts them): work the caller queued on another stream that
reads an output it has already dropped (record_stream), and raw pointers kept outside PyTorch.
"""
from __future__ import annotations

import weakref

import torch
from torch.multiprocessing.reductions import StorageWeakRef

# Outputs of at most this many bytes (a loss) are handed out as copies: `loss = model(x)` in a loop
# holds the last loss through the next call, which would otherwise run ordinary every other step.
COPY_OUT_BYTES = 1024


def use_count(ref: StorageWeakRef) -> int:
    """How many strong references the storage behind `ref` has (0 once freed)."""
    return torch._C._storage_Use_Count(ref.cdata)


def _probe_preserved() -> int:
    """The uses a storage's own PyObject adds once created (PyTorch keeps it alive with the
    storage): 1 where it is preserved, 0 where it dies with its last Python reference."""
    t = torch.empty(1)
    ref = StorageWeakRef(t.untyped_storage())  # creates the storage's PyObject, then drops ours
    return use_count(ref) - 1


PRESERVED = _probe_preserved()


class StaticOutputs:
    """The outputs of a captured call, in memory every replay rewrites: hands out fresh tensor
    objects over it and tells whether any handed out earlier is still referenced (module docstring:
    the liveness rule)."""

    def __init__(self, outputs: list[torch.Tensor], copy_out_bytes: int | None = None):
        copy_out_bytes = COPY_OUT_BYTES if copy_out_bytes is None else copy_out_bytes
        self.storages: list[torch.Tensor] = []  # one private uint8 tensor per distinct storage
        self.refs: list[StorageWeakRef] = []
        # per output: (storage index or None, dtype, device, size, stride, offset, handed out as a copy)
        self.layout: list[tuple] = []
        index: dict[int, int] = {}
        for t in outputs:
            if t.numel() == 0:  # no memory to share: a fresh empty tensor each call
                self.layout.append((None, t.dtype, t.device, t.size(), t.stride(), 0, False))
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key not in index:
                index[key] = len(self.storages)
                self.storages.append(torch.empty(0, dtype=torch.uint8, device=t.device).set_(storage))
                self.refs.append(StorageWeakRef(storage))
            small = t.numel() * t.element_size() <= copy_out_bytes
            self.layout.append((index[key], t.dtype, t.device, t.size(), t.stride(), t.storage_offset(), small))
        self.expected = 1 + PRESERVED
        self.baseline: list[int] = []
        self.pointers = {s.untyped_storage().data_ptr() for s in self.storages}
        CAPTURED_OUTPUTS.add(self)

    def owns(self, pointer: int) -> bool:
        """Whether the storage at `pointer` is one of these outputs' (call_sites.py)."""
        return pointer in self.pointers

    def seal(self) -> str | None:
        """Record the use counts, once the captured call's own output tensors are gone; a problem
        (a count that is not only ours) or None."""
        self.baseline = [use_count(r) for r in self.refs]
        odd = [c for c in self.baseline if c != self.expected]
        if odd:
            return (f"an output's storage has {odd[0]} references right after capture, "
                    f"expected {self.expected}")
        return None

    def held(self) -> bool:
        """Whether any output handed out earlier (or anything made from one) is still referenced."""
        return any(use_count(r) > c for r, c in zip(self.refs, self.baseline))

    def hand_out(self) -> list[torch.Tensor]:
        result = []
        for entry in self.layout:
            t = self._view(entry)
            result.append(t.clone() if entry[-1] and entry[0] is not None else t)
        return result

    def fill(self, values: list[torch.Tensor]) -> None:
        """Write `values` (one per output, as an ordinary call returned them) into the memory. An
        output that broadcasts a buffer (a stride-0 dim: an expanded mask or rotary table) is
        written through one element of each such dim, since its other elements are the same memory."""
        for entry, value in zip(self.layout, values):
            if entry[0] is not None:
                target, value = _one_per_broadcast_dim(self._view(entry), value)
                target.copy_(value)

    def _view(self, entry: tuple) -> torch.Tensor:
        i, dtype, device, size, stride, offset, _ = entry
        if i is None:
            return torch.empty_strided(size, stride, dtype=dtype, device=device)
        return torch.empty(0, dtype=dtype, device=device).set_(self.storages[i].untyped_storage(), offset,
                                                               size, stride)


def _one_per_broadcast_dim(target: torch.Tensor, value: torch.Tensor):
    """`target` and `value` narrowed to one element along each dim `target` broadcasts (stride 0)."""
    for dim, (size, stride) in enumerate(zip(target.size(), target.stride())):
        if stride == 0 and size > 1:
            target, value = target.narrow(dim, 0, 1), value.narrow(dim, 0, 1)
    return target, value


# The static outputs of every live capture: the arguments a call-site runner may take in place.
CAPTURED_OUTPUTS: weakref.WeakSet[StaticOutputs] = weakref.WeakSet()


def captured_output(t: torch.Tensor) -> bool:
    """Whether `t` lives in the static outputs of a capture (a replayed graph's output)."""
    pointer = t.untyped_storage().data_ptr()
    return any(outputs.owns(pointer) for outputs in list(CAPTURED_OUTPUTS))
