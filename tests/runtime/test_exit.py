"""Scripts that never close their client still exit promptly and release what they held."""

from __future__ import annotations

import gc
import threading
import weakref

import anyio
import pytest

from openmeter_billing import OpenMeterBilling, SyncOpenMeterBilling
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.local._server import LoopbackServer

from ._scripts import run_script

SERVER_SCRIPT_PRELUDE = """
    import json, time
    from openmeter_billing import SyncOpenMeterBilling
    from openmeter_billing.local import LocalOpenMeter
    from openmeter_billing.local._server import LoopbackServer

    local = LocalOpenMeter()
    server = LoopbackServer(local, port=0)
    server.__enter__()  # a daemon thread, like a server the script does not own
"""


def test_module_level_sync_client_never_closed_exits_promptly() -> None:
    done = run_script(
        SERVER_SCRIPT_PRELUDE
        + """
    client = SyncOpenMeterBilling(base_url=server.url)  # real sockets, keep-alive
    client.customers.create(key="acme", name="Acme", subject_keys=["acme"])
    print(json.dumps({"key": client.customers.get("acme").key}))
    # end of script: no close()
    """,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.last_json() == {"key": "acme"}
    assert done.seconds < 20
    assert "was not closed" in done.stderr  # the ResourceWarning says what to do


def test_unclosed_client_on_local_transport_exits_and_the_docs_example_shape_works() -> None:
    done = run_script(
        """
    import json
    from openmeter_billing.local import LocalOpenMeter

    local = LocalOpenMeter()
    client = local.client()
    blocking = local.sync_client()
    tuned = local.sync_client().with_options(max_retries=0)  # its parent is garbage at once
    import gc; gc.collect()
    print(json.dumps({"meters": len(tuned.meters.list()), "blocking": len(blocking.meters.list())}))
    """,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.last_json() == {"meters": 0, "blocking": 0}


def test_copy_outlives_its_collected_parent_and_closes_with_the_last_reference() -> None:
    local = LocalOpenMeter()
    parent = local.sync_client()
    loop_thread = parent._loop.thread
    tuned = parent.with_options(max_retries=0)
    del parent
    gc.collect()
    assert tuned.meters.list() == []  # the parent's loop is still serving its copy
    with pytest.warns(ResourceWarning, match="not closed"):  # noqa: PT031 - del collects it
        del tuned
        gc.collect()
    loop_thread.join(5)
    assert not loop_thread.is_alive()


def test_collected_sync_client_stops_its_thread_and_closes_its_pool() -> None:
    with LoopbackServer(LocalOpenMeter(), port=0) as server:
        client = SyncOpenMeterBilling(base_url=server.url)
        client.meters.list()
        pool = client._loop.run(_current_pool(client.async_client))
        loop_thread = client._loop.thread
        with pytest.warns(ResourceWarning, match="not closed"):  # noqa: PT031 - del collects it
            del client
            gc.collect()
        loop_thread.join(5)
        assert not loop_thread.is_alive()
        assert pool.is_closed


def _current_pool(client: OpenMeterBilling):  # type: ignore[no-untyped-def]
    async def pool():  # type: ignore[no-untyped-def]
        return client._http.runtime.http_client()

    return pool


async def test_collected_async_client_closes_its_pool_while_the_loop_runs() -> None:
    with LoopbackServer(LocalOpenMeter(), port=0) as server:
        client = OpenMeterBilling(base_url=server.url)
        await client.meters.list()
        pool = client._http.runtime.http_client()
        ref = weakref.ref(client)
        del client
        gc.collect()
        assert ref() is None
        with anyio.fail_after(5):
            while not pool.is_closed:  # noqa: ASYNC110 - polling a flag set elsewhere
                await anyio.sleep(0.01)


def test_closed_sync_client_says_so() -> None:
    from openmeter_billing import ConfigurationError

    client = LocalOpenMeter().sync_client()
    client.close()
    client.close()  # twice is harmless
    with pytest.raises(ConfigurationError, match="closed"):
        client.meters.list()
    assert threading.active_count() >= 1
