"""The JSONPath subset meters use: what parses, what it finds, and how refusals read."""

from __future__ import annotations

import pytest

from openmeter_billing.local.meters.jsonpath import (
    MISSING,
    JsonPathError,
    json_value_text,
    parse_json_path,
)

DATA = {
    "tokens": 12,
    "usage": {"input": 3, "output tokens": 4, "none": None},
    "items": [{"id": "a"}, {"id": "b"}],
    "model name": "gpt",
    "a-b": 1,
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("$.tokens", 12),
        ("$.usage.input", 3),
        ("$['model name']", "gpt"),
        ('$["model name"]', "gpt"),
        ("$.usage['output tokens']", 4),
        ("$.items[0].id", "a"),
        ("$.items[-1].id", "b"),
        ("$['items'][1]['id']", "b"),
        ("$.a-b", 1),
        ("$.usage", {"input": 3, "output tokens": 4, "none": None}),
    ],
)
def test_find_resolves_names_quoted_names_and_indexes(expr: str, expected: object) -> None:
    assert parse_json_path(expr).find(DATA) == expected


def test_find_returns_none_for_json_null_but_missing_for_absent_keys() -> None:
    assert parse_json_path("$.usage.none").find(DATA) is None
    assert parse_json_path("$.usage.absent").find(DATA) is MISSING


@pytest.mark.parametrize(
    "expr",
    ["$.nope", "$.tokens.deeper", "$.items[2]", "$.items[-3]", "$.usage[0]", "$.items.id"],
)
def test_find_returns_missing_when_path_does_not_resolve(expr: str) -> None:
    assert parse_json_path(expr).find(DATA) is MISSING


def test_find_on_non_container_data_is_missing() -> None:
    assert parse_json_path("$.a").find(None) is MISSING
    assert parse_json_path("$.a").find("text") is MISSING


def test_quoted_names_unescape_backslashes() -> None:
    path = parse_json_path(r"$['it\'s']")
    assert path.steps == ("it's",)
    assert path.find({"it's": 1}) == 1


def test_parsed_path_keeps_original_expression() -> None:
    assert parse_json_path("$.usage.input").expr == "$.usage.input"


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("$", "whole data object"),
        ("tokens", "must start with '$'"),
        (" $.tokens", "must start with '$'"),
        ("$..tokens", "several values"),
        ("$.items[*]", "several values"),
        ("$.*", "several values"),
        ("$.items[0:2]", "several values"),
        ("$.items[?(@.id)]", "several values"),
        ("$.", "cannot parse"),
        ("$.a b", "cannot parse"),
        ("$['unterminated]", "cannot parse"),
        ("$[1.5]", "cannot parse"),
    ],
)
def test_invalid_paths_raise_error_naming_problem_and_valid_example(
    expr: str, problem: str
) -> None:
    with pytest.raises(JsonPathError) as info:
        parse_json_path(expr)
    message = str(info.value)
    assert problem in message
    assert repr(expr) in message
    assert "$.tokens" in message  # an example of a valid path
    assert isinstance(info.value, ValueError)


def test_non_string_expression_is_refused() -> None:
    with pytest.raises(JsonPathError, match="expected a string, got int"):
        parse_json_path(5)  # type: ignore[arg-type]


def test_missing_is_falsy_singleton_with_readable_repr() -> None:
    assert not MISSING
    assert repr(MISSING) == "MISSING"
    assert type(MISSING)() is MISSING


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("abc", "abc"),
        ("7", "7"),
        (7, "7"),
        (1.5, "1.5"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ({"a": 1}, None),
        ([1], None),
    ],
)
def test_json_value_text_matches_store_reading(value: object, text: str | None) -> None:
    assert json_value_text(value) == text
