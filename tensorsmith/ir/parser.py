"""Parse the text written by `printer.print_graph` back into a Graph (types as declared, unverified).

Errors give the line and column of the offending token.
"""
from __future__ import annotations

import json
import re

from ..errors import ParseError
from .attrs import Operand, TorchEnum
from .graph import Graph, Node
from .sizes import INF, parse_size
from .types import DTYPES_BY_NAME, TensorType, TupleType

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<value>%[A-Za-z0-9_]+)
  | (?P<operand>\$[0-9]+)
  | (?P<size><[^<>\s]*>)
  | (?P<at>@[A-Za-z0-9_:.]+)
  | (?P<number>-?(?:[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+|[0-9]+))
  | (?P<ident>-?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(){}\[\],:=])
""", re.VERBOSE)


class _Tokens:
    def __init__(self, text: str):
        self.text = text
        self.ranges: dict = {}  # the graph's size symbols: name -> (low, high)
        self.items: list[tuple[str, str, int]] = []  # (kind, text, offset)
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None:
                self.pos = len(self.items)
                self._error_at(pos, f"unexpected character {text[pos]!r}")
            if match.lastgroup != "space":
                self.items.append((match.lastgroup, match.group(), pos))
            pos = match.end()
        self.items.append(("end", "", len(text)))
        self.pos = 0

    def _error_at(self, offset: int, message: str):
        line = self.text.count("\n", 0, offset) + 1
        start = self.text.rfind("\n", 0, offset) + 1
        end = self.text.find("\n", offset)
        raise ParseError(message, line, offset - start + 1, self.text[start:end if end >= 0 else None])

    def error(self, message: str):
        self._error_at(self.items[self.pos][2], message)

    def peek(self) -> tuple[str, str]:
        kind, text, _ = self.items[self.pos]
        return kind, text

    def take(self, kind: str, text: str | None = None) -> str:
        got_kind, got_text = self.peek()
        if got_kind != kind or (text is not None and got_text != text):
            self.error(f"expected {text or kind}, found {got_text or 'end of text'!r}")
        self.pos += 1
        return got_text

    def string(self) -> str:
        """The next token, a JSON string literal, decoded."""
        text = self.take("string")
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            self.pos -= 1
            self.error(f"bad string literal: {e.msg}")

    def dim(self):
        """The next token, a dimension size (a non-negative integer, or a symbolic size)."""
        kind, text = self.peek()
        if kind == "size":
            return self.size()
        if kind != "number" or not text.isdigit():
            self.error(f"expected a dimension size, found {text or 'end of text'!r}")
        self.pos += 1
        return int(text)

    def size(self):
        """The next token, a symbolic size `<12*s0>` over the declared symbols."""
        text = self.take("size")
        try:
            return parse_size(text[1:-1], self.ranges)
        except ValueError as e:
            self.pos -= 1
            self.error(str(e))

    def accept(self, kind: str, text: str | None = None) -> bool:
        got_kind, got_text = self.peek()
        if got_kind == kind and (text is None or got_text == text):
            self.pos += 1
            return True
        return False


def _parse_type(t: _Tokens):
    if t.accept("punct", "("):
        if t.accept("punct", ")"):
            return TupleType(())
        elements = [_parse_type(t)]
        while t.accept("punct", ","):
            elements.append(_parse_type(t))
        t.take("punct", ")")
        return TupleType(tuple(elements))
    name = t.take("ident")
    if name not in DTYPES_BY_NAME:
        t.pos -= 1
        t.error(f"unknown element type {name!r}")
    t.take("punct", "[")
    shape = []
    if not t.accept("punct", "]"):
        shape.append(t.dim())
        while t.accept("punct", ","):
            shape.append(t.dim())
        t.take("punct", "]")
    device = t.take("at")[1:]
    return TensorType(tuple(shape), DTYPES_BY_NAME[name], device)


_WORDS = {"none": None, "true": True, "false": False, "inf": float("inf"), "-inf": float("-inf"),
          "nan": float("nan")}


def _parse_value(t: _Tokens):
    kind, text = t.peek()
    if kind == "number":
        t.pos += 1
        return float(text) if any(c in text for c in ".eE") else int(text)
    if kind == "string":
        return t.string()
    if kind == "operand":
        t.pos += 1
        return Operand(int(text[1:]))
    if kind == "size":
        return t.size()
    if kind == "ident":
        t.pos += 1
        if text in _WORDS:
            return _WORDS[text]
        if text in DTYPES_BY_NAME:
            return DTYPES_BY_NAME[text]
        if text in ("device", "layout", "memory_format"):
            t.take("punct", "(")
            value = t.string()
            t.take("punct", ")")
            return TorchEnum(text, value)
        t.pos -= 1
        t.error(f"unknown word {text!r} in attribute value")
    if t.accept("punct", "["):
        items = []
        if not t.accept("punct", "]"):
            items.append(_parse_value(t))
            while t.accept("punct", ","):
                items.append(_parse_value(t))
            t.take("punct", "]")
        return items
    if t.accept("punct", "{"):
        items = {}
        if not t.accept("punct", "}"):
            while True:
                key = t.string()
                t.take("punct", ":")
                items[key] = _parse_value(t)
                if not t.accept("punct", ","):
                    break
            t.take("punct", "}")
        return items
    t.error(f"expected an attribute value, found {text or 'end of text'!r}")


def _parse_attrs(t: _Tokens) -> dict:
    attrs = {}
    if t.accept("punct", "{"):
        while True:
            key = t.take("ident")
            t.take("punct", "=")
            attrs[key] = _parse_value(t)
            if not t.accept("punct", ","):
                break
        t.take("punct", "}")
    return attrs


def _lookup(t: _Tokens, env: dict[str, Node]) -> Node:
    name = t.take("value")
    if name not in env:
        t.pos -= 1
        t.error(f"use of undefined value {name}")
    return env[name]


def _parse_ranges(t: _Tokens) -> None:
    """`sizes(s0: [2, inf], ...)` after the parameters: the ranges of the graph's size symbols.
    (The parameters' types come first in the text, so their symbols are read after it.)"""
    if not t.accept("ident", "sizes"):
        return
    t.take("punct", "(")
    while True:
        name = t.take("ident")
        t.take("punct", ":")
        t.take("punct", "[")
        low = t.dim()
        t.take("punct", ",")
        high = INF if t.accept("ident", "inf") else t.dim()
        t.take("punct", "]")
        t.ranges[name] = (low, high)
        if not t.accept("punct", ","):
            break
    t.take("punct", ")")


def parse_graph(text: str) -> Graph:
    t = _Tokens(text)
    t.take("ident", "graph")
    graph = Graph(name=t.take("at")[1:])
    env: dict[str, Node] = {}
    t.take("punct", "(")
    header = t.pos
    while not t.accept("punct", ")"):  # skip to the ranges, which the parameters' types need
        t.pos += 1
        if t.peek()[0] == "end":
            t.error("unclosed parameter list")
    _parse_ranges(t)
    body, t.pos = t.pos, header
    if not t.accept("punct", ")"):
        while True:
            name = t.take("value")
            if name in env:
                t.pos -= 1
                t.error(f"value {name} is defined twice")
            t.take("punct", ":")
            env[name] = graph.add_param(name[1:], _parse_type(t))
            if not t.accept("punct", ","):
                break
        t.take("punct", ")")
    t.pos = body
    t.take("punct", "{")
    while not t.accept("ident", "return"):
        name = t.take("value")
        if name in env:
            t.pos -= 1
            t.error(f"value {name} is defined twice")
        t.take("punct", "=")
        op = t.take("ident")
        t.take("punct", "(")
        inputs = []
        if not t.accept("punct", ")"):
            inputs.append(_lookup(t, env))
            while t.accept("punct", ","):
                inputs.append(_lookup(t, env))
            t.take("punct", ")")
        attrs = _parse_attrs(t)
        t.take("punct", ":")
        node_type = _parse_type(t)
        source = None
        if t.accept("ident", "loc"):
            t.take("punct", "(")
            source = t.string()
            t.take("punct", ")")
        node = Node(op, inputs, attrs, node_type, source)
        graph.nodes.append(node)
        env[name] = node
    if t.peek()[0] == "value":
        graph.outputs.append(_lookup(t, env))
        while t.accept("punct", ","):
            graph.outputs.append(_lookup(t, env))
    t.take("punct", "}")
    t.take("end")
    return graph
