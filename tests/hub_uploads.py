"""Uploads for the Hub-protocol test server: preupload, the LFS batch / PUT / verify round, the NDJSON commit
(parentCommit honoured), tags and branches - the endpoints huggingface_hub's upload path uses."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from tests.hub_state import LFS_SUFFIXES, Entry, Repo


class UploadRoutes:
    """Mixed into the server's request handler, beside CollectionRoutes."""

    state: Any
    base_url: str
    headers: Any
    rfile: Any
    connection: Any
    close_connection: bool

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        raise NotImplementedError

    def _error(self, status: int, code: str, message: str) -> None:
        raise NotImplementedError

    def _body(self) -> bytes:
        raise NotImplementedError

    def _repo(self, repo_id: str, need_write: bool = False) -> Repo | None:
        raise NotImplementedError

    def _files(self, repo: Repo, rev: str) -> tuple[str, dict[str, Entry]] | None:
        raise NotImplementedError

    def preupload(self, query: Any, repo: str, rev: str) -> None:
        body = json.loads(self._body())
        if self._repo(repo, need_write=True) is None:
            return
        files = [
            {
                "path": f["path"],
                "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) or f["size"] > 1_000_000 else "regular",
                "shouldIgnore": False,
            }
            for f in body["files"]
        ]
        self._send(200, {"files": files, "commitOid": None})

    def lfs_batch(self, query: Any, repo: str) -> None:
        body = json.loads(self._body())
        if self._repo(repo, need_write=True) is None:
            return
        objects = []
        for o in body["objects"]:
            entry: dict[str, Any] = {"oid": o["oid"], "size": o["size"]}
            if (repo, o["oid"]) not in self.state.lfs:
                entry["actions"] = {
                    "upload": {"href": f"{self.base_url}/lfs-upload/{repo}/{o['oid']}", "header": {}},
                    "verify": {"href": f"{self.base_url}/lfs-verify/{repo}/{o['oid']}", "header": {}},
                }
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"})

    def lfs_put(self, query: Any, repo: str, oid: str) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if self.state.drop_puts > 0:
            self.state.drop_puts -= 1
            self.rfile.read(min(n, 1024))
            self.close_connection = True
            self.connection.shutdown(2)  # the connection drops mid-upload; nothing is stored
            return
        data = self.rfile.read(n)
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "BadRequest", "sha256 mismatch")
        self.state.lfs[(repo, oid)] = data
        self._send(200, {})

    def lfs_verify(self, query: Any, repo: str, oid: str) -> None:
        self._body()
        self._send(200 if (repo, oid) in self.state.lfs else 404, {})

    def commit(self, query: Any, repo: str, rev: str) -> None:
        lines = [json.loads(x) for x in self._body().splitlines() if x.strip()]
        r = self._repo(repo, need_write=True)
        if r is None:
            return
        found = self._files(r, rev)
        if found is None:
            return
        files = dict(found[1])
        message = ""
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "header":
                parent = value.get("parentCommit")
                if parent and r.refs.get(rev, rev) != parent:
                    return self._error(412, "PreconditionFailed", f"{rev} has moved past {parent}")
                message = value["summary"] + ("\n\n" + value["description"] if value.get("description") else "")
            elif key == "file":
                files[value["path"]] = Entry(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                if (repo, value["oid"]) not in self.state.lfs:
                    return self._error(422, "LfsNotUploaded", f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = Entry(self.state.lfs[(repo, value["oid"])], lfs=True)
            elif key in ("deletedFile", "deletedFolder"):
                files = {
                    p: e for p, e in files.items() if p != value["path"] and not p.startswith(value["path"].rstrip("/") + "/")
                }
        cid = self.state.commit(r, rev, files, message)
        self._send(200, {"commitUrl": f"{self.base_url}/{repo}/commit/{cid}", "commitOid": cid, "success": True})

    def tag(self, query: Any, repo: str, rev: str) -> None:
        body = json.loads(self._body())
        r = self._repo(repo, need_write=True)
        if r is None or self._files(r, rev) is None:
            return
        if body["tag"] in r.refs:
            return self._error(409, "TagExists", f"Tag {body['tag']} already exists")
        r.refs[body["tag"]] = r.refs.get(rev, rev)
        self._send(200, {})

    def branch(self, query: Any, repo: str, branch: str) -> None:
        self._body()
        r = self._repo(repo, need_write=True)
        if r is None:
            return
        if branch in r.refs:
            return self._error(409, "BranchExists", f"Branch {branch} already exists")
        r.refs[branch] = r.refs["main"]
        self._send(200, {})
