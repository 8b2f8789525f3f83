"""What each rank runs in the distributed tests (tests/distributed/dist_launch.py spawns them).

Every scenario trains the same model eagerly and compiled with tensorsmith under the same wrapper
(DDP or FSDP2), in the same process, on the same per-rank batches, and returns the losses and the
full gradients of every step for the parent to compare. A spy around tensorsmith's graph compiler
records which graphs were compiled and, at run time, the order in which they ran, so the
parent can also check how the work was split and where the communication happened.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from tensorsmith.bench.models.nanogpt import make_batch
from tensorsmith.bench.models.small import MLP, TINY_GPT, NanoGPT

STEPS = 3


class Spy:
    """Wraps tensorsmith's AOTAutograd graph compilers (installed before the rank compiles): keeps
    each compiled graph's kind and ATen targets, and logs each run of a compiled graph."""

    def __init__(self):
        from tensorsmith.compile import backend

        self.graphs: list[tuple[str, list[str]]] = []
        self.log: list[tuple] | None = None  # appended to while not None
        original = backend._compiler

        def compiler(kind):
            inner = original(kind)

            def compile_graph(gm, example_inputs):
                index = len(self.graphs)
                self.graphs.append((kind, [str(n.target) for n in gm.graph.nodes
                                           if n.op == "call_function"]))
                run = inner(gm, example_inputs)

                def logged(args):
                    if self.log is not None:
                        self.log.append((kind, index))
                    return run(args)
                logged._boxed_call = True
                return logged
            return compile_graph
        backend._compiler = compiler
        backend._aot_backend.cache_clear()  # built from the unwrapped compilers (dist_warmup.py)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.graphs]

    def collectives(self) -> list[str]:
        """ATen targets of communication ops that ended up inside compiled graphs."""
        return sorted({t for _, targets in self.graphs for t in targets
                       if "c10d" in t or "all_gather" in t or "reduce_scatter" in t
                       or "all_reduce" in t})


def _model(name: str):
    torch.manual_seed(0)  # the same initial weights on every rank
    return MLP() if name == "mlp" else NanoGPT(TINY_GPT)


def _batches(name: str, rank: int):
    g = torch.Generator().manual_seed(1000 + rank)  # different data on each rank
    if name == "mlp":
        return [(torch.randn(8, 32, generator=g), torch.randint(0, 10, (8,), generator=g))
                for _ in range(STEPS)]
    return [make_batch(TINY_GPT, 2, g) for _ in range(STEPS)]


def _loss(name, net, batch):
    if name == "mlp":
        return F.cross_entropy(net(batch[0]), batch[1])
    return net(*batch)


def _full(t: torch.Tensor) -> torch.Tensor:
    from torch.distributed.tensor import DTensor
    return (t.full_tensor() if isinstance(t, DTensor) else t).detach().clone()


def _train(name, net, params_of, rank, spy=None):
    """STEPS AdamW steps; the loss and every parameter's full gradient after each backward."""
    opt = torch.optim.AdamW(params_of.parameters(), lr=1e-3)
    losses, grads, logs = [], [], []
    for step, batch in enumerate(_batches(name, rank)):
        opt.zero_grad(set_to_none=True)
        if spy is not None and step > 0:  # step 0 compiles; later steps are steady state
            spy.log = []
        loss = _loss(name, net, batch)
        loss.backward()
        if spy is not None and spy.log is not None:
            logs.append(spy.log)
            spy.log = None
        losses.append(loss.item())
        grads.append({n: _full(p.grad) for n, p in params_of.named_parameters()})
        opt.step()
    return {"losses": losses, "grads": grads, "logs": logs}


def ddp(rank: int, world: int, name: str, bucket_bytes: int, bucket_view: bool = False):
    """Eager DDP vs DDP compiled with tensorsmith. Small buckets (both the first and the rest, so
    that DDPOptimizer accepts them) make Dynamo's DDPOptimizer split the graph at bucket boundaries;
    a comm hook logs each bucket's all-reduce into the spy's run log, between the backward graphs.
    `bucket_view`: DDP's gradient_as_bucket_view (the gradients are views of its buckets)."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel as DDP

    spy = Spy()
    dist._DEFAULT_FIRST_BUCKET_BYTES = bucket_bytes  # read by DDP and by DDPOptimizer

    def hook(state, bucket):
        if spy.log is not None:
            spy.log.append(("allreduce", bucket.index()))
        return allreduce_hook(state, bucket)

    results = {}
    for mode in ("eager", "compiled"):
        module = _model(name)
        wrapped = DDP(module, bucket_cap_mb=bucket_bytes / 2**20, gradient_as_bucket_view=bucket_view)
        wrapped.register_comm_hook(None, hook)
        net = torch.compile(wrapped, backend="tensorsmith") if mode == "compiled" else wrapped
        results[mode] = _train(name, net, module, rank, spy if mode == "compiled" else None)
    from tensorsmith import records
    results["graphs"] = spy.kinds()
    results["fallbacks"] = [r.graph_id for r in records.RECORDS if r.whole_graph_fallback]
    results["collectives"] = spy.collectives()
    return results


def fsdp2(rank: int, world: int, name: str):
    """Eager FSDP2 vs FSDP2 with compiled blocks: nanoGPT's transformer blocks are each sharded and
    compiled (`block.compile(...)`, the documented per-layer pattern), the MLP is sharded and compiled
    whole. FSDP2's all-gathers and reduce-scatters run in its module hooks, outside compiled code."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    spy = Spy()
    mesh = init_device_mesh("cpu", (world,))
    results = {}
    for mode in ("eager", "compiled"):
        model = _model(name)
        if name == "nanogpt":
            for block in model.blocks:
                fully_shard(block, mesh=mesh)
                if mode == "compiled":
                    block.compile(backend="tensorsmith")
        fully_shard(model, mesh=mesh)
        if name == "mlp" and mode == "compiled":
            model.compile(backend="tensorsmith")
        assert all(isinstance(p, DTensor) for p in model.parameters()), "parameters not sharded"
        results[mode] = _train(name, model, model, rank, spy if mode == "compiled" else None)
    from tensorsmith import records
    results["graphs"] = spy.kinds()
    results["fallbacks"] = [r.graph_id for r in records.RECORDS if r.whole_graph_fallback]
    results["collectives"] = spy.collectives()
    return results
