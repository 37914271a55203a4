"""One node budget for every YAML file sdeliver reads (sdeliver.yaml, the API file)."""

from __future__ import annotations

import pytest
from sdeliver.yamlsafe import MAX_ALIAS_NODES, YamlProblem, load


def test_a_document_without_aliases_is_never_over_budget_however_many_nodes() -> None:
    items = MAX_ALIAS_NODES + 5000
    assert len(load("[" + "1," * items + "]")) == items


def test_aliases_may_add_a_bounded_number_of_nodes() -> None:
    fine = "a: &a [" + ", ".join(["x"] * 100) + "]\nb: [" + ", ".join(["*a"] * 100) + "]\n"
    assert len(load(fine)["b"]) == 100
    bomb = "a: &a [" + ", ".join(["x"] * 100) + "]\nb: [" + ", ".join(["*a"] * 300) + "]\n"
    with pytest.raises(YamlProblem, match="too large once its aliases are expanded"):
        load(bomb)


def test_malformed_yaml_is_one_line_with_its_line_number() -> None:
    with pytest.raises(YamlProblem) as raised:
        load("a: 1\nb: [\n")
    assert raised.value.line == 3
    assert raised.value.message.startswith("malformed YAML: ")
    assert "\n" not in raised.value.message


def test_a_value_its_tag_cannot_hold_is_malformed_not_a_crash() -> None:
    with pytest.raises(YamlProblem, match="malformed YAML"):
        load("when: 2024-13-45\n")


def test_only_safe_tags_are_constructed() -> None:
    with pytest.raises(YamlProblem, match="malformed YAML"):
        load("x: !!python/object/apply:os.system [echo hi]\n")


def test_an_alias_inside_its_own_anchor_is_a_cycle_named_by_line() -> None:
    with pytest.raises(YamlProblem, match="an alias refers to a node that contains it") as raised:
        load("ok: 1\nloop: &l {a: [1, *l]}\n")
    assert raised.value.line == 2


def test_an_alias_used_twice_side_by_side_is_not_a_cycle() -> None:
    assert load("a: &a [1]\nb: [*a, *a]\n")["b"] == [[1], [1]]
