"""The driver: a Dynamo graph in, a callable out (backend.py: Dynamo and AOTAutograd; driver.py:
import -> passes -> codegen.py: the backend's passes, schedule, emit, build, runner)."""
