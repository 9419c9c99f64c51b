"""The commit path against a real store: compare-and-swap on instance versions, stale
snapshots refused per instance, what holds committed."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from berth.api.app import RequestContext
from berth.config import Settings
from berth.ecs.placement import Claim
from berth.ecs.scheduling import TaskSpec, commit
from berth.ecs.schema import instances, tasks
from berth.ecs.service import EcsService
from berth.ecs.taskdef_spec import Needs
from berth.state.store import Store

CTX = RequestContext("req", "us-east-1", "000000000000", "ecs", "Op", "AK", "http://x")


@pytest.fixture
def ecs(tmp_path: Path) -> EcsService:
    store = Store(f"sqlite:///{tmp_path / 'db'}")
    service = EcsService(store, Settings(data_dir=tmp_path))
    store.create_all()
    service.create_cluster(CTX, {"clusterName": "c"})
    for _ in range(2):
        service.register_container_instance(CTX, {"cluster": "c", "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 1000},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 1000}]})
    return service


def spec(cpu: int = 100) -> TaskSpec:
    return TaskSpec(region="us-east-1", account="000000000000", cluster="c",
                    task_definition_arn="arn:aws:ecs:us-east-1:000000000000:task-definition/f:1",
                    family="f", containers=[{"name": "a", "image": "x", "cpu": cpu}],
                    needs=Needs(cpu, 100, (80,), ()), group="family:f")


def snapshot(ecs: EcsService) -> dict:
    return dict(ecs.scheduler.cache.snapshot(ecs.store, "us-east-1", "c").by_arn)


def claim(view, cpu: int = 100) -> Claim:
    return Claim(view.arn, view.version, cpu, 100, (80,))


def test_stale_claims_are_refused_per_instance(ecs: EcsService) -> None:
    views = snapshot(ecs)
    a, b = sorted(views)
    rows, refused = commit(ecs.store, spec(), [claim(views[a])], views)
    assert len(rows) == 1 and refused == []
    # A rival still holding the old snapshot claims both instances: `a` moved on, so only
    # its claim is refused; the one on `b` commits.
    rows, refused = commit(ecs.store, spec(), [claim(views[a]), claim(views[b])], views)
    assert [r["instance_arn"] for r in rows] == [b]
    assert [c.instance_arn for c in refused] == [a]
    with ecs.store.read() as conn:
        left = dict(conn.execute(sa.select(instances.c.arn, instances.c.remaining_cpu)).all())
        ports = dict(conn.execute(sa.select(instances.c.arn, instances.c.used_ports)).all())
        n = conn.execute(sa.select(sa.func.count()).select_from(tasks)).scalar_one()
    assert left == {a: 900, b: 900} and ports == {a: [80], b: [80]} and n == 2


def test_run_tasks_replans_on_fresh_state_after_a_conflict(
        ecs: EcsService, monkeypatch: pytest.MonkeyPatch) -> None:
    portless = spec()
    portless.needs = Needs(100, 100, (), ())
    rival_done: list[bool] = []
    real_place = ecs.scheduler.placers.place

    def place_then_lose_the_race(*args, **kw):
        result = real_place(*args, **kw)
        if not rival_done:
            # Between this plan and its commit a rival fills instance `a` almost entirely.
            rival_done.append(True)
            current = snapshot(ecs)
            a = min(current)
            commit(ecs.store, portless, [Claim(a, current[a].version, 950, 100, ())], current)
        return result

    monkeypatch.setattr(ecs.scheduler.placers, "place", place_then_lose_the_race)
    out = ecs.scheduler.run_tasks(portless, 2)
    a, b = sorted(snapshot(ecs))
    # The claim on `a` was refused, the one on `b` kept; the re-plan on fresh state saw `a`
    # full and put the second task on `b` too. Nothing failed, nothing over-committed.
    assert out.failures == []
    assert [t["instance_arn"] for t in out.tasks] == [b, b]
    with ecs.store.read() as conn:
        left = dict(conn.execute(sa.select(instances.c.arn, instances.c.remaining_cpu)).all())
    assert left == {a: 50, b: 800}


def test_snapshot_cache_follows_versions(ecs: EcsService) -> None:
    first = snapshot(ecs)
    again = snapshot(ecs)
    assert all(first[k] is again[k] for k in first)      # unchanged rows: the same views
    a = min(first)
    commit(ecs.store, spec(), [claim(first[a])], first)
    after = snapshot(ecs)
    assert after[a].version == first[a].version + 1 and after[a].remaining_cpu == 900
    ecs.update_container_instances_state(CTX, {"cluster": "c", "containerInstances": [a],
                                               "status": "DRAINING"})
    assert a not in snapshot(ecs)


@pytest.fixture(params=["sqlite", "postgres"])
def any_ecs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EcsService]:
    """As `ecs`, on SQLite and on PostgreSQL (a fresh cluster name keeps runs apart)."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'db'}")
    else:
        store = Store(request.getfixturevalue("postgres_url"))
    service = EcsService(store, Settings(data_dir=tmp_path))
    store.create_all()
    yield service
    store.dispose()


def test_a_client_token_taken_by_a_rival_request_rolls_the_commit_back(
        any_ecs: EcsService) -> None:
    """Two requests with one token both passed the lookup (neither had committed): the first
    commit records the token with its tasks, the second finds it taken and places nothing."""
    from dataclasses import replace

    from berth.ecs import client_tokens
    ecs, cluster = any_ecs, f"c{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(CTX, {"clusterName": cluster})
    ecs.register_container_instance(CTX, {"cluster": cluster, "totalResources": [
        {"name": "CPU", "type": "INTEGER", "integerValue": 1000},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1000}]})
    request = {"cluster": cluster, "taskDefinition": "f", "count": 1, "clientToken": "t"}
    mine = client_tokens.begin(ecs.store, "us-east-1", cluster, "t", request, "req-1")
    rival = client_tokens.begin(ecs.store, "us-east-1", cluster, "t", request, "req-2")
    assert isinstance(mine, client_tokens.ClientToken)
    assert isinstance(rival, client_tokens.ClientToken)
    portless = replace(spec(), cluster=cluster, needs=Needs(100, 100, (), ()))
    first = ecs.scheduler.run_tasks(replace(portless, client_token=mine), 1)
    assert len(first.tasks) == 1
    with pytest.raises(client_tokens.Taken):
        ecs.scheduler.run_tasks(replace(portless, client_token=rival), 1)
    with ecs.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tasks).where(
            tasks.c.cluster == cluster)).scalar_one() == 1
    # Both requests now answer what the first placed.
    earlier = client_tokens.begin(ecs.store, "us-east-1", cluster, "t", request, "req-3")
    assert isinstance(earlier, client_tokens.Earlier)
    assert earlier.task_arns == [first.tasks[0]["arn"]]
