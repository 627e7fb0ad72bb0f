"""verified_sync.py (the sync_data role's helper, standard library only): which digests are carried,
what counts as changed, the comparison of both sides, and what a hostile source may send."""
from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "playbooks", "project", "roles", "sync_data", "files", "verified_sync.py")
PLUGIN = os.path.join(ROOT, "playbooks", "project", "collections", "ansible_collections", "yunshang", "migration",
                      "plugins", "action", "verified_sync.py")
spec = importlib.util.spec_from_file_location("verified_sync", SCRIPT)
vs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vs)

KEY = [100, 1_700_000_000_000_000_000, 1_700_000_000_000_000_000, 2049, 77]
ROOTS = ("srv/app",)


def entry(path, digest="ab" * 32, key=KEY, how="hashed"):
    return [path, digest, list(key), how]


@pytest.mark.parametrize("change", [0, 1, 2, 3, 4])
def test_a_digest_is_carried_only_while_every_part_of_the_stat_key_is_unchanged(change):
    prior = {"srv/app/a": ["ab" * 32, KEY]}
    assert vs.carried(prior, "srv/app/a", list(KEY)) == "ab" * 32
    key = list(KEY)
    key[change] += 1                    # size, mtime, ctime (any write, chmod, touch -d), device, inode
    assert vs.carried(prior, "srv/app/a", key) is None


def test_not_carried_when_forced_unknown_or_not_carryable():
    prior = {"srv/app/a": ["ab" * 32, KEY], "srv/app/b": ["cd" * 32, None]}
    assert vs.carried(prior, "srv/app/a", list(KEY), force={"srv/app/a"}) is None     # rsync transferred it
    assert vs.carried(prior, "srv/app/b", list(KEY)) is None                           # was racy
    assert vs.carried(prior, "srv/app/c", list(KEY)) is None
    assert vs.carried(None, "srv/app/a", list(KEY)) is None


def test_how_hashed():
    now = KEY[2] + 10 * 10**9
    assert vs.how_hashed(KEY, KEY, now, 10**9) == "hashed"
    assert vs.how_hashed(KEY, KEY, KEY[2] + 10**8, 10**9) == "racy"      # changed 0.1 s before the read ended
    changed = list(KEY)
    changed[0] += 1
    assert vs.how_hashed(KEY, changed, now, 10**9) == "changing"


def test_compare_verifies_equal_files_and_names_every_other():
    src = [entry("srv/app/same"), entry("srv/app/racy", how="racy"), entry("srv/app/carried", how="carried"),
           entry("srv/app/differs"), entry("srv/app/only-src"), entry("srv/app/changing", how="changing"),
           entry("srv/app/new", digest=None, how="appeared")]
    dst = [entry("srv/app/same"), entry("srv/app/racy"), entry("srv/app/carried", how="carried"),
           entry("srv/app/differs", digest="cd" * 32), entry("srv/app/only-dst"), entry("srv/app/changing")]
    verified, differ = vs.compare(src, dst)
    assert [v[0] for v in verified] == ["srv/app/carried", "srv/app/racy", "srv/app/same"]
    assert {v[0]: v[2] for v in verified}["srv/app/racy"] is None            # not carryable on the source side
    assert {v[0]: v[3] for v in verified}["srv/app/racy"] == KEY
    assert dict(differ) == {"srv/app/differs": "content differs", "srv/app/only-src": "missing in the copy",
                            "srv/app/only-dst": "only in the copy", "srv/app/changing": "changed during the sync",
                            "srv/app/new": "appeared on the source"}


@pytest.mark.parametrize("bad", [
    ["../../etc/passwd", "ab" * 32, KEY, "hashed"],
    ["/etc/passwd", "ab" * 32, KEY, "hashed"],
    ["srv/app/../../etc/shadow", "ab" * 32, KEY, "hashed"],
    ["srv/other/x", "ab" * 32, KEY, "hashed"],
    ["srv/app/x", "not hex", KEY, "hashed"],
    ["srv/app/x", "ab" * 32, [1, 2], "hashed"],
    ["srv/app/x", "ab" * 32, KEY, "trust-me"],
    {"p": "srv/app/x"},
])
def test_a_hostile_source_line_is_refused(bad):
    with pytest.raises(vs.Failed):
        vs.check_entry(bad, ROOTS)


def test_source_output_is_bounded_per_line():
    with pytest.raises(vs.Failed, match="longer than"):
        vs.load_lines(json.dumps(["srv/app/" + "x" * vs.MAX_LINE, None, None, "vanished"]), "the source side", ROOTS)


def test_rsync_itemized_lines():
    assert vs.parse_itemized(">f+++++++++ 12 srv/app/new\\#012line\n") == (">f+++++++++", "srv/app/new\nline", 12)
    assert vs.parse_itemized(">f.st...... 4096 srv/app/a b\n") == (">f.st......", "srv/app/a b", 4096)
    assert vs.parse_itemized("*deleting   srv/app/old\n") == ("*deleting", "srv/app/old", -1)
    assert vs.parse_itemized("garbage\n") is None


def test_unknown_algorithm_is_refused():
    with pytest.raises(vs.Refused, match="expected one of sha256, sm3"):
        vs.new_hash("md5")


def test_side_carries_forces_and_walks_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("srv/app/d")
    for n in ("a", "b", "d/c"):
        with open(f"srv/app/{n}", "wb") as fh:
            fh.write(n.encode() * 1000)
    os.symlink("a", "srv/app/link")                                   # not a regular file: not listed
    first = vs.side(ROOTS, "sha256", racy_seconds=0)
    assert [e[0] for e in first] == ["srv/app/a", "srv/app/b", "srv/app/d/c"]
    assert {e[3] for e in first} == {"hashed"}
    prior = {e[0]: [e[1], e[2]] for e in first}
    again = vs.side(ROOTS, "sha256", prior, racy_seconds=0)
    assert {e[3] for e in again} == {"carried"} and [e[1] for e in again] == [e[1] for e in first]
    forced = vs.side(ROOTS, "sha256", prior, force={"srv/app/b"}, racy_seconds=0)
    assert {e[0]: e[3] for e in forced} == {"srv/app/a": "carried", "srv/app/b": "hashed", "srv/app/d/c": "carried"}
    # the final sync's second walk: a change after the digest was taken, a new and a removed file
    with open("srv/app/a", "ab") as fh:
        fh.write(b"late")
    with open("srv/app/late", "wb") as fh:
        fh.write(b"x")
    os.unlink("srv/app/d/c")
    hows = {e[0]: e[3] for e in vs.walk_again(ROOTS, "sha256", forced)}
    assert hows == {"srv/app/a": "changing", "srv/app/b": "hashed", "srv/app/d/c": "vanished", "srv/app/late": "appeared"}


def test_a_file_written_just_now_is_racy_and_not_carried(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("srv/app")
    with open("srv/app/a", "wb") as fh:
        fh.write(b"x")
    (e,) = vs.side(ROOTS, "sha256", racy_seconds=5)
    assert e[3] == "racy"
    verified, _ = vs.compare([e], [e])
    assert verified[0][2] is None and verified[0][3] is None              # re-hashed next time on both sides
    t0 = time.monotonic()
    (w,) = vs.side(ROOTS, "sha256", racy_seconds=0.2, wait=True)          # the copy waits instead
    assert w[3] == "hashed" and time.monotonic() - t0 >= 0.1


def test_manifest_of_another_algorithm_or_other_paths_is_not_used(tmp_path):
    path = str(tmp_path / "manifest.jsonl")
    digest = vs.write_manifest(path, "sha256", ROOTS, [["srv/app/a", "ab" * 32, KEY, None]], 100)
    assert digest.startswith("sha256:")
    assert vs.read_manifest(path, "sha256", ROOTS) == ({"srv/app/a": ["ab" * 32, KEY]}, {"srv/app/a": ["ab" * 32, None]})
    assert vs.read_manifest(path, "sm3", ROOTS) == ({}, {})
    assert vs.read_manifest(path, "sha256", ("srv/app", "srv/etc")) == ({}, {})


def test_the_side_runs_from_its_command_line_copy(tmp_path):
    """What the source runs: python3 -c BOOT <base64 of the file> side ... (nothing written there)."""
    os.makedirs(tmp_path / "srv" / "app")
    (tmp_path / "srv" / "app" / "a").write_bytes(b"hello")
    with open(SCRIPT, "rb") as fh:
        b64 = base64.b64encode(fh.read()).decode()
    r = subprocess.run([sys.executable, "-c", vs.BOOT, b64, "side", "--root", str(tmp_path), "--algorithm", "sha256",
                        "--", "srv/app"], input="\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (line,) = r.stdout.splitlines()
    assert json.loads(line)[:2] == ["srv/app/a", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"]
    r = subprocess.run([sys.executable, "-c", vs.BOOT, b64, "side", "--algorithm", "md5", "--", "srv/app"],
                       input="\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "expected one of sha256, sm3" in r.stderr and "Traceback" not in r.stderr


def test_the_action_plugin_boots_the_script_the_same_way():
    with open(PLUGIN) as fh:
        text = fh.read()
    ns: dict = {}
    exec(text.split("BOOT = ", 1)[1].split("\nOPTIONS", 1)[0].join(["BOOT = ", ""]), ns)
    assert ns["BOOT"] == vs.BOOT


def test_stop_commands_run_in_order_and_the_first_failure_ends_them(tmp_path):
    marker = tmp_path / "ran"
    ok = vs.stop_services([f"echo one >> {marker}", f"echo two >> {marker}"], 10)
    assert ok == {"ran": 2} and marker.read_text() == "one\ntwo\n"
    bad = vs.stop_services([f"echo a >> {marker}", "echo 'no such unit' >&2; exit 5", f"echo never >> {marker}"], 10)
    assert bad == {"ran": 1, "failed": 1, "rc": 5, "error": "no such unit"}
    assert marker.read_text() == "one\ntwo\na\n"
    slow = vs.stop_services(["sleep 5"], 0.2)
    assert slow["failed"] == 0 and slow["rc"] is None and "still running after 0.2 s" in slow["error"]


def test_a_stop_failure_names_the_command_and_a_malformed_answer_is_refused():
    cmds = ["systemctl stop nginx", "systemctl stop postgresql"]
    msg = vs.stop_failure({"ran": 1, "failed": 1, "rc": 5, "error": "Unit postgresql.service not loaded."}, cmds)
    assert msg == ("stopping the source's services: command 2 of 2 (systemctl stop postgresql) exited 5: "
                   "Unit postgresql.service not loaded.; nothing was copied in this cutover")
    assert "still running after 600 s" in vs.stop_failure({"failed": 0, "rc": None, "error": "still running after 600 s"}, cmds)
    for bad in ({"failed": 7}, {"failed": "0"}, [], {"failed": -1}):
        assert vs.stop_failure(bad, cmds) == "the source side sent a malformed line"


def test_the_unavailable_algorithm_message_says_what_is_missing(monkeypatch):
    def no_sm3(name, *a):
        raise ValueError("unsupported hash type " + name)
    monkeypatch.setattr(vs.hashlib, "new", no_sm3)
    with pytest.raises(vs.Refused) as exc:
        vs.new_hash("sm3")
    assert "sm3 is not available" in str(exc.value) and "no sm3 in hashlib" in str(exc.value)
    assert "needed: an OpenSSL with SM3 for Python" in str(exc.value) and "or hash_algorithm sha256" in str(exc.value)
