"""Export tasks (Create/Describe/CancelExportTask). An export writes a group's events to an S3
bucket; berth serves no S3, so no bucket exists to export to: CreateExportTask answers as AWS
answers for a missing bucket, and there is never a task to describe or cancel."""
from __future__ import annotations

from typing import Any

from ..api.app import RequestContext, quick_read
from ..api.errors import ServiceError
from ..state.store import Store
from .groups import get_group


class ExportTasks:
    store: Store

    def create_export_task(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        with self.store.read() as conn:
            get_group(conn, ctx.region, req["logGroupName"])
        raise ServiceError("InvalidParameterException",
                           "The given bucket does not exist. Please make sure the bucket is "
                           "valid.")

    @quick_read
    def describe_export_tasks(self, ctx: RequestContext, req: dict[str, Any]
                              ) -> dict[str, Any]:
        return {"exportTasks": []}

    def cancel_export_task(self, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        raise ServiceError("ResourceNotFoundException",
                           "The specified export task does not exist.")
