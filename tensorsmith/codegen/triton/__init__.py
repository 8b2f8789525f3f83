"""The Triton backend: kernel IR -> Triton source (emit.py), loaded through the cache (build.py)."""
