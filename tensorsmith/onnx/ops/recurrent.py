"""Recurrent ONNX ops: RNN, GRU, LSTM, unrolled over the (static) sequence length.

Inputs are X [seq, batch, input] (layout 0) or [batch, seq, input] (layout 1); weights hold one
block per direction (forward, then reverse for "bidirectional"). A batch entry whose
`sequence_lens` ends early keeps its state from then on and outputs zeros.
"""
from __future__ import annotations

import torch

from ...errors import OnnxModelError
from .registry import UNROLLED_ITERATIONS, DataDependent, ints, is_constant, op, scope

# Activation functions by lower-cased name: (function of x, alpha, beta; default alpha, beta).
_ACTIVATIONS = {
    "relu": (lambda x, a, b: torch.relu(x), None, None),
    "tanh": (lambda x, a, b: torch.tanh(x), None, None),
    "sigmoid": (lambda x, a, b: torch.sigmoid(x), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: torch.where(x >= 0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: torch.where(x > a, x, torch.zeros_like(x)), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * torch.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: torch.clamp(a * x + b, 0, 1), 0.2, 0.5),
    "elu": (lambda x, a, b: torch.where(x >= 0, x, a * torch.expm1(x)), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + torch.abs(x)), None, None),
    "softplus": (lambda x, a, b: torch.nn.functional.softplus(x), None, None),
}


def _activations(node, defaults: list[str], directions: int) -> list[list]:
    """Per direction, the activation functions of the node (alpha and beta values are taken in
    order by the functions that use them)."""
    names = node.attr("activations") or defaults * directions
    if len(names) == len(defaults) and directions == 2:
        names = names * 2
    alphas, betas = list(node.attr("activation_alpha", [])), list(node.attr("activation_beta", []))
    functions = []
    for name in names:
        try:
            fn, alpha, beta = _ACTIVATIONS[name.lower()]
        except KeyError:
            raise OnnxModelError(f"{node.where()}: unknown activation {name!r}") from None
        alpha = alphas.pop(0) if alpha is not None and alphas else alpha
        beta = betas.pop(0) if beta is not None and betas else beta
        functions.append(lambda x, fn=fn, alpha=alpha, beta=beta: fn(x, alpha, beta))
    per = len(defaults)
    return [functions[d * per:(d + 1) * per] for d in range(directions)]


def _clip(node):
    """Clamps a gate's input to [-clip, clip] (the identity when the node has no clip)."""
    bound = node.attr("clip")
    return (lambda x: x) if bound is None else (lambda x: torch.clamp(x, -bound, bound))


def _recurrent(node, cell, x, w, r, b, p, initial, sequence_lens, defaults) -> tuple:
    """Runs `cell(activations, x_t W^T + Wb, states, R, Rb, P) -> states` over time in each
    direction; Y stacks the first state (h) of each step, the final states follow."""
    if node.attr("layout", 0):
        x = x.transpose(0, 1)
        initial = [s if s is None else s.transpose(0, 1) for s in initial]
    steps, batch = x.shape[0], x.shape[1]
    if scope().tracing and steps > UNROLLED_ITERATIONS:
        raise DataDependent(f"{node.where()}: {steps} time steps are not unrolled into a traced "
                            "graph")
    directions, hidden = w.shape[0], r.shape[-1]
    if b is None:
        b = x.new_zeros(directions, 2 * w.shape[1])
    lens = _lengths(sequence_lens, steps, x.device)
    activations = _activations(node, defaults, directions)
    outputs, finals = [], []
    for d in range(directions):
        states = [x.new_zeros(batch, hidden) if s is None else s[d] for s in initial]
        reverse = d == 1 or node.attr("direction", "forward") == "reverse"
        w_bias, r_bias = b[d].chunk(2)
        xw = (_flip(x, lens) if reverse else x) @ w[d].transpose(0, 1) + w_bias
        ys = []
        for t in range(steps):
            new = cell(activations[d], xw[t], states, r[d], r_bias, None if p is None else p[d])
            if lens is not None:
                live = (t < lens).unsqueeze(-1)
                new = [torch.where(live, n, s) for n, s in zip(new, states)]
                ys.append(torch.where(live, new[0], torch.zeros_like(new[0])))
            else:
                ys.append(new[0])
            states = new
        y = torch.stack(ys)
        outputs.append(_flip(y, lens) if reverse else y)
        finals.append(states)
    y, finals = torch.stack(outputs, 1), [torch.stack(f) for f in zip(*finals)]
    if node.attr("layout", 0):
        return (y.permute(2, 0, 1, 3), *(f.transpose(0, 1) for f in finals))
    return (y, *finals)


def _lengths(sequence_lens, steps: int, device) -> torch.Tensor | None:
    """The sequence lengths as int64, or None when every sequence has all `steps`."""
    if sequence_lens is None:
        return None
    if is_constant(sequence_lens) and all(n == steps for n in ints(sequence_lens)):
        return None
    return sequence_lens.to(torch.int64).to(device)


def _flip(x: torch.Tensor, lens: torch.Tensor | None) -> torch.Tensor:
    """`x` [seq, batch, features] with each batch entry's first `lens` steps in reverse order."""
    if lens is None:
        return x.flip(0)
    t = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
    index = torch.where(t < lens, lens - 1 - t, t)
    return torch.gather(x, 0, index.unsqueeze(-1).expand_as(x))


@op("RNN")
def rnn(node, x, w, r, b=None, sequence_lens=None, initial_h=None):
    clip = _clip(node)

    def cell(acts, xw, states, r, r_bias, p):
        return [acts[0](clip(xw + states[0] @ r.transpose(0, 1) + r_bias))]
    return _recurrent(node, cell, x, w, r, b, None, [initial_h], sequence_lens, ["Tanh"])


@op("GRU")
def gru(node, x, w, r, b=None, sequence_lens=None, initial_h=None):
    """Gates z, r, h in that order; `linear_before_reset` applies the reset gate after the
    recurrence weights of h."""
    linear, clip = node.attr("linear_before_reset", 0), _clip(node)

    def cell(acts, xw, states, r, r_bias, p):
        (h,), (r_z, r_r, r_h), (b_z, b_r, b_h) = states, r.chunk(3), r_bias.chunk(3)
        x_z, x_r, x_h = xw.chunk(3, -1)
        z = acts[0](clip(x_z + h @ r_z.transpose(0, 1) + b_z))
        reset = acts[0](clip(x_r + h @ r_r.transpose(0, 1) + b_r))
        if linear:
            candidate = acts[1](clip(x_h + reset * (h @ r_h.transpose(0, 1) + b_h)))
        else:
            candidate = acts[1](clip(x_h + (reset * h) @ r_h.transpose(0, 1) + b_h))
        return [(1 - z) * candidate + z * h]
    return _recurrent(node, cell, x, w, r, b, None, [initial_h], sequence_lens,
                      ["Sigmoid", "Tanh"])


@op("LSTM")
def lstm(node, x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None, p=None):
    """Gates i, o, f, c in that order; peepholes P hold i, o, f; `input_forget` couples the
    forget gate to 1 - input gate; `clip` clamps the gates' inputs, not the cell's."""
    coupled, clip = node.attr("input_forget", 0), _clip(node)

    def cell(acts, xw, states, r, r_bias, p):
        h, c = states
        g_i, g_o, g_f, g_c = (xw + h @ r.transpose(0, 1) + r_bias).chunk(4, -1)
        p_i, p_o, p_f = (0, 0, 0) if p is None else p.chunk(3)
        i = acts[0](clip(g_i + p_i * c))
        f = 1 - i if coupled else acts[0](clip(g_f + p_f * c))
        c = f * c + i * acts[1](clip(g_c))
        o = acts[0](clip(g_o + p_o * c))
        return [o * acts[2](c), c]
    return _recurrent(node, cell, x, w, r, b, p, [initial_h, initial_c], sequence_lens,
                      ["Sigmoid", "Tanh", "Tanh"])
