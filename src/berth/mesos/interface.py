"""The interface Python Mesos frameworks are written against: pymesos's `Scheduler` callbacks
and `SchedulerDriver` methods, with the same names and arguments.

pymesos itself no longer installs on Python 3.11 (its `http-parser` dependency fails to
build), so berth carries the interface: a framework subclasses `Scheduler` as it would
pymesos's and is driven by `ECSSchedulerDriver` instead of `MesosSchedulerDriver`. Messages
are dicts in the Mesos v1 HTTP API's shape with attribute access (`offer.agent_id.value`).
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

# mesos.proto's Status: what start, stop, abort, join and run return.
DRIVER_NOT_STARTED, DRIVER_RUNNING, DRIVER_ABORTED, DRIVER_STOPPED = 1, 2, 3, 4


class Scheduler:
    """A framework's scheduler: override the callbacks it cares about. The driver calls them
    one at a time, from its own thread."""

    def registered(self, driver: SchedulerDriver, frameworkId: Any, masterInfo: Any) -> None:
        """The driver started: `frameworkId` is this framework's id ({"value": ...})."""

    def reregistered(self, driver: SchedulerDriver, masterInfo: Any) -> None:
        """The driver reaches the control plane again after `disconnected`."""

    def disconnected(self, driver: SchedulerDriver) -> None:
        """The control plane cannot be reached; outstanding offers are void."""

    def resourceOffers(self, driver: SchedulerDriver, offers: list[Any]) -> None:
        """New offers, at most one per agent (container instance)."""

    def offerRescinded(self, driver: SchedulerDriver, offerId: Any) -> None:
        """An offer is void: its instance's resources changed, or its agent is gone."""

    def statusUpdate(self, driver: SchedulerDriver, status: Any) -> None:
        """A task changed state (acknowledged implicitly when this returns)."""

    def frameworkMessage(self, driver: SchedulerDriver, executorId: Any, slaveId: Any,
                         message: Any) -> None:
        """Never called: ECS tasks have no executor to send messages."""

    def slaveLost(self, driver: SchedulerDriver, slaveId: Any) -> None:
        """An agent stopped responding or left the cluster; its tasks are reported LOST."""

    def executorLost(self, driver: SchedulerDriver, executorId: Any, slaveId: Any,
                     status: Any) -> None:
        """Never called: ECS tasks have no executor."""

    def error(self, driver: SchedulerDriver, message: str) -> None:
        """An unrecoverable error; the driver has been aborted before this is called."""
        log.error("scheduler driver error: %s", message)


class SchedulerDriver:
    """What a framework calls. Ids may be given as messages ({"value": ...}) or strings,
    offer ids singly or as a list, as pymesos accepts them."""

    def start(self) -> int:
        raise NotImplementedError

    def stop(self, failover: bool = False) -> int:
        raise NotImplementedError

    def abort(self) -> int:
        raise NotImplementedError

    def join(self) -> int:
        raise NotImplementedError

    def run(self) -> int:
        raise NotImplementedError

    def requestResources(self, requests: Any) -> None:
        raise NotImplementedError

    def launchTasks(self, offerIds: Any, tasks: Any, filters: Any = None) -> None:
        raise NotImplementedError

    def acceptOffers(self, offerIds: Any, operations: Any, filters: Any = None) -> None:
        raise NotImplementedError

    def declineOffer(self, offerIds: Any, filters: Any = None) -> None:
        raise NotImplementedError

    def reviveOffers(self, roles: Any = ()) -> None:
        raise NotImplementedError

    def suppressOffers(self, roles: Any = ()) -> None:
        raise NotImplementedError

    def killTask(self, taskId: Any) -> None:
        raise NotImplementedError

    def acknowledgeStatusUpdate(self, status: Any) -> None:
        raise NotImplementedError

    def sendFrameworkMessage(self, executorId: Any, slaveId: Any, data: Any) -> None:
        raise NotImplementedError

    def reconcileTasks(self, tasks: Any) -> None:
        raise NotImplementedError
