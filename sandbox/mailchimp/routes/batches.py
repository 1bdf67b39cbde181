"""Batch operations (mailchimp.md §8.1): ``POST /batches``, ``GET /batches``, ``GET`` and ``DELETE
/batches/{batch_id}``.

A batch is accepted as ``pending`` and run in the background, one operation after another (the
spec: "only one batch request is run at a time"): each operation is sent to this emulator over
loopback HTTP with the batch's own credentials, so it answers exactly as the same call would.
When all have run the batch is ``finished`` with its counts, and ``response_body_url`` points at a
gzipped tar of one JSON file: ``[{"status_code", "operation_id", "response": "<JSON text>"}]``
(§8.1). The results are served under ``/_sandbox/mailchimp/batch-results/`` (Mailchimp serves them
from a signed storage URL). Operations that are not GETs are run too; a GET without ``count`` is
sent as it is (Mailchimp pages those itself; UNCONFIRMED how, §8.1).
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from leadsync.sandbox.mailchimp.routes.common import Api, BadRequest, handler, ok, parse_body
from leadsync.sandbox.mailchimp.shapes import fmt_time, page_params
from leadsync.sandbox.mailchimp.state import Batch

if TYPE_CHECKING:
    from leadsync.sandbox.mailchimp.state import MailchimpState

__all__ = ["RESULTS_PREFIX", "routes"]

RESULTS_PREFIX = "/_sandbox/mailchimp/batch-results/"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


def render(batch: Batch, base: str) -> dict[str, Any]:
    return {
        "id": batch.id,
        "status": batch.status,
        "total_operations": len(batch.operations),
        "finished_operations": batch.finished_operations,
        "errored_operations": batch.errored_operations,
        "submitted_at": fmt_time(batch.submitted_at),
        "completed_at": fmt_time(batch.completed_at),
        "response_body_url": f"{base}{RESULTS_PREFIX}{batch.id}.tar.gz" if batch.results is not None else "",
        "_links": [],
    }


def _operations(body: dict[str, Any]) -> list[dict[str, Any]]:
    operations = body.get("operations")
    problems = []
    if not isinstance(operations, list) or not operations:
        problems.append({"field": "operations", "message": "Schema describes array, a non-empty one"})
    else:
        for i, op in enumerate(operations):
            if not isinstance(op, dict) or str(op.get("method", "")).upper() not in METHODS:
                problems.append(
                    {
                        "field": f"operations.{i}.method",
                        "message": "Required, one of GET POST PUT PATCH DELETE",
                    }
                )
            elif not isinstance(op.get("path"), str) or not op["path"].startswith("/"):
                problems.append(
                    {"field": f"operations.{i}.path", "message": "Required, a path starting with /"}
                )
            elif op.get("body") is not None and not isinstance(op["body"], str):
                problems.append(
                    {"field": f"operations.{i}.body", "message": "Schema describes string (JSON text)"}
                )
    if problems:
        raise BadRequest(
            400, "The resource submitted could not be validated.", title="Invalid Resource", errors=problems
        )
    return operations  # type: ignore[return-value]


async def _run(state: MailchimpState, batch: Batch, base: str, authorization: str) -> None:
    """Send every operation to this emulator, then pack the results (see the module docstring)."""
    with state.lock:
        batch.status = "started"
    results = []
    async with aiohttp.ClientSession(headers={"Authorization": authorization}) as session:
        for op in batch.operations:
            query = op.get("params") or {}
            url = f"{base}/3.0{op['path']}" + (f"?{urlencode(query, doseq=True)}" if query else "")
            body = op.get("body")
            try:
                async with session.request(
                    op["method"].upper(),
                    url,
                    data=body.encode() if isinstance(body, str) else None,
                    headers={"Content-Type": "application/json"} if body else None,
                ) as response:
                    text = await response.text()
                    status = response.status
            except aiohttp.ClientError as exc:
                status, text = (
                    500,
                    json.dumps({"title": "Internal Server Error", "status": 500, "detail": str(exc)}),
                )
            results.append({"status_code": status, "operation_id": op.get("operation_id"), "response": text})
            with state.lock:
                batch.finished_operations += 1
                batch.errored_operations += status >= 400
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = json.dumps(results).encode()
        info = tarfile.TarInfo(f"{batch.id}/{uuid.uuid5(uuid.NAMESPACE_URL, batch.id).hex}.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with state.lock:
        batch.results = archive.getvalue()
        batch.status = "finished"
        batch.completed_at = state.stamp()


def routes(api: Api) -> list[web.RouteDef]:
    state = api.state
    running: set[asyncio.Task[None]] = set()

    def base_of(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def start(request: web.Request) -> web.StreamResponse:
        raw = await request.read()

        def accept(_: web.Request, raw: bytes) -> web.Response:
            operations = _operations(parse_body(raw))
            batch = Batch(id=uuid.uuid4().hex[:10], operations=operations, submitted_at=state.stamp())
            state.batches[batch.id] = batch
            task = asyncio.get_running_loop().create_task(
                _run(state, batch, base_of(request), request.headers.get("Authorization", ""))
            )
            running.add(task)
            task.add_done_callback(running.discard)
            return ok(render(batch, base_of(request)))

        return await handler(api, lambda req, _: accept(req, raw))(request)

    def list_batches(request: web.Request, _: bytes) -> web.Response:
        count, offset = page_params(request.query)
        batches = sorted(state.batches.values(), key=lambda b: b.submitted_at, reverse=True)
        return ok(
            {
                "batches": [render(b, base_of(request)) for b in batches[offset : offset + count]],
                "total_items": len(batches),
                "_links": [],
            },
            request.query,
        )

    def get_batch(request: web.Request, _: bytes) -> web.Response:
        batch = state.batches.get(request.match_info["batch_id"])
        if batch is None:
            raise BadRequest(404, "The requested resource could not be found.")
        return ok(render(batch, base_of(request)), request.query)

    def delete_batch(request: web.Request, _: bytes) -> web.Response:
        if state.batches.pop(request.match_info["batch_id"], None) is None:
            raise BadRequest(404, "The requested resource could not be found.")
        return web.Response(status=204)

    async def results(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"].removesuffix(".tar.gz")
        with state.lock:
            batch = state.batches.get(name)
            data = batch.results if batch is not None else None
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, headers={"Content-Type": "application/x-gzip"})

    return [
        web.post("/3.0/batches", start),
        web.get("/3.0/batches", handler(api, list_batches)),
        web.get("/3.0/batches/{batch_id}", handler(api, get_batch)),
        web.delete("/3.0/batches/{batch_id}", handler(api, delete_batch)),
        web.get(RESULTS_PREFIX + "{name}", results),
    ]
