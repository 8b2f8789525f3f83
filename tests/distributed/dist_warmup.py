"""Imported once by the forkserver that forks the distributed tests' ranks (dist_launch.py): trains a
tiny function for one step through Dynamo, AOTAutograd and tensorsmith's reference interpreter, so
that the many modules they import lazily (a few seconds' worth) are already loaded in every rank.
One thread, no C++ build and no collective: nothing the forked ranks could inherit half-done."""
import threading

import torch

import tensorsmith

torch.set_num_threads(1)
try:  # a progress bar somewhere in the compile stack would start tqdm's monitor thread
    import tqdm
    tqdm.tqdm.monitor_interval = 0
except ImportError:
    pass
_executor, tensorsmith.config.executor = tensorsmith.config.executor, "interpreter"
try:
    _w = torch.ones(4, 4, requires_grad=True)
    torch.compile(lambda x: (x @ _w).relu().sum(), backend="tensorsmith")(torch.ones(2, 4)).backward()
finally:
    tensorsmith.config.executor = _executor
    torch._dynamo.reset()
    from tensorsmith import records
    records.reset()
assert threading.active_count() == 1, f"warm-up left threads: {threading.enumerate()}"
