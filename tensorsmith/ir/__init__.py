"""The tensorsmith IR: typed graphs, their text form, the verifier and the reference interpreter."""
from .attrs import Operand, TorchEnum
from .graph import Graph, Node
from .interpret import interpret
from .ops import OPS, infer_type
from .parser import parse_graph
from .printer import print_graph
from .types import DType, TensorType, TupleType, dtype_from_torch
from .verify import verify

__all__ = ["DType", "Graph", "Node", "OPS", "Operand", "TensorType", "TorchEnum", "TupleType",
           "dtype_from_torch", "infer_type", "interpret", "parse_graph", "print_graph", "verify"]
