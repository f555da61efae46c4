import time
from datetime import UTC, datetime
import trio
import fastworker
from fastworker.testing import open_cluster

reg = fastworker.Registry()
ran = []

@fastworker.task(registry=reg, cron="0 9 * * 1-5")
async def weekday_nine() -> None:
    ran.append(trio.current_time())

async def test_cron(autojump_clock):
    t0 = time.perf_counter()
    async with open_cluster(subworkers=1, registry=reg, start_time=datetime(2026, 11, 27, 12, 0, tzinfo=UTC)) as cluster:
        cp = cluster.control_plane
        print(await cp.next_fire_times())
        with trio.fail_after(4 * 86400):
            while not ran:
                await trio.sleep(3600)
        print(datetime.fromtimestamp(ran[0] + cp.clock.offset, UTC))
    print("real", time.perf_counter() - t0)
