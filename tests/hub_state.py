"""The test Hub's stored state: repos, git-style commits and tags, LFS objects, and the knobs the hostile
and failing-server tests turn (tokens, throttles, stalls, gating, oversize files). The HTTP side is hub_server.py."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

LFS_SUFFIXES = (".safetensors", ".png", ".bin", ".pt")


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Entry:
    """A committed file; its oids are fixed when committed, as the Hub's are."""

    data: bytes
    lfs: bool
    sha256: str = ""
    oid: str = ""

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.oid = git_blob_oid(self.pointer() if self.lfs else self.data)

    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()


@dataclass
class Repo:
    private: bool
    gated: str | bool = False  # the access setting: False, "auto" or "manual"
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit id
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {"files", "message", "parent"}


class HubState:
    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[tuple[str, str], bytes] = {}  # (repo, sha256) -> content, uploaded but maybe not committed
        self.lock = threading.Lock()
        self.drop_puts = 0
        self.requests: list[str] = []
        self.read_tokens: set[str] = set()
        # "user:password" pairs a mirror takes as the write token's user (HF_ENDPOINT=http://user:password@host:
        # the client then sends Basic auth, as httpx does for a URL's userinfo)
        self.basic: set[str] = set()
        self.throttle: dict[str, int] = {}  # regex on "METHOD /path" -> how many more 429s
        self.retry_after = "1"
        self.stall: list[str] = []  # regexes on "METHOD /path" that never get an answer
        self.gated: set[str] = set()  # repo ids whose files answer 403 GatedRepo, as for terms not accepted
        self.oversize: dict[str, tuple[int, bool]] = {}  # "repo/path" -> (bytes served past its size, declared)
        self.collections: dict[str, dict[str, Any]] = {}  # slug -> the collection, as the Hub's API returns it
        self.released = threading.Event()

    def craft(
        self, repo_id: str, files: dict[str, bytes], tag: str | None = None, private: bool = False, branch: str = "main"
    ) -> str:
        """Commit ``files`` as they are (no path checks) on ``branch``, creating the repo; optionally tag it.
        Dataset repos are named ``datasets/<owner>/<name>``."""
        repo = self.repos.setdefault(repo_id, Repo(private=private))
        lfs = {p: Entry(d, lfs=p.endswith(LFS_SUFFIXES) or len(d) > 1_000_000) for p, d in files.items()}
        cid = self.commit(repo, branch, lfs, f"crafted {len(files)} files")
        if tag:
            repo.refs[tag] = cid
        return cid

    def commit(self, repo: Repo, branch: str, files: dict[str, Entry], message: str) -> str:
        parent = repo.refs.get(branch, "")
        digest = hashlib.sha1(parent.encode() + message.encode())
        for path in sorted(files):
            digest.update(f"{path}:{files[path].oid}".encode())
        cid = digest.hexdigest()
        repo.commits[cid] = {"files": files, "message": message, "parent": parent}
        repo.refs[branch] = cid
        return cid

    def corrupt(self, repo_id: str, path: str, revision: str = "main") -> None:
        repo = self.repos[repo_id]
        entry = repo.commits[repo.refs[revision]]["files"][path]
        entry.data = entry.data[:-1] + bytes([entry.data[-1] ^ 0xFF])  # same size, same oids, other bytes
