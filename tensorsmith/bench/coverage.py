"""Op coverage on the small models: which ATen ops were lowered natively and which fell back.

    python -m tensorsmith.bench.coverage
"""
from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F

from .. import records
from .models.small import MLP, ConvBlock, hf_causal_lm, hf_encoder, tiny_nanogpt


def _cases():
    """(name, model, loss function of the model) for each small model; each trains one step."""
    ids = torch.randint(0, 96, (2, 12))
    model, (idx, targets) = tiny_nanogpt()
    yield "mlp", MLP(), lambda m: F.cross_entropy(m(torch.randn(8, 32)), torch.randint(0, 10, (8,)))
    yield "nanogpt", model, lambda m: m(idx, targets)
    yield "conv_block", ConvBlock(), lambda m: m(torch.randn(2, 8, 8, 8), torch.randn(2, 12)).square().mean()
    yield "hf_gpt2", hf_causal_lm("gpt2"), lambda m: m(input_ids=ids, labels=ids).loss
    yield "hf_llama", hf_causal_lm("llama"), lambda m: m(input_ids=ids, labels=ids).loss
    yield "hf_bert", hf_encoder(), lambda m: m(input_ids=ids).last_hidden_state.square().mean()


def main() -> int:
    totals_native, totals_fallback = Counter(), Counter()
    print(f"{'model':<12}{'graphs':>7}{'native ops':>12}{'op kinds':>10}{'fallbacks':>11}")
    for name, model, loss_fn in _cases():
        torch._dynamo.reset()
        records.reset()
        loss_fn(torch.compile(model, backend="tensorsmith")).backward()
        native = Counter()
        for r in records.RECORDS:
            native.update(r.native)
        fallbacks = Counter(f.target for r in records.RECORDS for f in r.fallbacks)
        totals_native.update(native)
        totals_fallback.update(fallbacks)
        print(f"{name:<12}{len(records.RECORDS):>7}{sum(native.values()):>12}{len(native):>10}"
              f"{sum(fallbacks.values()):>11}  {', '.join(sorted(fallbacks))}")
    print(f"\nnative ATen ops seen: {len(totals_native)} kinds; fallbacks: "
          f"{dict(totals_fallback) or 'none'}")
    print("native:", ", ".join(sorted(totals_native)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
