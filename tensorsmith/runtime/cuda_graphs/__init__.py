"""Replaying a compiled CUDA graph (runtime/cuda.py's TritonGraph) as a CUDA graph.

A TritonGraph's wrapper launches each Triton kernel through Python: host overhead that dominates
small models. After the wrapper has run the ordinary way the whole call can be recorded once into
a torch.cuda.CUDAGraph and replayed with one launch (for a graph with symbolic sizes, once per
value of its sizes).

Modules, each importing only those listed before it:
- eligibility.py: which graphs and calls may be captured (the eligibility rule, its thresholds),
  and how a refusal is logged and recorded;
- static_outputs.py: the outputs of a capture, which every replay rewrites, and the liveness rule
  that keeps a replay from rewriting outputs still referenced outside;
- runner.py: CudaGraphRunner, which times, captures and replays one graph for one caller (the
  calls, the arguments, the memory);
- call_sites.py: CallSites, one runner per call site of a graph several places call in turn;
- size_buckets.py: SizeBuckets, one runner per value of a symbolic graph's sizes that comes again;
- attach.py: attach(), which gives a TritonGraph after its first call a CallSites, a single
  runner, SizeBuckets, or none.
"""
