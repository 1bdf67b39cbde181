"""Properties v3 and property groups (hubspot.md §3): list, get, create."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from leadsync.sandbox.hubspot.routes.common import read_json, request_error
from leadsync.sandbox.hubspot.state import RequestError
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.hubspot.host import PortalHost

__all__ = ["PropertyRoutes"]


class PropertyRoutes:
    def __init__(self, emulator: PortalHost) -> None:
        self.emu = emulator
        self.state = emulator.state

    def add(self, app: web.Application) -> None:
        base = "/crm/v3/properties/{objectType}"
        app.router.add_get(base + "/groups", self.list_groups)
        app.router.add_post(base + "/groups", self.create_group)
        app.router.add_get(base + "/groups/{groupName}", self.get_group)
        app.router.add_get(base, self.list_properties)
        app.router.add_post(base, self.create_property)
        app.router.add_get(base + "/{propertyName}", self.get_property)

    async def list_properties(self, request: web.Request) -> web.Response:
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
        except RequestError as exc:
            return request_error(exc)
        with self.state.lock:
            return json_response(
                {"results": [p.to_json() for p in self.state.properties[object_type].values()]}
            )

    async def get_property(self, request: web.Request) -> web.Response:
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
        except RequestError as exc:
            return request_error(exc)
        with self.state.lock:
            prop = self.state.properties[object_type].get(request.match_info["propertyName"])
            if prop is None:
                return request_error(
                    RequestError(
                        404,
                        f"Unable to find property {request.match_info['propertyName']}",
                        "OBJECT_NOT_FOUND",
                    )
                )
            return json_response(prop.to_json())

    async def create_property(self, request: web.Request) -> web.Response:
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
            prop = self.state.create_property(object_type, await read_json(request), self.emu.clock.now())
        except RequestError as exc:
            return request_error(exc)
        return json_response(prop.to_json(), status=201)

    async def list_groups(self, request: web.Request) -> web.Response:
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
        except RequestError as exc:
            return request_error(exc)
        with self.state.lock:
            return json_response({"results": list(self.state.groups[object_type].values())})

    async def get_group(self, request: web.Request) -> web.Response:
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
        except RequestError as exc:
            return request_error(exc)
        group = self.state.groups[object_type].get(request.match_info["groupName"])
        if group is None:
            return request_error(
                RequestError(
                    404, f"Unable to find group {request.match_info['groupName']}", "OBJECT_NOT_FOUND"
                )
            )
        return json_response(group)

    async def create_group(self, request: web.Request) -> web.Response:
        try:
            object_type = self.state.object_type(request.match_info["objectType"])
            group = self.state.create_group(object_type, await read_json(request))
        except RequestError as exc:
            return request_error(exc)
        return json_response(group, status=201)
