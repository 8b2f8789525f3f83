"""The driver: a Dynamo graph in, a callable out. backend.py (Dynamo and AOTAutograd) hands each
graph to driver.py: import -> the passes every backend runs -> codegen.py (the backend's passes,
schedule, emit, build, runner; backends.py, cpp.py, triton.py) -> the executor. specialize.py
decides which shapes of a dynamic graph compile; fallback.py turns any failure into ATen."""
