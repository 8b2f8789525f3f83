"""ATen -> IR lowerings, grouped by family; importing this package registers them all."""
from . import creation, elementwise, indexing, layout, nn, prims, reductions, views  # noqa: F401
from .registry import LOWERINGS, LoweringContext, lower

__all__ = ["LOWERINGS", "LoweringContext", "lower"]
