"""The scheduler's cached snapshot against a real store shared by two servers: whatever the other
server (or any other writer) changes is seen by this server's next placement, while this
server's own commits cost it no re-read."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from berth.api.app import RequestContext
from berth.config import Settings
from berth.ecs.schema import instances
from berth.ecs.service import EcsService
from berth.ecs.snapshot import SnapshotCache
from berth.state.store import Store

CTX = RequestContext("req", "us-east-1", "000000000000", "ecs", "Op", "AK", "http://x")


def _resources(cpu: int, memory: int) -> list[dict[str, Any]]:
    return [{"name": "CPU", "type": "INTEGER", "integerValue": cpu},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": memory}]


@pytest.fixture(params=["sqlite", "postgres"])
def two_servers(request: pytest.FixtureRequest, tmp_path: Path
                ) -> Iterator[tuple[EcsService, EcsService, str]]:
    """Two ECS services, each with its own engine and cache, over one database: as two
    `berth server` processes see it. Yields (this, other, cluster name)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    stores = [Store(url), Store(url)]
    this, other = (EcsService(s, Settings(data_dir=tmp_path)) for s in stores)
    stores[0].create_all()
    cluster = f"c-{uuid.uuid4().hex[:8]}"
    this.create_cluster(CTX, {"clusterName": cluster})
    yield this, other, cluster
    for s in stores:
        s.dispose()


def _register(ecs: EcsService, cluster: str, cpu: int = 1000, memory: int = 1000) -> str:
    out = ecs.register_container_instance(CTX, {"cluster": cluster,
                                                "totalResources": _resources(cpu, memory)})
    return str(out["containerInstance"]["containerInstanceArn"])


def _family(ecs: EcsService, cpu: int = 100) -> str:
    family = f"f-{uuid.uuid4().hex[:8]}"
    ecs.register_task_definition(CTX, {"family": family, "containerDefinitions": [
        {"name": "a", "image": "x", "cpu": cpu, "memory": 100}]})
    return family


def _cached(ecs: EcsService, cluster: str) -> dict[str, Any]:
    return dict(ecs.scheduler.cache.snapshot(ecs.store, "us-east-1", cluster).by_arn)


def _fresh(ecs: EcsService, cluster: str) -> dict[str, Any]:
    return dict(SnapshotCache().snapshot(ecs.store, "us-east-1", cluster).by_arn)


def test_the_cache_matches_a_fresh_read_after_every_kind_of_change(
        two_servers: tuple[EcsService, EcsService, str]) -> None:
    this, other, cluster = two_servers
    x, y = _register(this, cluster), _register(this, cluster)
    family = _family(this)

    def run(ecs: EcsService, count: int = 2) -> list[str]:
        out = ecs.run_task(CTX, {"cluster": cluster, "taskDefinition": family, "count": count})
        assert out["failures"] == []
        return [t["taskArn"] for t in out["tasks"]]

    def stop(ecs: EcsService, arn: str) -> None:
        ecs.stop_task(CTX, {"cluster": cluster, "task": arn})

    def state(status: str) -> None:
        other.update_container_instances_state(CTX, {"cluster": cluster,
                                                     "containerInstances": [x],
                                                     "status": status})

    def disconnect() -> None:     # as the failure detector does, from another process
        with other.store.write() as conn:
            Store.bump(conn, instances, {"arn": y}, {"agent_connected": False})

    mine, theirs = run(this), run(other)
    changes = [
        lambda: run(this),                                   # learned, not re-read
        lambda: run(other),
        lambda: _register(other, cluster),
        lambda: other.put_attributes(CTX, {"cluster": cluster, "attributes": [
            {"name": "stack", "value": "blue", "targetId": x}]}),
        lambda: state("DRAINING"),
        lambda: state("ACTIVE"),
        lambda: stop(other, mine[0]),                        # a release elsewhere
        lambda: stop(this, theirs[0]),                       # a release outside the scheduler
        lambda: this.start_task(CTX, {"cluster": cluster, "taskDefinition": family,
                                      "containerInstances": [x, x]}),
        disconnect,
        lambda: other.deregister_container_instance(CTX, {"cluster": cluster,
                                                          "containerInstance": x,
                                                          "force": True}),
    ]
    assert _cached(this, cluster) == _fresh(this, cluster)
    for change in changes:
        change()
        assert _cached(this, cluster) == _fresh(this, cluster)
    cached = _cached(this, cluster)
    assert x not in cached and not cached[y].agent_connected and len(cached) == 2


def test_a_task_stopped_by_the_other_server_frees_room_for_the_next_run_task(
        two_servers: tuple[EcsService, EcsService, str]) -> None:
    this, other, cluster = two_servers
    _register(this, cluster)
    family = _family(this, cpu=500)
    request = {"cluster": cluster, "taskDefinition": family}
    placed = this.run_task(CTX, {**request, "count": 2})["tasks"]
    assert len(placed) == 2
    full = this.run_task(CTX, request)
    assert full["tasks"] == [] and full["failures"][0]["reason"] == "RESOURCE:CPU"
    other.stop_task(CTX, {"cluster": cluster, "task": placed[0]["taskArn"]})
    again = this.run_task(CTX, request)
    assert again["failures"] == [] and len(again["tasks"]) == 1


def test_an_instance_deregistered_by_the_other_server_is_not_placed_on(
        two_servers: tuple[EcsService, EcsService, str]) -> None:
    this, other, cluster = two_servers
    x, y = _register(this, cluster), _register(this, cluster)
    family = _family(this)
    assert set(_cached(this, cluster)) == {x, y}
    other.deregister_container_instance(CTX, {"cluster": cluster, "containerInstance": x})
    out = this.run_task(CTX, {"cluster": cluster, "taskDefinition": family, "count": 4})
    assert out["failures"] == []
    assert [t["containerInstanceArn"] for t in out["tasks"]] == [y] * 4   # spread: 2 on x
    named = this.start_task(CTX, {"cluster": cluster, "taskDefinition": family,
                                  "containerInstances": [x]})
    assert named["tasks"] == [] and named["failures"] == [{"arn": x, "reason": "INACTIVE"}]


def test_after_its_own_run_task_a_server_reads_at_most_the_check(
        two_servers: tuple[EcsService, EcsService, str]) -> None:
    """On PostgreSQL the scheduler checks the cluster's versions with one query; on SQLite the
    store's change token (nothing written since, by anyone) spares even that."""
    this, _, cluster = two_servers
    for _ in range(3):
        _register(this, cluster)
    family = _family(this)
    this.run_task(CTX, {"cluster": cluster, "taskDefinition": family, "count": 3})
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    rows = this.store.rows

    def rows_seen(stmt: Any, params: Any) -> Any:
        # On SQLite `rows` runs prepared statements on the driver, past SQLAlchemy's events.
        if this.store.is_sqlite:
            statements.append(str(stmt))
        return rows(stmt, params)

    sa.event.listen(this.store.engine, "before_cursor_execute", seen)
    this.store.rows = rows_seen  # type: ignore[method-assign]
    try:
        before = _cached(this, cluster)
    finally:
        sa.event.remove(this.store.engine, "before_cursor_execute", seen)
        del this.store.rows
    if this.store.is_sqlite:
        assert statements == []
    else:
        assert len(statements) == 1 and "sum" in statements[0].lower()
    assert before == _fresh(this, cluster)
