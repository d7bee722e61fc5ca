"""Local OpenMeter meters: definitions, event validation, usage over ranges and meter queries."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from openmeter_billing._exceptions import InvalidInputError
from openmeter_billing.local.meters.index import (
    AGGREGATIONS,
    Aggregation,
    EventRecord,
    MeterIndex,
    MeterSpec,
    QueryRow,
    event_problem,
    meter_problems,
)

UTC = timezone.utc
T0 = datetime(2024, 1, 10, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
_ids = iter(range(10**9))


def spec(
    aggregation: Aggregation = "SUM",
    value_property: str | None = "$.v",
    group_by: Mapping[str, str] | None = None,
    event_from: datetime | None = None,
) -> MeterSpec:
    if aggregation == "COUNT" and value_property == "$.v":
        value_property = None
    return MeterSpec(
        slug="tokens",
        event_type="req",
        aggregation=aggregation,
        value_property=value_property,
        group_by=dict(group_by or {}),
        event_from=event_from,
    )


def ev(
    when: datetime, data: Mapping[str, Any] | None = None, subject: str = "s1", type_: str = "req"
) -> EventRecord:
    return EventRecord(
        id=f"e{next(_ids)}", source="test", type=type_, subject=subject, time=when, data=data
    )


def index(meter: MeterSpec, events: Iterable[EventRecord]) -> MeterIndex:
    built = MeterIndex(meter)
    for event in events:
        built.add(event)
    return built


def run_query(meter: MeterIndex, **kwargs: Any) -> list[QueryRow]:
    params: dict[str, Any] = {
        "start": None,
        "end": None,
        "window_size": None,
        "tz": UTC,
        "subjects": None,
        "customers": None,
        "group_by": [],
        "group_filters": None,
    }
    params.update(kwargs)
    return meter.query(**params)


# --- meter definitions -------------------------------------------------------------------------


def test_valid_meter_has_no_problems() -> None:
    assert meter_problems(spec("SUM", group_by={"model": "$.model", "region_1": "$['r']"})) == []
    assert meter_problems(spec("COUNT", value_property=None)) == []


def test_count_with_value_property_is_refused_like_openmeter() -> None:
    problems = meter_problems(spec("COUNT", value_property="$.tokens"))
    assert [field for field, _ in problems] == ["valueProperty"]
    assert "COUNT" in problems[0][1]


@pytest.mark.parametrize("aggregation", [a for a in AGGREGATIONS if a != "COUNT"])
@pytest.mark.parametrize("value_property", [None, ""])
def test_value_aggregations_require_value_property(
    aggregation: Aggregation, value_property: str | None
) -> None:
    problems = meter_problems(spec(aggregation, value_property=value_property))
    assert len(problems) == 1
    field, message = problems[0]
    assert field == "valueProperty"
    assert aggregation in message
    assert "$.tokens" in message


def test_unparsable_value_property_is_reported_with_the_parser_message() -> None:
    [(field, message)] = meter_problems(spec("SUM", value_property="tokens"))
    assert field == "valueProperty"
    assert "must start with '$'" in message


@pytest.mark.parametrize("key", ["subject", "customer_id"])
def test_reserved_group_by_keys_are_refused(key: str) -> None:
    [(field, message)] = meter_problems(spec(group_by={key: "$.x"}))
    assert field == f"groupBy.{key}"
    assert "reserved" in message


@pytest.mark.parametrize("key", ["1model", "model-name", "model name", ""])
def test_group_by_keys_must_be_identifiers(key: str) -> None:
    [(field, message)] = meter_problems(spec(group_by={key: "$.x"}))
    assert field == f"groupBy.{key}"
    assert repr(key) in message


def test_group_by_paths_are_parsed_and_may_not_repeat_value_property() -> None:
    problems = dict(meter_problems(spec(group_by={"a": "$..x", "b": "$.v"})))
    assert "several values" in problems["groupBy.a"]
    assert "valueProperty" in problems["groupBy.b"]


def test_every_problem_is_reported_at_once() -> None:
    bad = MeterSpec(
        slug="m",
        event_type="",
        aggregation="MEDIAN",  # type: ignore[arg-type]
        value_property="x",
        group_by={"subject": "y"},
        event_from=datetime(2024, 1, 1),
    )
    fields = [field for field, _ in meter_problems(bad)]
    assert fields == [
        "aggregation",
        "eventType",
        "eventFrom",
        "valueProperty",
        "groupBy.subject",
        "groupBy.subject",
    ]


def test_index_refuses_an_invalid_meter_naming_the_fields() -> None:
    with pytest.raises(InvalidInputError, match="valueProperty") as info:
        MeterIndex(spec("SUM", value_property=None))
    assert info.value.field == "meter"


# --- event validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (None, "null and missing value property"),
        ({}, 'missing value property: "$.v"'),
        ({"v": None}, "value cannot be null"),
        ({"v": "abc"}, "value cannot be parsed as float64: abc"),
        ({"v": "1,5"}, "value cannot be parsed as float64: 1,5"),
        ({"v": "1e400"}, "value cannot be parsed as float64: 1e400"),
        ({"v": True}, "unsupported value property type: bool"),
        ({"v": {"n": 1}}, "unsupported value property type: map[string]interface {}"),
        ({"v": [1]}, "unsupported value property type: []interface {}"),
        ({"v": "NaN"}, "value cannot be NaN"),
        ({"v": "-Infinity"}, "value cannot be infinity"),
        ({"v": float("nan")}, "value cannot be NaN"),
        ({"v": float("inf")}, "value cannot be infinity"),
    ],
)
@pytest.mark.parametrize("aggregation", ["SUM", "AVG", "MIN", "MAX", "LATEST"])
def test_numeric_aggregations_report_unreadable_values(
    aggregation: Aggregation, data: Mapping[str, Any] | None, problem: str
) -> None:
    assert event_problem(spec(aggregation), ev(T0, data)) == f"invalid event: {problem}"


@pytest.mark.parametrize("value", [3, 2.5, "850", "1.5", "-2", "1e3", ".5"])
def test_numbers_and_numeric_strings_are_valid(value: object) -> None:
    assert event_problem(spec("SUM"), ev(T0, {"v": value})) is None


def test_count_reads_no_value_so_any_data_is_valid() -> None:
    assert event_problem(spec("COUNT"), ev(T0, None)) is None
    assert event_problem(spec("COUNT"), ev(T0, {"v": "abc"})) is None


def test_unique_count_accepts_scalars_but_not_objects_or_null() -> None:
    meter = spec("UNIQUE_COUNT")
    assert event_problem(meter, ev(T0, {"v": "a"})) is None
    assert event_problem(meter, ev(T0, {"v": 7})) is None
    assert event_problem(meter, ev(T0, {"v": True})) is None
    assert "value cannot be null" in (event_problem(meter, ev(T0, {"v": None})) or "")
    assert "map[string]interface {}" in (event_problem(meter, ev(T0, {"v": {}})) or "")


def test_events_of_another_type_are_not_this_meters_problem() -> None:
    assert event_problem(spec("SUM"), ev(T0, {}, type_="other")) is None


# --- adding events -----------------------------------------------------------------------------


def test_add_counts_only_matching_type_after_event_from_with_valid_value() -> None:
    meter = MeterIndex(spec("SUM", event_from=T0))
    assert meter.add(ev(T0, {"v": 1})) is True
    assert meter.add(ev(T0 + MIN, {"v": 2}, type_="other")) is False
    assert meter.add(ev(T0 - timedelta(seconds=1), {"v": 4})) is False
    assert meter.add(ev(T0 + MIN, {"v": "oops"})) is False
    assert meter.event_count == 1
    assert meter.usage_fn({"s1"})(T0 - timedelta(days=1), T0 + timedelta(days=1)) == 1.0


# --- usage functions ---------------------------------------------------------------------------

DAY = (T0, T0 + timedelta(days=1))


@pytest.mark.parametrize(
    ("aggregation", "values", "expected"),
    [
        ("SUM", [1, "2.5", 4, 0.5], 8.0),
        ("COUNT", [1, "2.5", 4, 0.5], 4.0),
        ("AVG", [1, "2.5", 4, 0.5], 2.0),
        ("MIN", [1, "2.5", 4, "-0.5"], -0.5),
        ("MAX", [1, "2.5", 4, 0.5], 4.0),
        ("LATEST", [1, "2.5", 4, "7"], 7.0),
        ("UNIQUE_COUNT", ["a", "b", "a", 1, "1", True], 4.0),
    ],
)
def test_usage_fn_aggregates_each_kind(
    aggregation: Aggregation, values: list[object], expected: float
) -> None:
    events = [ev(T0 + i * MIN, {"v": v}) for i, v in enumerate(values)]
    assert index(spec(aggregation), events).usage_fn({"s1"})(*DAY) == expected


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_usage_fn_is_zero_when_window_has_no_events(aggregation: Aggregation) -> None:
    meter = index(spec(aggregation), [ev(T0, {"v": 5})])
    usage = meter.usage_fn({"s1"})
    assert usage(T0 + MIN, T0 + 2 * MIN) == 0.0
    assert usage(T0 + MIN, T0 + MIN) == 0.0
    assert meter.usage_fn({"nobody"})(*DAY) == 0.0


def test_invalid_events_do_not_count() -> None:
    events = [ev(T0, {"v": 2}), ev(T0, {"v": True}), ev(T0, {"v": "x"}), ev(T0, {})]
    assert index(spec("SUM"), events).usage_fn({"s1"})(*DAY) == 2.0
    assert index(spec("AVG"), events).usage_fn({"s1"})(*DAY) == 2.0


def test_sum_of_decimal_values_is_exact() -> None:
    events = [ev(T0, {"v": 0.1}), ev(T0, {"v": "0.2"})]
    assert index(spec("SUM"), events).usage_fn({"s1"})(*DAY) == 0.3


def test_events_are_bucketed_to_their_minute() -> None:
    meter = index(spec("SUM"), [ev(T0 + timedelta(seconds=30), {"v": 1})])
    usage = meter.usage_fn({"s1"})
    assert usage(T0, T0 + MIN) == 1.0
    assert usage(T0 + timedelta(seconds=45), T0 + 2 * MIN) == 0.0  # from rounds up to 10:01
    assert usage(T0 - MIN, T0 + timedelta(seconds=10)) == 1.0  # to rounds up to 10:01
    assert usage(T0 + MIN, T0 + 2 * MIN) == 0.0


def test_out_of_order_adds_give_the_same_answers_and_refresh_sums() -> None:
    events = [ev(T0 + i * MIN, {"v": i}) for i in range(50)]
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    ordered = index(spec("SUM"), events).usage_fn({"s1"})
    meter = index(spec("SUM"), shuffled)
    usage = meter.usage_fn({"s1"})
    for lo, hi in [(0, 50), (3, 17), (10, 11), (49, 50)]:
        assert usage(T0 + lo * MIN, T0 + hi * MIN) == ordered(T0 + lo * MIN, T0 + hi * MIN)
    assert usage(T0, T0 + 50 * MIN) == float(sum(range(50)))
    meter.add(ev(T0 - MIN, {"v": 1000}))  # earlier than everything: prefix sums must rebuild
    assert usage(T0 - MIN, T0 + 50 * MIN) == float(sum(range(50)) + 1000)


def test_latest_orders_by_real_time_then_by_arrival() -> None:
    meter = index(
        spec("LATEST"),
        [
            ev(T0 + timedelta(seconds=50), {"v": 1}),
            ev(T0 + timedelta(seconds=10), {"v": 2}),
            ev(T0 + timedelta(seconds=50), {"v": 3}),
        ],
    )
    assert meter.usage_fn({"s1"})(T0, T0 + MIN) == 3.0


def test_latest_spans_several_subjects() -> None:
    meter = index(
        spec("LATEST"),
        [ev(T0 + 2 * MIN, {"v": 9}, subject="a"), ev(T0 + MIN, {"v": 4}, subject="b")],
    )
    assert meter.usage_fn({"a", "b"})(*DAY) == 9.0
    assert meter.usage_fn({"b"})(*DAY) == 4.0


def test_usage_fn_filters_by_subjects_and_sees_later_events() -> None:
    meter = index(spec("SUM"), [ev(T0, {"v": 1}, "a"), ev(T0, {"v": 10}, "b")])
    usage = meter.usage_fn({"a", "c"})
    assert usage(*DAY) == 1.0
    meter.add(ev(T0 + MIN, {"v": 100}, "c"))  # a new subject series after usage_fn was built
    meter.add(ev(T0 + MIN, {"v": 1000}, "b"))
    assert usage(*DAY) == 101.0


def test_usage_fn_applies_group_filters() -> None:
    meter = index(
        spec("SUM", group_by={"model": "$.model", "tier": "$.tier"}),
        [
            ev(T0, {"v": 1, "model": "gpt", "tier": "pro"}),
            ev(T0, {"v": 2, "model": "gpt", "tier": "free"}),
            ev(T0, {"v": 4, "model": "claude", "tier": "pro"}),
            ev(T0, {"v": 8, "tier": "pro"}),
        ],
    )
    assert meter.usage_fn({"s1"}, {"model": "gpt"})(*DAY) == 3.0
    assert meter.usage_fn({"s1"}, {"model": "gpt", "tier": "pro"})(*DAY) == 1.0
    assert meter.usage_fn({"s1"}, {"model": ""})(*DAY) == 8.0  # missing value reads as ""
    assert meter.usage_fn({"s1"}, {})(*DAY) == 15.0


def test_group_values_compare_as_text() -> None:
    meter = index(
        spec("COUNT", group_by={"n": "$.n"}),
        [ev(T0, {"n": 7}), ev(T0, {"n": "7"}), ev(T0, {"n": True})],
    )
    assert meter.usage_fn({"s1"}, {"n": "7"})(*DAY) == 2.0
    assert meter.usage_fn({"s1"}, {"n": "true"})(*DAY) == 1.0


def test_usage_fn_refuses_filters_on_undefined_group_keys() -> None:
    meter = MeterIndex(spec("SUM", group_by={"model": "$.model"}))
    with pytest.raises(InvalidInputError, match="'region'") as info:
        meter.usage_fn({"s1"}, {"region": "eu"})
    assert info.value.field == "meterGroupByFilters"


def test_usage_fn_refuses_naive_datetimes() -> None:
    usage = MeterIndex(spec("SUM")).usage_fn({"s1"})
    with pytest.raises(InvalidInputError) as info:
        usage(datetime(2024, 1, 1), T0)
    assert info.value.field == "from"


def test_usage_fn_on_100k_events_over_a_month() -> None:
    # Performance sanity (not asserted, timings vary): on the 2-core dev machine building this
    # index takes ~0.5 s, the first call builds the prefix sums (~40 ms), and each later call over
    # a month costs ~10 µs: two bisects per series, never a scan.
    start = datetime(2024, 3, 1, tzinfo=UTC)
    meter = MeterIndex(spec("SUM"))
    for i in range(100_000):
        meter.add(ev(start + timedelta(seconds=30 * i), {"v": 1}))
    usage = meter.usage_fn({"s1"})
    month = (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))
    assert usage(*month) == 31 * 24 * 120
    assert usage(datetime(2024, 3, 2, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC)) == 2880.0


# --- meter queries -----------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def summary(rows: list[QueryRow]) -> list[tuple[str, str, float]]:
    """Rows as (UTC window start, UTC window end, value) for compact comparisons."""
    return [
        (
            r.window_start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
            r.window_end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
            r.value,
        )
        for r in rows
    ]


def sum_meter(*pairs: tuple[str, float], **group_by: str) -> MeterIndex:
    return index(spec("SUM", group_by=group_by), [ev(at(t), {"v": v}) for t, v in pairs])


def test_minute_windows_bucket_events_and_omit_empty_windows() -> None:
    meter = sum_meter(
        ("2024-01-10T10:00:30", 1), ("2024-01-10T10:00:50", 2), ("2024-01-10T10:02:10", 4)
    )
    rows = run_query(meter, window_size="MINUTE")
    assert summary(rows) == [
        ("2024-01-10T10:00", "2024-01-10T10:01", 3.0),
        ("2024-01-10T10:02", "2024-01-10T10:03", 4.0),
    ]
    assert rows[0].subject is None and rows[0].customer_id is None and rows[0].group_by == {}


def test_hour_and_day_windows() -> None:
    meter = sum_meter(
        ("2024-01-10T10:59:59", 1), ("2024-01-10T11:00:00", 2), ("2024-01-12T00:00:00", 4)
    )
    assert summary(run_query(meter, window_size="HOUR")) == [
        ("2024-01-10T10:00", "2024-01-10T11:00", 1.0),
        ("2024-01-10T11:00", "2024-01-10T12:00", 2.0),
        ("2024-01-12T00:00", "2024-01-12T01:00", 4.0),
    ]
    assert summary(run_query(meter, window_size="DAY")) == [
        ("2024-01-10T00:00", "2024-01-11T00:00", 3.0),
        ("2024-01-12T00:00", "2024-01-13T00:00", 4.0),
    ]


def test_month_windows_follow_the_calendar() -> None:
    meter = sum_meter(
        ("2024-01-31T23:59:00", 1), ("2024-02-29T12:00:00", 2), ("2024-04-01T00:00:00", 4)
    )
    assert summary(run_query(meter, window_size="MONTH")) == [
        ("2024-01-01T00:00", "2024-02-01T00:00", 1.0),
        ("2024-02-01T00:00", "2024-03-01T00:00", 2.0),
        ("2024-04-01T00:00", "2024-05-01T00:00", 4.0),
    ]


def test_windows_align_to_the_window_time_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 23:30 UTC on Jan 1 is 00:30 on Jan 2 in Berlin; 22:30 UTC is still Jan 1 there.
    meter = sum_meter(("2024-01-01T22:30:00", 1), ("2024-01-01T23:30:00", 2))
    rows = run_query(meter, window_size="DAY", tz=berlin)
    assert summary(rows) == [
        ("2023-12-31T23:00", "2024-01-01T23:00", 1.0),
        ("2024-01-01T23:00", "2024-01-02T23:00", 2.0),
    ]
    assert rows[1].window_start == datetime(2024, 1, 2, tzinfo=berlin)
    assert rows[1].window_start.tzinfo is berlin
    month_end = sum_meter(("2024-01-31T22:30:00", 1), ("2024-01-31T23:30:00", 2))
    assert summary(run_query(month_end, window_size="MONTH", tz=berlin)) == [
        ("2023-12-31T23:00", "2024-01-31T23:00", 1.0),
        ("2024-01-31T23:00", "2024-02-29T23:00", 2.0),
    ]


def test_query_range_filters_events_with_minute_bucketing() -> None:
    meter = sum_meter(
        ("2024-01-10T09:59:59", 1), ("2024-01-10T10:00:30", 2), ("2024-01-10T11:00:00", 4)
    )
    rows = run_query(meter, start=at("2024-01-10T10:00:00"), end=at("2024-01-10T11:00:00"))
    assert summary(rows) == [("2024-01-10T10:00", "2024-01-10T11:00", 2.0)]


def test_total_row_reports_requested_range_or_the_events_extent() -> None:
    meter = sum_meter(("2024-01-10T10:00:30", 1), ("2024-01-10T12:30:10", 2))
    start, end = at("2024-01-01T00:00:00"), at("2024-02-01T00:00:00")
    [row] = run_query(meter, start=start, end=end)
    assert (row.window_start, row.window_end, row.value) == (start, end, 3.0)
    assert summary(run_query(meter)) == [("2024-01-10T10:00", "2024-01-10T12:31", 3.0)]
    assert summary(run_query(meter, start=start)) == [("2024-01-01T00:00", "2024-01-10T12:31", 3.0)]


def test_ungrouped_total_over_no_events_is_zero_for_counts_and_absent_otherwise() -> None:
    start, end = at("2024-01-01T00:00:00"), at("2024-02-01T00:00:00")
    counts: tuple[Aggregation, ...] = ("COUNT", "UNIQUE_COUNT")
    for aggregation in counts:
        empty = MeterIndex(spec(aggregation))
        [row] = run_query(empty, start=start, end=end)
        assert (row.window_start, row.window_end, row.value) == (start, end, 0.0)
        [epoch] = run_query(empty)
        assert summary([epoch]) == [("1970-01-01T00:00", "1970-01-01T00:01", 0.0)]
        assert run_query(empty, window_size="DAY") == []
        assert run_query(empty, group_by=["subject"]) == []
    values: tuple[Aggregation, ...] = ("SUM", "AVG", "MIN", "MAX", "LATEST")
    for aggregation in values:
        assert run_query(MeterIndex(spec(aggregation)), start=start, end=end) == []


def test_query_groups_by_subject_when_asked_or_when_subjects_are_given() -> None:
    meter = index(
        spec("SUM"),
        [
            ev(T0, {"v": 1}, "a"),
            ev(T0, {"v": 2}, "b"),
            ev(T0 + MIN, {"v": 4}, "a"),
            ev(T0, {"v": 8}, "c"),
        ],
    )
    by_subject = run_query(meter, group_by=["subject"])
    assert [(r.subject, r.value) for r in by_subject] == [("a", 5.0), ("b", 2.0), ("c", 8.0)]
    assert by_subject[0].group_by == {}  # subject is a top-level field, not a groupBy entry
    filtered = run_query(meter, subjects=["a", "b", "a"], window_size="MINUTE")
    assert [(r.subject, r.value) for r in filtered] == [("a", 1.0), ("b", 2.0), ("a", 4.0)]


def test_query_groups_by_customer_through_their_subjects() -> None:
    meter = index(
        spec("COUNT"),
        [ev(T0, None, "a1"), ev(T0, None, "a2"), ev(T0, None, "b1"), ev(T0, None, "stranger")],
    )
    customers = {"cust_a": {"a1", "a2"}, "cust_b": ["b1", "a1"]}
    rows = run_query(meter, customers=customers, group_by=["customer_id"])
    assert [(r.customer_id, r.subject, r.value) for r in rows] == [
        ("cust_a", None, 2.0),  # a1 is claimed twice and goes to the first customer listed
        ("cust_b", None, 1.0),
    ]
    both = run_query(meter, customers={"cust_a": {"a1", "a2"}}, group_by=["subject"])
    assert [(r.customer_id, r.subject) for r in both] == [("cust_a", "a1"), ("cust_a", "a2")]
    assert run_query(meter, customers={}, group_by=["customer_id"]) == []


def test_query_groups_by_meter_keys_and_applies_group_filters() -> None:
    meter = index(
        spec("SUM", group_by={"model": "$.model", "tier": "$.tier"}),
        [
            ev(T0, {"v": 1, "model": "gpt", "tier": "pro"}),
            ev(T0, {"v": 2, "model": "gpt", "tier": "free"}),
            ev(T0, {"v": 4, "model": "claude", "tier": "pro"}),
            ev(T0, {"v": 8, "tier": "pro"}),
        ],
    )
    rows = run_query(meter, group_by=["model"])
    assert [(r.group_by, r.value) for r in rows] == [
        ({"model": ""}, 8.0),
        ({"model": "claude"}, 4.0),
        ({"model": "gpt"}, 3.0),
    ]
    pro = run_query(meter, group_by=["model", "model"], group_filters={"tier": "pro"})
    assert [(r.group_by, r.value) for r in pro] == [
        ({"model": ""}, 8.0),
        ({"model": "claude"}, 4.0),
        ({"model": "gpt"}, 1.0),
    ]
    [total] = run_query(meter, group_filters={"model": "gpt"})
    assert total.value == 3.0 and total.group_by == {}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": at("2024-01-02T00:00:00"), "end": at("2024-01-01T00:00:00")}, "from"),
        ({"start": at("2024-01-01T00:00:00"), "end": at("2024-01-01T00:00:00")}, "from"),
        ({"start": datetime(2024, 1, 1)}, "from"),
        ({"window_size": "WEEK"}, "windowSize"),
        ({"group_by": ["region"]}, "groupBy"),
        ({"group_by": ["customer_id"]}, "groupBy"),
        ({"group_filters": {"region": "eu"}}, "filterGroupBy"),
    ],
)
def test_query_errors_name_the_parameter(kwargs: dict[str, Any], field: str) -> None:
    meter = sum_meter(("2024-01-10T10:00:00", 1), model="$.model")
    with pytest.raises(ValueError, match=f"^{field}: ") as info:
        run_query(meter, **kwargs)
    assert isinstance(info.value, InvalidInputError)
    assert info.value.field == field
    assert info.value.hint
