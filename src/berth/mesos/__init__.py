"""A Mesos-style scheduler driver over the ECS API: Mesos frameworks on berth's cluster."""
from .driver import ECSSchedulerDriver
from .interface import (
    DRIVER_ABORTED,
    DRIVER_NOT_STARTED,
    DRIVER_RUNNING,
    DRIVER_STOPPED,
    Scheduler,
    SchedulerDriver,
)
from .messages import Message

__all__ = ["DRIVER_ABORTED", "DRIVER_NOT_STARTED", "DRIVER_RUNNING", "DRIVER_STOPPED",
           "ECSSchedulerDriver", "Message", "Scheduler", "SchedulerDriver"]
