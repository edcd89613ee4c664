"""Argument normalisation shared by every sdk function: a Graph, or a path to a .t1c file."""

from __future__ import annotations

import os
from typing import Union

from talon.errors import TalonUsageError
from talon.ir import Graph, read

GraphLike = Union[Graph, str, "os.PathLike[str]"]


def as_graph(graph: GraphLike) -> Graph:
    """Return `graph` itself if it is a Graph, else read it from the .t1c file it names."""
    if isinstance(graph, Graph):
        return graph
    if isinstance(graph, (str, os.PathLike)):
        return read(os.fspath(graph))
    raise TalonUsageError(f"expected a talon.ir.Graph or a path to a .t1c file, got {type(graph).__name__}")
