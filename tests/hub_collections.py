"""Hub Collections for the Hub-protocol test server: create (409 with the slug when the title exists in
the namespace), read, list by owner, add an item (409 when present), change an item's note - the
endpoints and JSON shapes huggingface_hub's collection methods use."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CollectionRoutes:
    """Mixed into the server's request handler; state lives in ``self.state.collections`` (slug -> dict)."""

    state: Any

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        raise NotImplementedError

    def _error(self, status: int, code: str, message: str) -> None:
        raise NotImplementedError

    def _body(self) -> bytes:
        raise NotImplementedError

    def _authorized(self) -> bool:
        raise NotImplementedError

    def _may_write(self) -> bool:
        raise NotImplementedError

    def collection_routes(self) -> list[tuple[str, str, Any]]:
        slug = r"(?P<slug>[^/]+/[^/]+)"
        return [
            ("POST", r"/api/collections", self.create_collection),
            ("GET", r"/api/collections", self.list_collections),
            ("GET", rf"/api/collections/{slug}", self.get_collection),
            ("POST", rf"/api/collections/{slug}/items", self.add_item),
            ("PATCH", rf"/api/collections/{slug}/items/(?P<item>[0-9a-f]+)", self.update_item),
        ]

    def _writer(self) -> bool:
        if not self._authorized():
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return False
        if not self._may_write():
            self._error(403, "Forbidden", "You don't have the rights to change collections")
            return False
        return True

    def create_collection(self, query: Any) -> None:
        body = json.loads(self._body() or b"{}")
        if not self._writer():
            return
        owner, title = body["namespace"], body["title"]
        for c in self.state.collections.values():
            if c["owner"] == owner and c["title"] == title:
                return self._send(409, {"error": "Collection already exists", "slug": c["slug"]})
        words = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        slug = f"{owner}/{words}-{hashlib.sha1(f'{owner}/{title}'.encode()).hexdigest()[:24]}"
        self.state.collections[slug] = {
            "slug": slug, "title": title, "owner": owner, "items": [], "lastUpdated": _now(),
            "position": len(self.state.collections), "private": bool(body.get("private")), "theme": "blue",
            "upvotes": 0, "description": body.get("description"),
        }  # fmt: skip
        self._send(200, self.state.collections[slug])

    def list_collections(self, query: Any) -> None:
        owner = (query.get("owner") or [None])[0]
        found = [c for c in self.state.collections.values() if owner is None or c["owner"] == owner]
        # the list carries no position (the client numbers the collections itself)
        self._send(200, [{k: v for k, v in c.items() if k != "position"} for c in found])

    def get_collection(self, query: Any, slug: str) -> None:
        c = self.state.collections.get(slug)
        if c is None:
            return self._error(404, "NotFound", f"Collection {slug} not found")
        self._send(200, c)

    def add_item(self, query: Any, slug: str) -> None:
        body = json.loads(self._body() or b"{}")
        if not self._writer():
            return
        c = self.state.collections.get(slug)
        if c is None:
            return self._error(404, "NotFound", f"Collection {slug} not found")
        item = body["item"]
        if item["type"] == "model" and item["id"] not in self.state.repos:
            return self._error(404, "NotFound", f"Repository {item['id']} not found")
        if any(i["id"] == item["id"] and i["type"] == item["type"] for i in c["items"]):
            return self._send(409, {"error": "Item already in the collection"})
        oid = hashlib.sha1(f"{slug}/{item['id']}".encode()).hexdigest()[:24]
        entry = {"_id": oid, "id": item["id"], "type": item["type"], "position": len(c["items"])}
        if body.get("note"):
            entry["note"] = {"text": body["note"], "html": body["note"]}
        c["items"].append(entry)
        c["lastUpdated"] = _now()
        self._send(200, c)

    def update_item(self, query: Any, slug: str, item: str) -> None:
        body = json.loads(self._body() or b"{}")
        if not self._writer():
            return
        c = self.state.collections.get(slug)
        entry = next((i for i in (c or {}).get("items", []) if i["_id"] == item), None)
        if c is None or entry is None:
            return self._error(404, "NotFound", f"Item {item} not found in {slug}")
        if "note" in body:
            entry["note"] = {"text": body["note"], "html": body["note"]}
        if "position" in body:
            entry["position"] = body["position"]
        self._send(200, {"success": True})
