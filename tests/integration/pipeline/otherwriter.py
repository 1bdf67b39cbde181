"""Another writer on the sandbox platforms: a person or integration changing contacts through each
platform's own API (not the sandbox's admin routes), with the credentials the config holds."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import httpx


class OtherWriter:
    def __init__(self, config: Path) -> None:
        document = tomllib.loads(config.read_text())
        self.sources = {source["name"]: source for source in document["sources"]}

    def _client(self, name: str) -> httpx.Client:
        source = self.sources[name]
        secrets = source["inline_secrets"]
        if name == "hubspot":
            return httpx.Client(
                base_url=source["base_url"],
                headers={"Authorization": f"Bearer {secrets['token']}"},
                timeout=30,
            )
        if name == "mailchimp":
            return httpx.Client(
                base_url=source["base_url"], auth=("anystring", secrets["api_key"]), timeout=30
            )
        return httpx.Client(
            base_url=source["base_url"], headers={"Api-Token": secrets["api_token"]}, timeout=30
        )

    # --- HubSpot --------------------------------------------------------------------------------

    def hubspot_properties(self, remote_id: str, properties: dict[str, str]) -> None:
        with self._client("hubspot") as client:
            client.patch(
                f"/crm/v3/objects/contacts/{remote_id}", json={"properties": properties}
            ).raise_for_status()

    def hubspot_read(self, remote_id: str, names: list[str]) -> dict[str, Any]:
        with self._client("hubspot") as client:
            answer = client.get(
                f"/crm/v3/objects/contacts/{remote_id}", params={"properties": ",".join(names)}
            )
            answer.raise_for_status()
            return answer.json()["properties"]

    # --- Mailchimp ------------------------------------------------------------------------------

    def mailchimp_merge_fields(self, remote_id: str, merge_fields: dict[str, Any]) -> None:
        list_id, _, member = remote_id.partition(":")
        with self._client("mailchimp") as client:
            client.patch(
                f"/lists/{list_id}/members/{member}", json={"merge_fields": merge_fields}
            ).raise_for_status()

    def mailchimp_tags(self, remote_id: str, tags: dict[str, str]) -> None:
        """``tags``: name -> "active" | "inactive"."""
        list_id, _, member = remote_id.partition(":")
        body = {"tags": [{"name": name, "status": status} for name, status in tags.items()]}
        with self._client("mailchimp") as client:
            client.post(f"/lists/{list_id}/members/{member}/tags", json=body).raise_for_status()

    def mailchimp_member(self, remote_id: str) -> dict[str, Any]:
        list_id, _, member = remote_id.partition(":")
        with self._client("mailchimp") as client:
            answer = client.get(f"/lists/{list_id}/members/{member}")
            answer.raise_for_status()
            return answer.json()

    # --- ActiveCampaign -------------------------------------------------------------------------

    def activecampaign_contact(
        self, remote_id: str, *, first_name: str | None = None, fields: dict[str, str] | None = None
    ) -> None:
        """Change the contact's first name and/or custom fields (by perstag) with PUT /contacts/{id}."""
        contact: dict[str, Any] = {}
        with self._client("activecampaign") as client:
            if first_name is not None:
                contact["firstName"] = first_name
            if fields:
                ids = {
                    str(f["perstag"]).upper(): f["id"]
                    for f in client.get("/fields", params={"limit": 100}).json()["fields"]
                }
                contact["fieldValues"] = [
                    {"field": ids[tag.upper()], "value": value} for tag, value in fields.items()
                ]
            client.put(f"/contacts/{remote_id}", json={"contact": contact}).raise_for_status()

    def activecampaign_tag(self, remote_id: str, name: str) -> None:
        """Add tag ``name`` (created when missing) to the contact."""
        with self._client("activecampaign") as client:
            found = client.get("/tags", params={"search": name}).json()["tags"]
            match = [t for t in found if t["tag"] == name]
            if match:
                tag_id = match[0]["id"]
            else:
                created = client.post("/tags", json={"tag": {"tag": name, "tagType": "contact"}})
                created.raise_for_status()
                tag_id = created.json()["tag"]["id"]
            client.post(
                "/contactTags", json={"contactTag": {"contact": remote_id, "tag": tag_id}}
            ).raise_for_status()
