"""A lease in the store that elects one replica to run the background schedulers.

Several `berth server` replicas may share one database; the reconciler and the failure
detector must act once, not once per replica. The holder renews its lease on every pass; when
it stops (or dies), the lease expires and another replica takes it over.
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..state.store import Store
from .clock import now
from .schema import leases


class Lease:
    def __init__(self, store: Store, name: str, ttl: float) -> None:
        self.store, self.name, self.ttl = store, name, ttl
        self.holder = uuid.uuid4().hex
        self._until = 0.0      # our lease is certainly valid before this moment

    def hold(self) -> bool:
        """Take or renew the lease; True while this replica holds it."""
        t = now()
        if t < self._until - 2 * self.ttl / 3:
            return True        # renewed recently: no write needed yet
        try:
            with self.store.write() as conn:
                done = conn.execute(leases.update().where(
                    leases.c.name == self.name,
                    sa.or_(leases.c.holder == self.holder, leases.c.expires_at < t))
                    .values(holder=self.holder, expires_at=t + self.ttl)).rowcount
                if done:
                    self._until = t + self.ttl
                    return True
                exists = conn.execute(sa.select(leases.c.name).where(
                    leases.c.name == self.name)).first()
                if exists:
                    return False
                conn.execute(leases.insert().values(name=self.name, holder=self.holder,
                                                    expires_at=t + self.ttl))
            self._until = t + self.ttl
            return True
        except IntegrityError:   # another replica inserted it first
            return False

    def release(self) -> None:
        self._until = 0.0
        with self.store.write() as conn:
            conn.execute(leases.delete().where(leases.c.name == self.name,
                                               leases.c.holder == self.holder))
