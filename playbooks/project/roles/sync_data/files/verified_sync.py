#!/usr/bin/env python3
"""Verified sync of a host's data paths: rsync, then every file accounted for on both sides.

Standard library only: the sync_data role runs this file on the conversion host and, over ssh
(``python3 -c BOOT <base64 of this file> side ...``), on the source, which is only ever read.

Commands
  sync   (conversion host) rsync the source's data paths into DEST, then a manifest of both
         sides compared file by file: every regular file has the same digest on the source and
         in the copy, or the sync names it. Prints one JSON summary line.
  side   (source, or the copy) one line per regular file below the roots: path, digest, stat
         key and how the digest is known (hashed now, or carried from the last manifest).
  check  (conversion host) re-hash the whole copy against its manifest (the verify step).

Evidence for a file not re-hashed. A side carries the digest it recorded in the last manifest
only when the file's stat key is unchanged: (size, mtime_ns, ctime_ns, dev, ino). Any write,
truncate, rename-over, chmod or `touch -d` changes ctime (which userspace cannot set back) or
the inode, so an unchanged key means unchanged content, as git's index and backup tools rely on.
A digest is only recorded as carryable when the key was the same before and after reading the
file and the file's ctime is older than the end of the read by more than --racy-seconds (a later
write in the same coarse clock tick could otherwise keep ctime; git's "racily clean" rule).
Files rsync reports as transferred are re-hashed in the copy whatever their stat says.

Manifest (DEST/../manifest.jsonl): a header line {"format", "algorithm", "paths", "files",
"bytes"} then one line per verified file: [path, digest, source key or null, copy key or null]
(null: not carryable, re-hash next time). Integrity evidence always names its algorithm.
"""
from __future__ import annotations

import argparse
import base64
import errno
import hashlib
import json
import os
import queue
import shlex
import shutil
import socket
import stat as stat_mod
import subprocess
import sys
import tempfile
import threading
import time

FORMAT = "yunshang-manifest/1"
ALGORITHMS = ("sha256", "sm3")
DEFAULT_ALGORITHM = "sha256"
CHUNK = 1 << 20
MAX_LINE = 1 << 16           # one manifest/side line: a path of at most 4096 bytes plus numbers
# python3 -c BOOT <base64 of this file> ARGS...: runs this file on a host that has no copy of it
BOOT = ("import base64,sys;b=sys.argv.pop(1);"
        "exec(compile(base64.b64decode(b),'verified_sync','exec'),{'__name__':'__main__','SELF_B64':b})")


class Refused(Exception):
    """Bad input or an unavailable algorithm: exit 2 with the message."""


class Failed(Exception):
    """rsync or the other side failed: exit 3 with the message."""


# --------------------------------------------------------------------------- pure decisions
def stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino]


def new_hash(algorithm: str):
    if algorithm not in ALGORITHMS:
        raise Refused(f"hash algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    try:
        return hashlib.new(algorithm)
    except ValueError:
        import ssl
        raise Refused(f"{algorithm} is not available: this Python ({sys.executable}) has no {algorithm} in hashlib "
                      f"(its OpenSSL: {ssl.OPENSSL_VERSION}, without {algorithm.upper()} or not enabled); needed: an "
                      f"OpenSSL with {algorithm.upper()} for Python (Debian 12's has it), or hash_algorithm sha256") from None


def carried(prior: dict | None, path: str, key: list[int], force: set[str] | frozenset = frozenset()) -> str | None:
    """The digest recorded for ``path`` if its stat key is unchanged and nothing says it changed."""
    if not prior or path in force:
        return None
    p = prior.get(path)
    if p is None or p[1] is None or p[1] != key:
        return None
    return p[0]


def how_hashed(before: list[int], after: list[int], end_ns: int, racy_ns: int) -> str:
    """hashed: carryable next time; racy: the content is right but may change without a new ctime;
    changing: the file changed while it was read."""
    if before != after:
        return "changing"
    if after[2] >= end_ns - racy_ns:
        return "racy"
    return "hashed"


UNSTABLE = ("changing", "appeared", "vanished")


def compare(source: list[list], copy: list[list]) -> tuple[list[list], list[tuple[str, str]]]:
    """(verified manifest entries, [(path, why)] for every file not shown equal on both sides)."""
    s = {e[0]: e for e in source}
    d = {e[0]: e for e in copy}
    verified, differ = [], []
    for path in sorted(s.keys() | d.keys(), key=os.fsencode):
        a, b = s.get(path), d.get(path)
        if a is None or a[3] == "vanished":
            if b is not None:
                differ.append((path, "only in the copy"))
            continue
        if b is None or b[3] == "vanished":
            differ.append((path, "missing in the copy" if a[3] != "appeared" else "appeared on the source"))
        elif a[3] in UNSTABLE or b[3] in UNSTABLE:
            differ.append((path, "changed during the sync"))
        elif a[1] != b[1]:
            differ.append((path, "content differs"))
        else:
            verified.append([path, a[1], a[2] if a[3] in ("hashed", "carried") else None,
                             b[2] if b[3] in ("hashed", "carried") else None])
    return verified, differ


def counts(entries: list[list]) -> dict[str, int]:
    out = {"hashed": 0, "carried": 0}
    for e in entries:
        if e[3] == "carried":
            out["carried"] += 1
        elif e[1] is not None:
            out["hashed"] += 1
    return out


def check_entry(e, roots: tuple[str, ...]) -> list:
    """One side line from another host: hostile until shown well formed and inside the roots."""
    ok = (isinstance(e, list) and len(e) == 4 and isinstance(e[0], str) and (e[1] is None or isinstance(e[1], str))
          and (e[2] is None or (isinstance(e[2], list) and len(e[2]) == 5 and all(type(x) is int for x in e[2])))
          and e[3] in ("hashed", "racy", "carried", "changing", "appeared", "vanished"))
    if not ok:
        raise Failed("the source side sent a malformed line")
    p = e[0]
    if p.startswith("/") or any(c in ("", ".", "..") for c in p.split("/")) or "\0" in p:
        raise Failed(f"the source side sent a path outside its data paths: {p[:200]!r}")
    if not any(p == r or p.startswith(r + "/") for r in roots):
        raise Failed(f"the source side sent a path outside its data paths: {p[:200]!r}")
    if e[1] is not None and not (0 < len(e[1]) <= 128 and all(c in "0123456789abcdef" for c in e[1])):
        raise Failed("the source side sent a malformed digest")
    return e


def rsync_name(raw: str) -> str:
    r"""rsync prints unprintable bytes of a name as \#ooo (octal)."""
    if "\\#" not in raw:
        return raw
    b, i, src = bytearray(), 0, os.fsencode(raw)
    while i < len(src):
        if src[i:i + 2] == b"\\#" and len(src) >= i + 5 and all(48 <= c <= 55 for c in src[i + 2:i + 5]):
            b.append(int(src[i + 2:i + 5], 8))
            i += 5
        else:
            b.append(src[i])
            i += 1
    return os.fsdecode(bytes(b))


def parse_itemized(line: str) -> tuple[str, str, int] | None:
    """'%i %l %n' -> (flags, name, length); deletions and non-files too (flags tell)."""
    line = line.rstrip("\n")
    if line.startswith("*deleting"):
        return ("*deleting", rsync_name(line[len("*deleting"):].strip()), -1)
    parts = line.split(" ", 2)
    if len(parts) != 3 or len(parts[0]) < 2:
        return None
    try:
        length = int(parts[1])
    except ValueError:
        return None
    return parts[0], rsync_name(parts[2]), length


# --------------------------------------------------------------------------- one side
def walk(roots: tuple[str, ...]):
    """(path, lstat) of every regular file below the roots (relative to the cwd), not following links."""
    stack = []
    for r in reversed(roots):
        try:
            st = os.lstat(r)
        except FileNotFoundError:
            continue
        if stat_mod.S_ISREG(st.st_mode):
            yield r, st
        elif stat_mod.S_ISDIR(st.st_mode):
            stack.append(r)
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise Failed(f"cannot list /{d.lstrip('/')}: {exc.strerror}") from None
        subdirs = []
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            p = d + "/" + e.name
            if stat_mod.S_ISREG(st.st_mode):
                yield p, st
            elif stat_mod.S_ISDIR(st.st_mode):
                subdirs.append(p)
        stack.extend(reversed(subdirs))


def hash_file(path: str, algorithm: str, racy_ns: int, buf: bytearray, wait: bool = False) -> list:
    """[path, digest, key after, how] read through one fd; the key before and after must agree.
    ``wait``: a file changed less than racy_ns ago is read once it is older (the copy, which
    nothing but rsync writes: its digests stay carryable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP):       # removed, or now a symlink
            return [path, None, None, "vanished"]
        raise Failed(f"cannot read {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if wait and (age := time.time_ns() - st.st_ctime_ns) < racy_ns:
            time.sleep(min(racy_ns - age, racy_ns) / 1e9 + 0.001)
            st = os.fstat(fd)
        before = stat_key(st)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        h, mv = new_hash(algorithm), memoryview(buf)
        while True:
            n = os.readv(fd, [buf])
            if not n:
                break
            h.update(mv[:n])
        after = stat_key(os.fstat(fd))
    finally:
        os.close(fd)
    return [path, h.hexdigest(), after, how_hashed(before, after, time.time_ns(), racy_ns)]


def side(roots: tuple[str, ...], algorithm: str, prior: dict | None = None, force: set[str] | frozenset = frozenset(),
         early: dict | None = None, recheck: bool = False, racy_seconds: float = 1.0, wait: bool = False) -> list[list]:
    """Every regular file below ``roots``: carried from ``prior`` when its stat key is unchanged,
    taken from ``early`` (hashed while rsync copied) when its key is still the one hashed, else
    hashed now. ``recheck``: walk again at the end; a file changed since is 'changing', a new one
    'appeared', a removed one 'vanished' (the final sync: nothing may change any more)."""
    new_hash(algorithm)
    racy_ns = int(racy_seconds * 1e9)
    buf = bytearray(CHUNK)
    out: dict[str, list] = {}
    for path, st in walk(roots):
        key = stat_key(st)
        e = early.get(path) if early else None
        if e is not None and e[2] == key and e[3] in ("hashed", "racy"):
            out[path] = e
            continue
        digest = carried(prior, path, key, force)
        out[path] = [path, digest, key, "carried"] if digest else hash_file(path, algorithm, racy_ns, buf, wait)
    entries = sorted(out.values(), key=lambda e: os.fsencode(e[0]))
    return walk_again(roots, algorithm, entries) if recheck else entries


def walk_again(roots: tuple[str, ...], algorithm: str, entries: list[list]) -> list[list]:
    """Walk again: a file changed since its digest was taken is 'changing', a new one 'appeared',
    a removed one 'vanished'. A 'racy' file (changed just before it was read, so a change in the
    same clock tick would not show in its stat) is read again and must give the same digest."""
    now = {p: stat_key(st) for p, st in walk(roots)}
    out = {e[0]: e for e in entries}
    buf = bytearray(CHUNK)
    for path, e in out.items():
        if path not in now:
            e[3] = "vanished"
        elif e[2] != now[path]:
            e[3] = "changing"
        elif e[3] == "racy" and hash_file(path, algorithm, 0, buf)[1] != e[1]:
            e[3] = "changing"
    for path in now.keys() - out.keys():
        out[path] = [path, None, now[path], "appeared"]
    return sorted(out.values(), key=lambda e: os.fsencode(e[0]))


class Follower:
    """Hashes the files of the copy as rsync reports them (``%i %l %n``), while rsync goes on
    with the next ones, so the copy's pass after rsync is left with (almost) nothing to read."""

    def __init__(self, algorithm: str, racy_seconds: float):
        self.algorithm, self.racy_ns = algorithm, int(racy_seconds * 1e9)
        self.q: queue.Queue = queue.Queue()
        self.early: dict[str, list] = {}
        self.reported: set[str] = set()
        self.lines = 0
        self.rsync_done = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def feed(self, line: str) -> None:
        item = parse_itemized(line)
        if item is None:
            return
        self.lines += 1
        flags, name, length = item
        if flags[1:2] == "f" and flags[0] in ">c":
            self.reported.add(name)
            self.q.put((name, length))

    def finish(self) -> dict[str, list]:
        self.rsync_done.set()
        self.q.put(None)
        self.t.join()
        return self.early

    def _run(self) -> None:
        buf = bytearray(CHUNK)
        while (item := self.q.get()) is not None:
            if self.rsync_done.is_set():
                continue                    # the pass after rsync hashes whatever is left
            name, length = item
            while not self.rsync_done.is_set():     # rsync reports a file before it is in place
                try:
                    st = os.lstat(name)
                    if stat_mod.S_ISREG(st.st_mode) and st.st_size == length:
                        break
                except FileNotFoundError:
                    pass
                time.sleep(0.002)
            else:
                continue
            try:
                self.early[name] = hash_file(name, self.algorithm, self.racy_ns, buf, wait=True)
            except Failed:
                pass


# --------------------------------------------------------------------------- manifest
def manifest_path(dest: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(dest)), "manifest.jsonl")


def read_manifest(path: str, algorithm: str, roots: tuple[str, ...]) -> tuple[dict, dict]:
    """({path: [digest, source key]}, {path: [digest, copy key]}) of the last verified sync; empty
    when there is none, or it used another algorithm or other data paths (everything is re-hashed)."""
    src: dict = {}
    dst: dict = {}
    try:
        fh = open(path, encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return src, dst
    with fh:
        head = json.loads(fh.readline() or "{}")
        if head.get("format") != FORMAT or head.get("algorithm") != algorithm or head.get("paths") != list(roots):
            return src, dst
        for line in fh:
            p, digest, skey, dkey = json.loads(line)
            src[p] = [digest, skey]
            dst[p] = [digest, dkey]
    return src, dst


def write_manifest(path: str, algorithm: str, roots: tuple[str, ...], verified: list[list], total_bytes: int) -> str:
    """Atomically (temp, fsync, rename); returns '<algorithm>:<digest of the file>'."""
    h = new_hash(algorithm)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as fh:
        for obj in [{"format": FORMAT, "algorithm": algorithm, "paths": list(roots), "files": len(verified),
                     "bytes": total_bytes}] + verified:
            line = json.dumps(obj, separators=(",", ":")) + "\n"
            h.update(line.encode("utf-8", "surrogateescape"))
            fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return f"{algorithm}:{h.hexdigest()}"


def dump(entries, fh) -> None:
    for e in entries:
        fh.write(json.dumps(e, separators=(",", ":")) + "\n")


def load_lines(text: str, what: str, roots: tuple[str, ...] | None = None) -> list[list]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            raise Failed(f"{what}: line {n} is longer than {MAX_LINE} bytes")
        try:
            e = json.loads(line)
        except ValueError:
            raise Failed(f"{what}: line {n} is not JSON") from None
        out.append(check_entry(e, roots) if roots is not None else e)
    return out


# --------------------------------------------------------------------------- commands
def script_b64() -> str:
    if "SELF_B64" in globals():                    # run by BOOT: this file has no path here
        return globals()["SELF_B64"]
    with open(os.path.abspath(__file__), "rb") as fh:
        return base64.b64encode(fh.read()).decode()


def control(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def stop_services(commands: list, timeout: float) -> dict:
    """Run the stop commands one after the other (``/bin/sh -c``); the first failure ends it."""
    for i, cmd in enumerate(commands):
        try:
            p = subprocess.run(["/bin/sh", "-c", str(cmd)], stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"ran": i, "failed": i, "rc": None, "error": f"still running after {timeout:g} s"}
        if p.returncode != 0:
            err = (p.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1][:300]
            return {"ran": i, "failed": i, "rc": p.returncode, "error": err}
    return {"ran": len(commands)}


def cmd_side(a) -> int:
    """stdin: the last manifest's entries for this side, an empty line; with --wait-go, prints
    {"ready"}, waits for a line 'go', runs the stop commands, prints {"stopped"}, then walks; with
    --recheck, then a line 'recheck' once rsync has finished: the walk is done again then (or at
    end of input)."""
    new_hash(a.algorithm)                     # before anything: the conversion host waits for "ready"
    os.chdir(a.root)
    prior: dict = {}
    for line in sys.stdin:
        if not line.strip():
            break
        p, digest, key = json.loads(line)
        prior[p] = [digest, key]
    roots = tuple(a.paths)
    if a.ready or a.wait_go:
        control({"ready": True})
    if a.wait_go:
        # final sync: ready (python started, manifest read) before the window opens; "go" stops
        # the services (commands from the conversion host's inventory) and starts the walk
        if sys.stdin.readline().strip() != "go":
            return 0
        control({"stopped": stop_services(json.loads(base64.b64decode(a.stop_b64)) if a.stop_b64 else [],
                                          a.stop_timeout)})
    entries = side(roots, a.algorithm, prior, racy_seconds=a.racy_seconds)
    if a.recheck:
        sys.stdin.readline()
        entries = walk_again(roots, a.algorithm, entries)
    dump(entries, sys.stdout)
    return 0


def run_rsync(argv: list[str], follower: Follower | None, pass_fds: tuple[int, ...] = ()) -> tuple[int, list[str], str]:
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         encoding="utf-8", errors="surrogateescape", pass_fds=pass_fds)
    err: list[str] = []
    t = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)
    t.start()
    lines = []
    for line in p.stdout:
        lines.append(line)
        if follower:
            follower.feed(line)
    rc = p.wait()
    t.join()
    return rc, lines, "".join(err)


class SourceSide:
    """The source's side, over ssh (read only): this file run there by ``python3 -c BOOT``.
    ``wait_go`` (final sync): it starts, reads the manifest, says {"ready"} and waits; go()
    stops the services there and starts its walk (the cutover window opens)."""

    def __init__(self, a, roots: tuple[str, ...], prior: dict, recheck: bool, wait_go: bool = False,
                 ready: bool = False):
        self.source = a.source
        remote = [a.source_python, "-c", BOOT, script_b64(), "side", "--root", "/", "--algorithm", a.algorithm,
                  "--racy-seconds", str(a.racy_seconds)] + (["--recheck"] if recheck else [])
        remote += ["--ready"] if ready and not wait_go else []
        if wait_go:
            remote += ["--wait-go", "--stop-timeout", str(a.stop_timeout)] + (["--stop-b64", a.stop_b64] if a.stop_b64 else [])
        remote += ["--", *roots]
        self.p = subprocess.Popen(shlex.split(a.ssh) + [a.source, " ".join(map(shlex.quote, remote))],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, encoding="utf-8", errors="surrogateescape")
        self.recheck = recheck
        self.out: list[str] = []
        self.err: list[str] = []
        self.control: queue.Queue = queue.Queue()
        self.threads = [threading.Thread(target=self._feed, args=(prior,), daemon=True),
                        threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=lambda: self.err.append(self.p.stderr.read()), daemon=True)]
        for t in self.threads:
            t.start()

    def _feed(self, prior: dict) -> None:
        try:
            for p, (digest, key) in prior.items():
                if key is not None:
                    self.p.stdin.write(json.dumps([p, digest, key], separators=(",", ":")) + "\n")
            self.p.stdin.write("\n")
            self.p.stdin.flush()
            if not self.recheck:
                self.p.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def _read(self) -> None:
        for line in self.p.stdout:              # entries are JSON lists; {...} lines are control
            (self.control.put if line.startswith("{") else self.out.append)(line)
        self.control.put(None)

    def expect(self, key: str, timeout: float) -> dict:
        """The next control line, which must carry ``key``."""
        try:
            line = self.control.get(timeout=timeout)
        except queue.Empty:
            raise Failed(f"the source side did not answer within {timeout:g} s") from None
        if line is None:
            rc = self.p.wait()
            self.threads[2].join()
            last = ("".join(self.err).strip().splitlines() or [f"exit {rc}"])[-1]
            if rc == 2 and key == "ready":          # refused (e.g. no such algorithm there): nothing copied
                raise Refused(f"the source {self.source}: {last[:400]}; nothing was copied")
            raise Failed(f"the source side failed: {last[:300]}")
        try:
            obj = json.loads(line) if len(line) <= MAX_LINE else None
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or key not in obj:
            raise Failed("the source side sent a malformed line")
        return obj

    def send(self, word: str) -> None:
        self.threads[0].join()
        try:
            self.p.stdin.write(word + "\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def go_recheck(self) -> None:
        """rsync has finished: the source walks its files again (nothing may have changed)."""
        self.send("recheck")
        try:
            self.p.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def kill(self) -> None:
        self.p.kill()
        self.p.wait()

    def result(self, roots: tuple[str, ...]) -> list[list]:
        rc = self.p.wait()
        for t in self.threads:
            t.join()
        if rc != 0:
            last = ("".join(self.err).strip().splitlines() or [f"exit {rc}"])[-1]
            raise Failed(f"the source side failed: {last[:300]}")
        return load_lines("".join(self.out), "the source side", roots)


# On the source: says "ready", waits for the rsync server command line, checks it is a sender
# (the source is only read), then runs it as ssh would have (the shell parses rsync's escaping).
WAITER = r"""import os,sys,shlex
os.write(1,b"ready\n")
b=b""
while not b.endswith(b"\n"):
    c=os.read(0,1)
    if not c:
        sys.exit(0)
    b+=c
    if len(b)>65536:
        sys.exit(2)
line=b.decode("utf-8","surrogateescape").strip()
a=shlex.split(line)
if len(a)<3 or a[1]!="--server" or "--sender" not in a:
    sys.stderr.write("refused: not an rsync sender: "+line[:200]+"\n")
    sys.exit(2)
os.execv("/bin/sh",["sh","-c","exec "+line])
"""
# On the conversion host, as rsync's --rsh: sends the server command line down the session opened
# before the window and relays rsync's protocol both ways (no ssh session set up in the window).
RELAY = r"""import os,socket,sys,threading
s=socket.socket(fileno=int(sys.argv[1]))
s.setblocking(True)
os.set_blocking(0,True)
os.set_blocking(1,True)
a=sys.argv[2:]
s.sendall(os.fsencode(" ".join(a[a.index("--server")-1:])+"\n"))
def up():
    try:
        while d:=os.read(0,262144):
            s.sendall(d)
    finally:
        s.shutdown(socket.SHUT_WR)
threading.Thread(target=up,daemon=True).start()
while d:=s.recv(262144):
    m=memoryview(d)
    while m:
        m=m[os.write(1,m):]
"""


class RsyncSession:
    """The source's end of the final sync's rsync, its ssh session opened before the services stop:
    in the window rsync starts over it at once (on a real server the login shell's start-up alone
    -- profile, rc files -- is a few hundred ms per ssh session)."""

    def __init__(self, a):
        self.sock, theirs = socket.socketpair()
        self.p = subprocess.Popen(shlex.split(a.ssh) + [a.source, shlex.join([a.source_python, "-c", WAITER])],
                                  stdin=theirs, stdout=theirs, stderr=subprocess.PIPE)
        theirs.close()
        self.err: list[bytes] = []
        self.t = threading.Thread(target=lambda: self.err.append(self.p.stderr.read()), daemon=True)
        self.t.start()
        self.dir = tempfile.mkdtemp(prefix="ys-relay-")
        self.relay = os.path.join(self.dir, "relay.py")
        with open(self.relay, "w") as fh:
            fh.write(RELAY)

    def ready(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        got = b""
        try:
            while not got.endswith(b"\n") and len(got) < 64:
                c = self.sock.recv(1)
                if not c:
                    break
                got += c
        except OSError:
            pass
        self.sock.settimeout(None)
        if got != b"ready\n":
            self.close()
            last = (b"".join(self.err).decode("utf-8", "replace").strip().splitlines() or ["no answer"])[-1]
            raise Failed(f"the source's rsync session did not open: {last[:300]}")

    def rsh(self) -> str:
        return shlex.join([sys.executable, "-S", self.relay, str(self.sock.fileno())])

    def close(self, timeout: float = 30) -> int | None:
        try:
            self.sock.close()
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = None
        self.t.join(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def stop_commands(a) -> list:
    return json.loads(base64.b64decode(a.stop_b64)) if a.stop_b64 else []


def stop_failure(stop, commands: list) -> str:
    if not isinstance(stop, dict) or type(stop.get("failed")) is not int or not 0 <= stop["failed"] < len(commands):
        return "the source side sent a malformed line"
    i = stop["failed"]
    how = f"exited {stop.get('rc')}" if type(stop.get("rc")) is int else str(stop.get("error", ""))[:300]
    detail = str(stop.get("error", ""))[:300] if type(stop.get("rc")) is int and stop.get("error") else ""
    return (f"stopping the source's services: command {i + 1} of {len(commands)} ({str(commands[i])[:200]}) {how}"
            + (f": {detail}" if detail else "") + "; nothing was copied in this cutover")


def cmd_sync(a) -> int:
    roots = tuple(p.strip("/") for p in a.paths)
    if not roots or any(not r or ".." in r.split("/") for r in roots):
        raise Refused("data paths: expected absolute directories")
    try:
        new_hash(a.algorithm)
    except Refused as exc:
        raise Refused(f"the conversion host: {exc}; nothing was copied") from None
    os.makedirs(a.dest, exist_ok=True)
    dest = os.path.abspath(a.dest)
    mpath = manifest_path(dest)
    prior_src, prior_dst = read_manifest(mpath, a.algorithm, roots)
    argv = ["rsync", "--archive", "--relative", "--delete", "--numeric-ids", "--out-format=%i %l %n", "--mkpath",
            "--rsh=" + a.ssh] + [f"{a.source}:/{r}/" for r in roots] + [dest + "/"]
    t0 = time.perf_counter()
    os.chdir(dest)
    timings = {}
    # The source hashes (what changed since the manifest) while rsync reads it; the copy is hashed
    # as rsync writes it. Final sync (services stopped): once rsync is done the source walks its
    # files again, so a file changed at any time during the cutover fails it. The final sync opens
    # both ssh sessions (the source's side, rsync's) before the services stop: the window holds
    # the stop, the delta and the verification, not ssh or Python start-up.
    final = a.mode != "warm"
    stopped_at = None
    rs = None
    # sha256 is in every Python's hashlib; any other algorithm is confirmed on the source before
    # rsync starts, so a source without it is refused with nothing copied
    src = SourceSide(a, roots, prior_src, recheck=final, wait_go=final, ready=a.algorithm != DEFAULT_ALGORITHM)
    try:
        if not final and a.algorithm != DEFAULT_ALGORITHM:
            src.expect("ready", a.open_timeout)
        if final:
            rs = RsyncSession(a)
            src.expect("ready", a.open_timeout)
            rs.ready(a.open_timeout)
            timings["open"] = time.perf_counter() - t0
            stopped_at, t_stop = time.time(), time.perf_counter()
            src.send("go")
            stop = src.expect("stopped", a.stop_timeout * max(1, len(stop_commands(a))) + a.open_timeout)["stopped"]
            if not isinstance(stop, dict) or "failed" in stop:
                raise Failed(stop_failure(stop, stop_commands(a)))
            timings["stop"] = time.perf_counter() - t_stop
            argv[argv.index("--rsh=" + a.ssh)] = "--rsh=" + rs.rsh()
        follower = Follower(a.algorithm, a.copy_racy_seconds)
        t_rsync = time.perf_counter()
        rc, lines, err = run_rsync(argv, follower, pass_fds=(rs.sock.fileno(),) if rs else ())
        early = follower.finish()
        timings["rsync"] = time.perf_counter() - t_rsync
        if rs is not None:
            remote_rc = rs.close()
            rs = None
            if rc == 0 and remote_rc != 0:
                rc = 12
                err = f"the source's rsync exited {remote_rc}"
        if final:
            src.go_recheck()
        if rc not in (0, 24) or (rc == 24 and a.mode != "warm"):       # 24: files vanished (a running service)
            last = (err.strip().splitlines() or [f"exit {rc}"])[-1]
            raise Failed(f"rsync exited {rc}: {last[:300]}")
    except BaseException:
        src.kill()
        if rs is not None:
            rs.close(timeout=5)
        raise
    transferred = {n for n in (parse_itemized(line) for line in lines) if n}
    force = {name for flags, name, _ in transferred if flags[1:2] == "f" and flags[0] in ">c"}
    t1 = time.perf_counter()
    copy = side(roots, a.algorithm, prior_dst, force=force, early=early, recheck=a.mode != "warm",
                racy_seconds=a.copy_racy_seconds, wait=True)
    timings["copy_after_rsync"] = time.perf_counter() - t1
    source = src.result(roots)
    timings["source_wait"] = time.perf_counter() - t1
    verified, differ = compare(source, copy)
    total_bytes = sum(e[2][0] for e in copy if e[2])
    digest = write_manifest(mpath, a.algorithm, roots, verified, total_bytes)
    # a file that differs is removed from the copy, so the next sync copies it whole even when
    # rsync's quick check (size + mtime) would skip it; only files this side itself walked
    in_copy = {e[0] for e in copy}
    for path, _ in differ:
        if path in in_copy:
            try:
                os.unlink(os.path.join(dest, path))
            except FileNotFoundError:
                pass
    timings["total"] = time.perf_counter() - t0
    if stopped_at is not None:
        timings["window"] = time.perf_counter() - t_stop
    summary = {"mode": a.mode, "algorithm": a.algorithm, "files": len(copy), "bytes": total_bytes,
               "verified": len(verified), "source": counts(source), "copy": counts(copy),
               "changed_items": len(lines), "differ": ["/" + p for p, _ in differ],
               "differ_why": {"/" + p: why for p, why in differ},
               "manifest": os.path.basename(mpath), "manifest_digest": digest,
               "seconds": {k: round(v, 3) for k, v in timings.items()}}
    if final:
        summary.update(stopped_at=stopped_at, services_stopped=len(stop_commands(a)))
    print(json.dumps(summary, separators=(",", ":")))
    if differ and a.mode != "warm":
        names = ", ".join("/" + p for p, _ in differ[:3]) + (", ..." if len(differ) > 3 else "")
        print(f"checksums differ: {len(differ)} file(s) changed or missing in the copy ({names}): the source still "
              f"changes; stop its services (cutover_host_stop_commands) and run the cutover again", file=sys.stderr)
        return 1
    return 0


def cmd_check(a) -> int:
    """The whole copy re-hashed against its manifest: same files, same digests."""
    dest = os.path.abspath(a.dest)
    mpath = manifest_path(dest)
    try:
        with open(mpath, encoding="utf-8", errors="surrogateescape") as fh:
            head = json.loads(fh.readline())
            entries = [json.loads(line) for line in fh]
    except (FileNotFoundError, ValueError) as exc:
        raise Refused(f"{mpath}: no readable manifest ({exc}); run the sync step first") from None
    algorithm = head.get("algorithm", "")
    os.chdir(dest)
    now = {e[0]: e for e in side(tuple(head.get("paths") or ()), algorithm)}
    want = {e[0]: e[1] for e in entries}
    bad = sorted({p for p in want if p not in now or now[p][1] != want[p]} | (now.keys() - want.keys()),
                 key=os.fsencode)
    print(json.dumps({"algorithm": algorithm, "files": len(now), "manifest_files": len(want), "ok": not bad,
                      "mismatched": ["/" + p for p in bad[:20]]}, separators=(",", ":")))
    if bad:
        print(f"the staged copy does not match its {algorithm} manifest: {len(bad)} file(s) "
              f"({', '.join('/' + p for p in bad[:3])})", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="verified_sync", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("sync", "side", "check"):
        p = sub.add_parser(name)
        if name != "check":
            p.add_argument("--algorithm", default=DEFAULT_ALGORITHM)
            p.add_argument("--racy-seconds", type=float, default=1.0)
        if name == "sync":
            p.add_argument("--mode", choices=("warm", "final"), required=True)
            p.add_argument("--dest", required=True)
            p.add_argument("--ssh", required=True, help="ssh command line for rsync and the source side")
            p.add_argument("--source", required=True, help="user@address")
            p.add_argument("--source-python", default="python3")
            p.add_argument("--copy-racy-seconds", type=float, default=0.05,
                           help="the copy's files are hashed once this much older than their last change")
            p.add_argument("--open-timeout", type=float, default=60.0,
                           help="final: seconds for the source's sessions to open before the services stop")
        elif name == "side":
            p.add_argument("--root", default="/")
            p.add_argument("--recheck", action="store_true")
            p.add_argument("--wait-go", action="store_true")
            p.add_argument("--ready", action="store_true", help='print {"ready"} once the algorithm is checked')
        else:
            p.add_argument("--dest", required=True)
        if name != "check":
            p.add_argument("--stop-b64", default="", help="final: base64 of a JSON list of shell commands that "
                           "stop the source's services (run there once the sessions are open)")
            p.add_argument("--stop-timeout", type=float, default=600.0, help="seconds per stop command at most")
        if name != "check":
            p.add_argument("paths", nargs="+")
    a = ap.parse_args(argv)
    try:
        return {"sync": cmd_sync, "side": cmd_side, "check": cmd_check}[a.cmd](a)
    except Refused as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except Failed as exc:
        print(str(exc), file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
