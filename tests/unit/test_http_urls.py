"""Request URLs and bodies stay exact while the HTTP core reuses joined URLs: base paths,
queries on and off, and many distinct paths (more than the URL cache holds)."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
import respx

from openmeter_billing import InvalidInputError, OpenMeterBilling


@pytest.mark.parametrize("base", ["https://om.test", "https://om.test/", "https://om.test/proxy"])
async def test_paths_join_the_base_url_with_and_without_a_query(base: str) -> None:
    prefix = base.rstrip("/").removeprefix("https://om.test")
    with respx.mock(assert_all_called=False) as wire:
        route = wire.route(host="om.test").respond(200, json={"ok": True})
        async with OpenMeterBilling(base_url=base) as client:
            await client.request("GET", "/api/v1/meters")
            await client.request("GET", "/api/v1/meters", params={"page": 2, "x": None})
            await client.request("GET", "/api/v1/meters", params={"flag": True, "k": ["a", "b"]})
            await client.request("GET", "/api/v1/meters")
    urls = [str(call.request.url) for call in route.calls]
    root = f"https://om.test{prefix}/api/v1/meters"
    assert urls == [root, f"{root}?page=2", f"{root}?flag=true&k=a&k=b", root]


async def test_more_distinct_paths_than_the_cache_holds_all_go_where_they_should() -> None:
    with respx.mock(base_url="https://om.test", assert_all_called=False) as wire:
        route = wire.get(url__regex=r"/api/v1/subjects/.*").mock(
            side_effect=lambda request: httpx.Response(200, json={"path": request.url.path})
        )
        async with OpenMeterBilling(base_url="https://om.test") as client:
            for round_ in range(2):
                for i in range(300):
                    got = await client.request("GET", f"/api/v1/subjects/s-{i}")
                    assert got == {"path": f"/api/v1/subjects/s-{i}"}, (round_, i)
    assert route.call_count == 600


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"a": [1, {"b": math.nan}]}, "json.a[1].b"),
        ({"a": [[math.inf]]}, "json.a[0][0]"),
        ({"a": {"b": {1: "x"}}}, "json.a.b"),
        ({"a": ("x", 2**1100)}, "json.a[1]"),
        ({"a": [object()]}, "json.a[0]"),
    ],
)
async def test_nested_values_json_cannot_carry_are_refused_naming_the_field(
    body: dict[str, Any], field: str
) -> None:
    with respx.mock(base_url="https://om.test", assert_all_called=False) as wire:
        route = wire.post("/api/v1/x").respond(200, json={})
        async with OpenMeterBilling(base_url="https://om.test") as client:
            with pytest.raises(InvalidInputError) as caught:
                await client.request("POST", "/api/v1/x", json=body)
    assert caught.value.field == field
    assert not route.called
