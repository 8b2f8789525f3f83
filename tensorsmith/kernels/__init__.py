"""Hand-written kernels for what the kernel IR cannot express well: fused attention.

Every attention kernel here takes and returns the same things (the `tensorsmith::attention` op in
attention_op.py dispatches to them by device):

    forward(q, k, v, mask, is_causal, scale) -> (out, lse)
    backward(grad_out, q, k, v, out, lse, mask, is_causal, scale) -> (dq, dk, dv)

- q is (B, H, Lq, D); k and v are (B, H, Lk, D); any strides (stride 0 where K/V heads are
  expanded for grouped-query attention). Lq, Lk and D need not be powers of two.
- mask is None, or a (B, H, Lq, Lk) tensor, usually an expanded view with stride 0 in broadcast
  dimensions: bool (True = attend) or floating (added to the scaled scores; may hold -inf).
- is_causal: query i attends to keys j <= i (top-left aligned, as scaled_dot_product_attention).
- scores s = scale * q @ k^T (+ float mask); p = softmax(s over keys); out = p @ v.
- lse is float32 (B, H, Lq): the natural log of sum_j exp(s_ij) over unmasked j. A row whose keys
  are all masked has out 0, lse -inf and zero gradients.
- Arithmetic: inputs float32, bfloat16 or float16, accumulation in float32, out and the gradients
  in the inputs' dtype, contiguous. On CUDA a float32 product uses TF32 exactly when PyTorch's
  float32 matmuls would (torch.backends.cuda.matmul.allow_tf32), as the user's hand-written
  attention would have.
"""
