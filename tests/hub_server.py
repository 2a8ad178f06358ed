"""A Hub-compatible HTTP server for tests: just enough of the Hugging Face Hub API for the real
huggingface_hub client (create_repo, upload via preupload + LFS batch + NDJSON commit, tags,
branches, tree listing, repo info, resolve downloads, whoami) with real git-style commit ids.

Start it with ``HubServer(token)``, point ``HF_ENDPOINT`` at ``server.url`` and set
``HF_HUB_DISABLE_XET=1`` so the client uses the LFS path. ``drop_puts`` makes the next N LFS uploads
drop the connection mid-body; ``corrupt()`` flips a stored file's bytes without updating its oids.

Hostile and failing servers, for the security tests: ``craft()`` commits any paths and bytes (``../x``
included) and can tag them; ``read_tokens`` are accepted for reads and get 403 on writes; any other
``Authorization`` gets 401 everywhere, as the Hub answers; ``throttle[pattern] = n`` answers the next
n requests matching ``"METHOD /path"`` with 429 and ``Retry-After``; ``stall`` patterns get no answer
until ``stop()``. ``parentCommit`` in a commit header is honoured (412 when the branch moved).
``oversize["owner/name/path"] = (n, declared)`` serves that file with n more bytes than it lists, the
Content-Length saying so when ``declared``, else none (the body ends when the connection closes).
The stored state is hub_state.py; upload routes hub_uploads.py; Collections hub_collections.py.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from tests.hub_collections import CollectionRoutes
from tests.hub_state import LFS_SUFFIXES, Entry, HubState, Repo, git_blob_oid
from tests.hub_uploads import UploadRoutes


class Handler(UploadRoutes, CollectionRoutes, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: HubState
    base_url: str

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    # -- helpers -------------------------------------------------------------------------------
    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if raw is None and body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": " ".join(message.split())})

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _authorized(self) -> bool:
        """Whether the request may read private repos (a write or a read token)."""
        auth = self.headers.get("Authorization")
        return self._may_write() or auth in {f"Bearer {t}" for t in self.state.read_tokens}

    def _may_write(self) -> bool:

        auth = self.headers.get("Authorization")
        basic = {"Basic " + base64.b64encode(pair.encode()).decode() for pair in self.state.basic}
        return auth == f"Bearer {self.state.token}" or auth in basic

    def _repo(self, repo_id: str, need_write: bool = False) -> Repo | None:
        repo = self.state.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(404 if self._authorized() else 401, "RepoNotFound", f"Repository {repo_id} not found")
            return None
        if need_write and not self._authorized():
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return None
        if need_write and not self._may_write():
            self._error(403, "Forbidden", f"You don't have the rights to write to {repo_id}")
            return None
        return repo

    def _files(self, repo: Repo, rev: str) -> tuple[str, dict[str, Entry]] | None:
        cid = repo.refs.get(rev, rev if rev in repo.commits else None)
        if cid is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None
        return cid, repo.commits[cid]["files"] if cid else {}

    def _read(self, repo_id: str, rev: str) -> tuple[Repo, str, dict[str, Entry]] | None:
        """The repo and the commit and files ``rev`` names, or None once an error reply is sent."""
        repo = self._repo(repo_id)
        found = None if repo is None else self._files(repo, rev)
        return None if repo is None or found is None else (repo, *found)

    # -- routes --------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        self._route()

    def do_HEAD(self) -> None:  # noqa: N802
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    def do_PUT(self) -> None:  # noqa: N802
        self._route()

    def do_PATCH(self) -> None:  # noqa: N802
        self._route()

    def _route(self) -> None:
        url = urlparse(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        raw = url.path  # routes match before unquoting: a revision such as refs/convert/parquet arrives as one %2F segment
        line = f"{self.command} {path}"
        with self.state.lock:
            self.state.requests.append(line)
        if any(re.search(p, line) for p in self.state.stall):
            self.state.released.wait(120)  # no answer: the client's timeout must fire first
            self.close_connection = True
            return
        with self.state.lock:
            throttled = next((p for p, n in self.state.throttle.items() if n > 0 and re.search(p, line)), None)
            if throttled is not None:
                self.state.throttle[throttled] -= 1
        if throttled is not None:
            self._body()
            return self._send(429, {"error": "Too many requests"}, {"Retry-After": self.state.retry_after})
        if any(path.startswith(f"/{r}/resolve/") for r in self.state.gated):
            return self._error(403, "GatedRepo", "Access to this model is restricted: accept its conditions first")
        auth = self.headers.get("Authorization")
        if auth is not None and not self._authorized() and not path.startswith(("/lfs-upload/", "/lfs-verify/")):
            self._body()
            return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        routes = [
            ("GET", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)", self.dataset(self.info)),
            ("GET", r"/api/datasets/(?P<repo>[^/]+/[^/]+)", self.dataset(self.info)),
            ("GET", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/refs", self.dataset(self.refs)),
            ("GET", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?P<sub>/.*)?", self.dataset(self.tree)),
            ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)", self.dataset(self.paths_info)),
            ("GET|HEAD", r"/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self.dataset(self.resolve)),
            ("GET", r"/api/whoami-v2", self.whoami),
            ("POST", r"/api/repos/create", self.create_repo),
            ("POST", r"/api/validate-yaml", self.validate_yaml),
            ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)", self.preupload),
            ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)", self.dataset(self.preupload)),
            ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)", self.dataset(self.commit)),
            ("POST", r"/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch", self.lfs_batch),
            ("PUT", r"/lfs-upload/(?P<repo>[^/]+/[^/]+)/(?P<oid>[0-9a-f]{64})", self.lfs_put),
            ("POST", r"/lfs-verify/(?P<repo>[^/]+/[^/]+)/(?P<oid>[0-9a-f]{64})", self.lfs_verify),
            ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)", self.commit),
            ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/tag/(?P<rev>[^/]+)", self.tag),
            ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/branch/(?P<branch>[^/]+)", self.branch),
            ("PUT", r"/api/models/(?P<repo>[^/]+/[^/]+)/settings", self.settings),
            ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)/refs", self.refs),
            ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)/commits/(?P<rev>[^/]+)", self.history),
            ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)", self.info),
            ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)", self.info),
            ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?P<sub>/.*)?", self.tree),
            ("GET|HEAD", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self.resolve),
            *self.collection_routes(),
        ]
        for method, pattern, fn in routes:
            m = re.fullmatch(pattern, raw)
            if m and self.command in method.split("|"):
                with self.state.lock:
                    return fn(query=query, **{k: v if v is None else unquote(v) for k, v in m.groupdict().items()})
        self._body()  # read, so the next request on this kept-alive connection starts where it should
        self._error(404, "NotFound", f"no route for {self.command} {path}")

    def dataset(self, fn: Any) -> Any:
        """A model handler serving the dataset repo of the same name (stored as ``datasets/<id>``)."""

        def handler(repo: str, **kw: Any) -> None:
            return fn(repo=f"datasets/{repo}", **kw)

        return handler

    def paths_info(self, query: Any, repo: str, rev: str) -> None:
        form = parse_qs(self._body().decode())
        found = self._read(repo, rev)
        if found is None:
            return
        files = found[2]
        out = []
        for want in form.get("paths", []):
            want = want.strip("/")
            if want in files:
                out.append(self._item(want, files[want]))
            elif any(p.startswith(want + "/") for p in files):
                out.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": want})
        self._send(200, out)

    @staticmethod
    def _item(path: str, e: Entry) -> dict[str, Any]:
        item: dict[str, Any] = {"type": "file", "oid": e.oid, "size": len(e.data), "path": path}
        if e.lfs:
            item["lfs"] = {"oid": e.sha256, "size": len(e.data), "pointerSize": len(e.pointer())}
        return item

    def whoami(self, query: Any) -> None:
        if not self._authorized():
            return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        role = "write" if self._may_write() else "read"
        self._send(200, {"type": "user", "name": "zoo-tester", "auth": {"accessToken": {"role": role}}})

    def create_repo(self, query: Any) -> None:
        body = json.loads(self._body() or b"{}")
        if not self._authorized():
            return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        repo_id = f"{body.get('organization') or 'zoo-tester'}/{body['name']}"
        repo_id = f"datasets/{repo_id}" if body.get("type") == "dataset" else repo_id  # stored as dataset() serves them
        if not self._may_write():
            return self._error(403, "Forbidden", f"You don't have the rights to create a model under {repo_id.split('/')[0]}")
        if repo_id in self.state.repos:
            return self._send(
                409,
                {"error": f"You already created this {body.get('type') or 'model'} repo", "url": f"{self.base_url}/{repo_id}"},
                {"X-Error-Code": "RepoExists"},
            )
        repo = Repo(private=bool(body.get("private")))
        self.state.commit(repo, "main", {}, "initial commit")
        self.state.repos[repo_id] = repo
        self._send(200, {"url": f"{self.base_url}/{repo_id}", "name": repo_id})

    def settings(self, query: Any, repo: str) -> None:
        body = json.loads(self._body() or b"{}")
        r = self._repo(repo, need_write=True)
        if r is None:
            return
        if body.get("gated") not in (None, False, "auto", "manual"):
            return self._error(400, "BadRequest", f"invalid gated value {body.get('gated')!r}")
        if "gated" in body:
            r.gated = body["gated"]
        self._send(200, {})

    def validate_yaml(self, query: Any) -> None:
        import yaml

        content = json.loads(self._body())["content"]
        m = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            meta = yaml.safe_load(m.group(1) if m else content)
        except yaml.YAMLError as e:
            return self._error(400, "BadRequest", f"invalid YAML: {e}")
        if not isinstance(meta, dict):
            return self._error(400, "BadRequest", "metadata must be a mapping")
        self._send(200, {"errors": [], "warnings": []})

    def refs(self, query: Any, repo: str) -> None:
        r = self._repo(repo)
        if r is None:
            return
        tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": c} for n, c in r.refs.items() if n.startswith("release-")]
        branches = [
            {"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in r.refs.items() if not n.startswith("release-")
        ]
        self._send(200, {"branches": branches, "tags": tags, "converts": []})

    def history(self, query: Any, repo: str, rev: str) -> None:
        found = self._read(repo, rev)
        if found is None:
            return
        r, cid, _ = found
        out = []
        while cid:
            c = r.commits[cid]
            title = c["message"].split("\n")[0]
            out.append(
                {
                    "id": cid,
                    "title": title,
                    "message": c["message"],
                    "authors": [{"user": "zoo-tester"}],
                    "date": "2026-01-01T00:00:00.000Z",
                }
            )
            cid = c["parent"]
        self._send(200, out)

    def info(self, query: Any, repo: str, rev: str = "main") -> None:
        found = self._read(repo, rev)
        if found is None:
            return
        r, cid, files = found
        self._send(
            200,
            {
                "id": repo,
                "modelId": repo,
                "sha": cid,
                "private": r.private,
                "gated": r.gated,
                "siblings": [{"rfilename": p} for p in sorted(files)],
            },
        )

    def tree(self, query: Any, repo: str, rev: str, sub: str | None = None) -> None:
        found = self._read(repo, rev)
        if found is None:
            return
        prefix = (sub or "").strip("/")
        recursive = query.get("recursive", ["false"])[0].lower() == "true" or not repo.startswith("datasets/")
        out, folders = [], set()
        for p, e in sorted(found[2].items()):
            if prefix and not p.startswith(prefix + "/"):
                continue
            rest = p[len(prefix) + 1 :] if prefix else p
            parts = rest.split("/")
            for i in range(1, len(parts)):  # the folders on the way (datasets' file system lists them)
                folder = "/".join(filter(None, [prefix, *parts[:i]]))
                if repo.startswith("datasets/") and folder not in folders and (recursive or i == 1):
                    folders.add(folder)
                    out.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": folder})
            if recursive or len(parts) == 1:
                out.append(self._item(p, e))
        self._send(200, out)

    def resolve(self, query: Any, repo: str, rev: str, file: str) -> None:
        found = self._read(repo, rev)
        if found is None:
            return
        _, cid, files = found
        if file not in files:
            return self._error(404, "EntryNotFound", f"{file} does not exist on {rev}")
        e = files[file]
        headers = {"X-Repo-Commit": cid, "ETag": f'"{e.oid}"', "Content-Type": "application/octet-stream"}
        if e.lfs:
            headers.update({"X-Linked-Etag": f'"{e.sha256}"', "X-Linked-Size": str(len(e.data))})
        extra, declared = self.state.oversize.get(f"{repo}/{file}", (0, False))
        if extra and self.command == "GET":
            return self._oversize(e.data, extra, declared, headers)
        self._send(200, raw=e.data, headers=headers)

    def _oversize(self, data: bytes, extra: int, declared: bool, headers: dict[str, str]) -> None:
        self.send_response(200)
        for k, v in {**headers, **({"Content-Length": str(len(data) + extra)} if declared else {"Connection": "close"})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(data)
            for _ in range(0, extra, 1 << 20):
                self.wfile.write(b"\0" * min(1 << 20, extra))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it should


class HubServer:
    """The server on 127.0.0.1 in a background thread; ``stop()`` when done."""

    def __init__(self, token: str) -> None:
        self.state = HubState(token)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        handler.base_url = self.url
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.state.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


__all__ = ["LFS_SUFFIXES", "Entry", "HubServer", "HubState", "Repo", "git_blob_oid"]
