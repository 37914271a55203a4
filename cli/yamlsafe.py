"""YAML written by someone else, read within one node budget: sdeliver.yaml and the API file.

PyYAML shares an aliased node instead of copying it, so a few hundred bytes of anchors and
aliases (a "billion laughs" document) stand for 10^9 nodes, or for a cycle. Loading them
is cheap; whatever then walks the data (pydantic, `json.dumps`, a diff) runs out of memory
or never ends. So the composed node graph is walked first, each alias counted as every
node it expands to, and a document over budget, or with a cycle, is refused before
anything is constructed.

The budget is MAX_ALIAS_NODES plus the length of the text. Without aliases every node
takes at least about a byte of text, so no alias-free document is ever refused, however
large; aliases may add up to 20,000 expanded nodes, far more than any honest use of them.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_ALIAS_NODES = 20_000


class YamlProblem(Exception):
    """Why a YAML text was refused, and the 1-based line when one is known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def node_budget(text: str) -> int:
    return MAX_ALIAS_NODES + len(text)


def compose(text: str) -> yaml.Node | None:
    """The document's node graph (None when empty), within the node budget."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError) as err:
        raise _refusal(err) from None
    if node is not None:
        _count(node, node_budget(text))
    return node


def _refusal(err: Exception) -> YamlProblem:
    """One line for any YAML failure, never PyYAML's caret art."""
    if isinstance(err, RecursionError):
        return YamlProblem("the document nests too deeply (or an alias refers to itself)")
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        problem = " ".join(str(err.problem or err.context or "malformed YAML").split())
        return YamlProblem(f"malformed YAML: {problem}", mark.line + 1 if mark else None)
    first = " ".join(str(err).split("\n")[0].split())
    return YamlProblem(f"malformed YAML: {first}")


def _count(root: yaml.Node, budget: int) -> None:
    """Visit every node as often as aliases reach it; refuse a cycle or more than `budget`."""
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    ancestors: set[int] = set()  # ids of the nodes on the path to the one visited
    seen = 0
    while stack:
        node, leaving = stack.pop()
        if leaving:
            ancestors.discard(id(node))
            continue
        if id(node) in ancestors:
            raise YamlProblem(
                "the document nests too deeply: an alias refers to a node that contains it",
                node.start_mark.line + 1,
            )
        seen += 1
        if seen > budget:
            raise YamlProblem(
                f"the YAML document is too large once its aliases are expanded "
                f"(over {budget:,} nodes)"
            )
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            continue
        ancestors.add(id(node))
        stack.append((node, True))
        stack += ((child, False) for child in reversed(children))


def construct(node: yaml.Node) -> Any:
    """The Python data of a node graph from `compose` (safe tags only)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as err:
        # ValueError, TypeError: a value its tag cannot hold (a date like 2024-13-45).
        raise _refusal(err) from None
    finally:
        loader.dispose()


def load(text: str) -> Any:
    """`yaml.safe_load` within the node budget; every failure is a `YamlProblem`."""
    node = compose(text)
    return None if node is None else construct(node)
