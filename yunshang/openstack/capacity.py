"""Read live capacity, usage and department quotas from each operator's cloud.

Two ways to read the same facts, equal to what OpenStack says:

* ``read_operator_snapshot`` (one shot: ``capacity show``, ``plan --live``, admission before an
  apply): per department project the compute, network and volume quota sets with usage (3 calls a
  project). Exact and cheap for a few departments.
* ``OperatorReader`` (the exporter, one per operator, kept across refreshes): usage from a few bulk
  all-projects listings (servers, server groups; networks, subnets, ports, routers, floating IPs,
  security groups and rules with ``fields=project_id``; volumes, snapshots, backups), counted per
  project the way each service counts its quota usage; quota LIMITS, which change rarely, from a
  per-project cache refreshed on a slower cycle (``limits_max_age_seconds``, at most a tenth of the
  projects per refresh once warm; a new project is read at once). Neutron's limits come in one call.
  So a refresh costs O(pages), not O(projects x services).

Both read capacity the same way: Nova aggregates (host -> zone) and hypervisors (node -> host,
``running_vms`` per zone), Placement resource providers and, per compute node, its inventories and
usages (Placement has no bulk call for these; nodes are few).

Families (``yunshang.capacity.FAMILIES``) fail on their own: one failing API leaves the others
current; the failed family keeps its last good records and says since when. Nothing here raises:
an unreachable operator gives ``ok=False`` with an error text (no secrets).
"""
from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import math
import threading
import time
from typing import Callable, Iterable
from urllib.parse import parse_qs, urlsplit

from keystoneauth1 import exceptions as ks_exc

from yunshang.capacity import (DEPARTMENT_TAG_PREFIX, FAMILIES, PROJECT_TAG, ApiCall, FamilyRead, OperatorSnapshot,
                               QuotaUsage, ZoneCapacity)
from yunshang.errors import CloudUnavailable
from yunshang.openstack import CLOUD_ERRORS, connect
from yunshang.redact import exception_text

DEFAULT_ZONE = "nova"          # where nova puts hosts that are in no availability-zone aggregate
MAX_PARALLEL_OPERATORS = 8
PROJECT_READERS = 4            # concurrent per-project quota reads within one operator
COMPUTE_QUOTAS = ("cores", "ram", "instances", "key_pairs", "server_groups")
NETWORK_QUOTAS = ("network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule")
VOLUME_QUOTAS = ("volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes")
PAGE = 1000                    # nova's and cinder's default max_limit / osapi_max_limit
SERVICE_OF_FAMILY = {"compute_usage": "compute", "network_usage": "network", "volume_usage": "volume"}
# neutron collection -> quota resource it counts
NEUTRON_COUNTED = (("networks", "network"), ("subnets", "subnet"), ("ports", "port"), ("routers", "router"),
                   ("floatingips", "floatingip"), ("security-groups", "security_group"),
                   ("security-group-rules", "security_group_rule"))
SERVICE_NAME = {"compute": "compute", "network": "network", "block_storage": "volume", "placement": "placement",
                "identity": "identity"}


class _ApiError(Exception):
    pass


class _Gone(_ApiError):
    """404: the thing vanished between the list and the read (another client deleted it)."""


class _Meter:
    """Collects every call of one refresh (thread-safe: list.append)."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []

    def get(self, conn, service: str, path: str, what: str, microversion: str | None = None, **params) -> dict:
        t0 = time.monotonic()
        ok = False
        try:
            adapter = getattr(conn, service)       # may fail itself: the SDK discovers the endpoint here
            kw = {"microversion": microversion} if microversion else {}
            resp = adapter.get(path, params=params or None, raise_exc=False, **kw)
        except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout) as exc:
            raise _ApiError(f"{what}: cannot connect ({type(exc).__name__})") from None
        except ks_exc.EndpointNotFound:
            raise _ApiError(f"{what}: no endpoint in the service catalog") from None
        except CLOUD_ERRORS as exc:
            raise _ApiError(f"{what}: {type(exc).__name__}") from None
        else:
            if resp.status_code == 404:
                raise _Gone(f"{what}: HTTP 404")
            if resp.status_code >= 400:
                raise _ApiError(f"{what}: HTTP {resp.status_code}")
            ok = True
            return resp.json()
        finally:
            self.calls.append(ApiCall(SERVICE_NAME.get(service, service), time.monotonic() - t0, ok))

    def pages(self, conn, service: str, path: str, key: str, what: str, microversion: str | None = None,
              **params) -> list[dict]:
        """Every item of a marker-paginated all-projects listing (nova, cinder)."""
        out: list[dict] = []
        marker = None
        while True:
            q = dict(params, limit=PAGE)
            if marker:
                q["marker"] = marker
            items = self.get(conn, service, path, what, microversion, **q)[key]
            out.extend(items)
            if len(items) < PAGE:
                return out
            marker = items[-1]["id"]


def _zone_capacity(conn, provider_name: str, m: _Meter) -> tuple[tuple[ZoneCapacity, ...], tuple[tuple[str, int], ...]]:
    aggs = m.get(conn, "compute", "/os-aggregates", "nova aggregates")["aggregates"]
    host_zone: dict[str, str] = {}
    for a in aggs:
        az = (a.get("metadata") or {}).get("availability_zone") or a.get("availability_zone")
        if az:
            for h in a.get("hosts") or []:
                host_zone[h] = az
    hyps = m.get(conn, "compute", "/os-hypervisors/detail", "nova hypervisors")["hypervisors"]
    node_host = {h["hypervisor_hostname"]: (h.get("service") or {}).get("host", h["hypervisor_hostname"])
                 for h in hyps}
    instances: dict[str, int] = {}
    for h in hyps:
        zone = host_zone.get(node_host[h["hypervisor_hostname"]], DEFAULT_ZONE)
        instances[zone] = instances.get(zone, 0) + int(h.get("running_vms") or 0)
    rps = m.get(conn, "placement", "/resource_providers", "placement resource providers")["resource_providers"]
    nodes = [rp for rp in rps if rp["name"] in node_host]     # not sharing providers and the like

    def read_node(rp):
        # per provider: Placement has no bulk inventories/usages call
        inv = m.get(conn, "placement", f"/resource_providers/{rp['uuid']}/inventories",
                    "placement inventories")["inventories"]
        used = m.get(conn, "placement", f"/resource_providers/{rp['uuid']}/usages", "placement usages")["usages"]
        return rp, inv, used

    if len(nodes) > 1:
        with cf.ThreadPoolExecutor(max_workers=min(PROJECT_READERS, len(nodes))) as pool:
            read = list(pool.map(read_node, nodes))
    else:
        read = [read_node(rp) for rp in nodes]
    # (zone, rc) -> [total, reserved, weighted capacity, used]
    acc: dict[tuple[str, str], list[float]] = {}
    for rp, inv, used in read:
        zone = host_zone.get(node_host[rp["name"]], DEFAULT_ZONE)
        for rc, i in inv.items():
            a = acc.setdefault((zone, rc), [0, 0, 0.0, 0])
            a[0] += i["total"]
            a[1] += i["reserved"]
            a[2] += (i["total"] - i["reserved"]) * i["allocation_ratio"]
            a[3] += used.get(rc, 0)
    out = []
    for (zone, rc), (total, reserved, cap, used_n) in sorted(acc.items()):
        usable = total - reserved
        ratio = cap / usable if usable > 0 else 1.0
        out.append(ZoneCapacity(provider=provider_name, zone=zone, resource_class=rc, total=int(total),
                                reserved=int(reserved), allocation_ratio=round(ratio, 6), used=int(used_n)))
    return tuple(out), tuple(sorted(instances.items()))


def _marker_of(next_link: str | None) -> str | None:
    """The ``marker`` of a next-page link (Nova's usage report, Keystone's lists), None without one."""
    return parse_qs(urlsplit(next_link).query).get("marker", [None])[0] if next_link else None


def _department_projects(conn, departments: tuple[str, ...] | None, m: _Meter,
                         page: int = PAGE) -> list[tuple[str, str]]:
    """(department, project id) of every project tagged ``yunshang`` with a department tag.

    Every project is listed, page by page, and the tag is checked here. Keystone answers a listing
    without ``limit`` with at most ``max_db_limit`` (1,000 by default) projects and says nothing (no
    ``truncated``, no next link): at 1,000 department projects a center silently lost departments.
    Nor can its tag filter be paginated: it is applied after the page is cut, and a page left empty
    by it has no next link. A list Keystone says is truncated without a next page (an older
    Keystone with ``list_limit`` set) fails the read, naming why, rather than miss departments."""
    out = []
    data: list[dict] = []
    params: dict[str, object] = {"limit": page}
    while True:
        body = m.get(conn, "identity", "/projects", "keystone projects", **params)
        got = body.get("projects") or []
        data.extend(p for p in got if PROJECT_TAG in (p.get("tags") or []))
        nxt = (body.get("links") or {}).get("next")
        marker = _marker_of(nxt)
        if marker and got and marker != params.get("marker"):
            params = {"limit": page, "marker": marker}
            continue
        if body.get("truncated"):
            raise _ApiError("keystone projects: Keystone truncated the project list and gives no next page "
                            "(its list_limit): department projects would be missing")
        break
    for p in data:
        dept = next((t[len(DEPARTMENT_TAG_PREFIX):] for t in p.get("tags") or [] if t.startswith(DEPARTMENT_TAG_PREFIX)),
                    None)
        if dept is None or (departments is not None and dept not in departments):
            continue
        out.append((dept, p["id"]))
    return sorted(out)


# ----------------------------------------------------------------------------- one shot: per project
def _quotas(conn, provider_name: str, departments: tuple[str, ...] | None, m: _Meter) -> tuple[QuotaUsage, ...]:
    projects = _department_projects(conn, departments, m)
    if not projects:
        return ()
    with cf.ThreadPoolExecutor(max_workers=min(PROJECT_READERS, len(projects))) as pool:
        per_project = list(pool.map(lambda dp: _project_quotas_or_none(conn, provider_name, *dp, m), projects))
    return tuple(q for qs in per_project for q in qs)


def _project_quotas_or_none(conn, provider_name: str, dept: str, pid: str, m: _Meter) -> list[QuotaUsage]:
    try:
        return _project_quotas(conn, provider_name, dept, pid, m)
    except _Gone:
        return []              # project deleted while we read: it has no quotas to report


def _project_quotas(conn, provider_name: str, dept: str, pid: str, m: _Meter) -> list[QuotaUsage]:
    comp, net, vol = _project_quota_sets(conn, pid, m)
    out: list[QuotaUsage] = []
    for service, names, qs, used_key in (("compute", COMPUTE_QUOTAS, comp, "in_use"),
                                         ("network", NETWORK_QUOTAS, net, "used"),
                                         ("volume", VOLUME_QUOTAS, vol, "in_use")):
        for r in names:
            if isinstance(qs.get(r), dict):
                out.append(QuotaUsage(provider_name, dept, pid, service, r, int(qs[r]["limit"]), int(qs[r][used_key])))
    return out


def _project_quota_sets(conn, pid: str, m: _Meter) -> tuple[dict, dict, dict]:
    # Per project: nova/cinder have no list call for quota sets; neutron's list lacks usage.
    comp = m.get(conn, "compute", f"/os-quota-sets/{pid}/detail", "nova quotas")["quota_set"]
    net = m.get(conn, "network", f"/quotas/{pid}/details", "neutron quotas")["quota"]
    vol = m.get(conn, "block_storage", f"/os-quota-sets/{pid}", "cinder quotas", usage="True")["quota_set"]
    return comp, net, vol


def _one_line(exc: BaseException, cloud: str, step: str) -> str:
    if isinstance(exc, CloudUnavailable):
        return str(exc)
    if isinstance(exc, _ApiError):
        return f"cloud {cloud!r}: {exception_text(exc)}"
    if isinstance(exc, CLOUD_ERRORS):
        return f"cloud {cloud!r}: {step}: {type(exc).__name__}: {exception_text(exc, limit=160)}"
    return f"cloud {cloud!r}: {step}: unexpected {type(exc).__name__}"


def read_operator_snapshot(provider, clouds_file: str | None,
                           departments: tuple[str, ...] | None = None) -> OperatorSnapshot:
    """Everything live about one operator (``provider``: ``yunshang.model.Provider``), read now,
    quotas per department project (exact; 3 calls a project). Never raises."""
    taken_at = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    m = _Meter()
    step = "connect"
    try:
        conn = connect(provider.cloud, clouds_file)
        step = "capacity"
        zones, instances = _zone_capacity(conn, provider.name, m)
        step = "quotas"
        quotas = _quotas(conn, provider.name, departments, m)
        return OperatorSnapshot(provider=provider.name, taken_at=taken_at, duration_seconds=time.monotonic() - t0,
                                ok=True, zones=zones, instances=instances, quotas=quotas, api_calls=tuple(m.calls))
    except Exception as exc:  # noqa: BLE001 - a snapshot never raises; the error is reported instead
        error = _one_line(exc, provider.cloud, step)
    return OperatorSnapshot(provider=provider.name, taken_at=taken_at, duration_seconds=time.monotonic() - t0,
                            ok=False, error=error, api_calls=tuple(m.calls))


def read_all(catalog, clouds_file: str | None, operators: Iterable[str] | None = None,
             departments: tuple[str, ...] | None = None) -> tuple[OperatorSnapshot, ...]:
    """Snapshots of the catalog's operators (all, or those named), read concurrently, in catalog order."""
    wanted = None if operators is None else set(operators)
    providers = [p for p in catalog.providers if wanted is None or p.name in wanted or p.cloud in wanted]
    if not providers:
        return ()
    with cf.ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_OPERATORS, len(providers))) as pool:
        return tuple(pool.map(lambda p: read_operator_snapshot(p, clouds_file, departments), providers))


# ----------------------------------------------------------------------------- the exporter: bulk
def count_compute_usage(usages: Iterable[dict], unlaunched: Iterable[dict],
                        server_groups: Iterable[dict]) -> dict[str, dict[str, int]]:
    """Per project the compute quota usage nova counts: every instance not deleted nor soft-deleted,
    whatever its state, with its vcpus and RAM; and server groups.

    ``usages``: the ``server_usages`` of ``os-simple-tenant-usage`` (every launched instance alive in
    the window; ``ended_at`` set = deleted). ``unlaunched``: servers listed in BUILD and ERROR (with
    their flavor, compute API >= 2.47), which that report leaves out when they never launched;
    an instance in both is counted once."""
    out: dict[str, dict[str, int]] = {}
    seen: set[str] = set()

    def add(pid: str, iid: str, vcpus: int, ram_mb: int) -> None:
        if iid in seen:
            return
        seen.add(iid)
        u = out.setdefault(pid, {"instances": 0, "cores": 0, "ram": 0, "server_groups": 0})
        u["instances"] += 1
        u["cores"] += vcpus
        u["ram"] += ram_mb

    for su in usages:
        if su.get("ended_at") or su.get("state") == "soft-delete":
            continue
        add(su["tenant_id"], su["instance_id"], int(su.get("vcpus") or 0), int(su.get("memory_mb") or 0))
    for s in unlaunched:
        if s.get("status") == "SOFT_DELETED":
            continue
        f = s.get("flavor") or {}
        add(s["tenant_id"], s["id"], int(f.get("vcpus") or 0), int(f.get("ram") or 0))
    for g in server_groups:
        u = out.setdefault(g["project_id"], {"instances": 0, "cores": 0, "ram": 0, "server_groups": 0})
        u["server_groups"] += 1
    return out


def count_network_usage(listed: dict[str, Iterable[dict]]) -> dict[str, dict[str, int]]:
    """Per project the count of each neutron resource (``listed``: quota resource -> items with a
    ``project_id``), which is what neutron's quota ``used`` counts."""
    out: dict[str, dict[str, int]] = {}
    for resource, items in listed.items():
        for it in items:
            u = out.setdefault(it["project_id"], {})
            u[resource] = u.get(resource, 0) + 1
    return out


def count_volume_usage(volumes: Iterable[dict], snapshots: Iterable[dict],
                       backups: Iterable[dict]) -> dict[str, dict[str, int]]:
    """Per project cinder's quota usage: volumes and gigabytes (volume sizes plus snapshot sizes, as
    cinder counts snapshots against ``gigabytes``), snapshots, backups and backup gigabytes."""
    out: dict[str, dict[str, int]] = {}

    def u(pid):
        return out.setdefault(pid, {"volumes": 0, "gigabytes": 0, "snapshots": 0, "backups": 0,
                                    "backup_gigabytes": 0})

    for v in volumes:
        x = u(v["os-vol-tenant-attr:tenant_id"])
        x["volumes"] += 1
        x["gigabytes"] += int(v.get("size") or 0)
    for s in snapshots:
        x = u(s["os-extended-snapshot-attributes:project_id"])
        x["snapshots"] += 1
        x["gigabytes"] += int(s.get("size") or 0)
    for b in backups:
        x = u(b["os-backup-project-attr:project_id"])
        x["backups"] += 1
        x["backup_gigabytes"] += int(b.get("size") or 0)
    return out


def tenant_usages(conn, m: _Meter, now: dt.datetime | None = None) -> list[dict]:
    """Every ``server_usages`` entry of nova's usage report for a window around now (all projects,
    paginated by instance), i.e. every launched instance that is alive now or ended very recently."""
    now = now or dt.datetime.now(dt.timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%S"
    start = (now - dt.timedelta(seconds=60)).strftime(fmt)
    end = (now + dt.timedelta(seconds=60)).strftime(fmt)
    out: list[dict] = []
    marker = None
    while True:
        q = {"start": start, "end": end, "detailed": "1", "limit": PAGE, **({"marker": marker} if marker else {})}
        page = m.get(conn, "compute", "/os-simple-tenant-usage", "nova usage report", "2.40", **q)
        got = [su for tu in page.get("tenant_usages") or [] for su in tu.get("server_usages") or []]
        out.extend(got)
        nxt = next((ln["href"] for ln in page.get("tenant_usages_links") or [] if ln.get("rel") == "next"), None)
        if not got or not nxt:
            return out
        marker = _marker_of(nxt)
        if not marker:
            return out


class _Limits:
    """Quota limits of one project (and nova's key-pair usage, which is per user and only nova
    reports), read at ``read_at`` (monotonic)."""

    __slots__ = ("compute", "network", "volume", "key_pairs_in_use", "read_at")

    def __init__(self, compute: dict[str, int], network: dict[str, int], volume: dict[str, int],
                 key_pairs_in_use: int, read_at: float):
        self.compute, self.network, self.volume = compute, network, volume
        self.key_pairs_in_use, self.read_at = key_pairs_in_use, read_at


class OperatorReader:
    """Reads one operator again and again (the exporter keeps one per operator): one connection,
    a per-project cache of quota limits, usage from bulk listings, families failing on their own.

    ``read()`` never raises. ``limits_max_age_seconds``: how old a project's cached limits may get
    before it is read again (new projects are read at once); once the cache is warm at most
    ``ceil(projects / 10)`` projects are re-read per refresh, so no refresh carries them all."""

    def __init__(self, provider, clouds_file: str | None, departments: tuple[str, ...] | None = None,
                 limits_max_age_seconds: float = 300.0, connect_fn: Callable = connect,
                 monotonic: Callable[[], float] = time.monotonic):
        self.provider = provider
        self.clouds_file = clouds_file
        self.departments = departments
        self.limits_max_age_seconds = limits_max_age_seconds
        self._connect = connect_fn
        self._now = monotonic
        self._conn = None
        self._limits: dict[str, _Limits] = {}
        self._neutron_default: dict[str, int] | None = None
        # last good records per family, and when they were read
        self._last: dict[str, object] = {}
        self._read_at: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()       # one read at a time per operator

    # -- families
    def _capacity(self, conn, m):
        return _zone_capacity(conn, self.provider.name, m)

    def _compute_usage(self, conn, m):
        # Not /servers/detail of every server: on the devcloud it costs ~22 ms a server (22 s for
        # 1,000); the usage report lists the same instances' vcpus and RAM at ~2 ms a server, and
        # only servers that never launched (BUILD, ERROR: few) need the detailed list.
        usages = tenant_usages(conn, m)
        unlaunched = [s for status in ("BUILD", "ERROR")
                      for s in m.pages(conn, "compute", "/servers/detail", "servers", f"nova servers ({status})", "2.47",
                                       all_tenants="1", status=status)]
        groups = self._offset_pages(conn, m)
        return count_compute_usage(usages, unlaunched, groups)

    def _offset_pages(self, conn, m) -> list[dict]:
        out: list[dict] = []
        while True:
            items = m.get(conn, "compute", "/os-server-groups", "nova server groups", "2.13", all_projects="True",
                          limit=PAGE, offset=len(out))["server_groups"]
            out.extend(items)
            if len(items) < PAGE:
                return out

    def _network_usage(self, conn, m):
        def one(pair):
            coll, resource = pair
            key = coll.replace("-", "_")
            return resource, m.get(conn, "network", f"/{coll}", f"neutron {coll}", fields="project_id")[key]

        with cf.ThreadPoolExecutor(max_workers=PROJECT_READERS) as pool:
            return count_network_usage(dict(pool.map(one, NEUTRON_COUNTED)))

    def _volume_usage(self, conn, m):
        vols = m.pages(conn, "block_storage", "/volumes/detail", "volumes", "cinder volumes", all_tenants="1")
        snaps = m.pages(conn, "block_storage", "/snapshots/detail", "snapshots", "cinder snapshots", all_tenants="1")
        backups = m.pages(conn, "block_storage", "/backups/detail", "backups", "cinder backups", "3.18",
                          all_tenants="1")
        return count_volume_usage(vols, snaps, backups)

    def _quota_limits(self, conn, m, projects: list[tuple[str, str]]):
        now = self._now()
        wanted = {pid for _, pid in projects}
        for pid in list(self._limits):
            if pid not in wanted:
                del self._limits[pid]
        new = [pid for _, pid in projects if pid not in self._limits]
        stale = sorted((pid for _, pid in projects if pid in self._limits
                        and now - self._limits[pid].read_at >= self.limits_max_age_seconds),
                       key=lambda p: self._limits[p].read_at)
        todo = new + stale[: max(1, math.ceil(len(projects) / 10))]
        if todo:
            bulk = m.get(conn, "network", "/quotas", "neutron quotas")["quotas"]
            net_by_pid = {q["project_id"]: q for q in bulk}
            if self._neutron_default is None and any(pid not in net_by_pid for pid in todo):
                self._neutron_default = m.get(conn, "network", f"/quotas/{todo[0]}/default",
                                              "neutron default quotas")["quota"]

            def one(pid):
                try:
                    comp = m.get(conn, "compute", f"/os-quota-sets/{pid}/detail", "nova quotas")["quota_set"]
                    vol = m.get(conn, "block_storage", f"/os-quota-sets/{pid}", "cinder quotas")["quota_set"]
                except _Gone:
                    return pid, None
                net = net_by_pid.get(pid) or self._neutron_default or {}
                return pid, _Limits(
                    {r: int(comp[r]["limit"]) for r in COMPUTE_QUOTAS if isinstance(comp.get(r), dict)},
                    {r: int(net[r]) for r in NETWORK_QUOTAS if r in net},
                    {r: int(vol[r]) for r in VOLUME_QUOTAS if r in vol and not isinstance(vol[r], dict)},
                    int(comp["key_pairs"]["in_use"]) if isinstance(comp.get("key_pairs"), dict) else 0, now)

            with cf.ThreadPoolExecutor(max_workers=min(PROJECT_READERS, len(todo))) as pool:
                for pid, lim in pool.map(one, todo):
                    if lim is None:
                        self._limits.pop(pid, None)
                    else:
                        self._limits[pid] = lim
        return dict(self._limits)

    # -- the refresh
    def read(self) -> OperatorSnapshot:
        with self._lock:
            return self._read()

    def _read(self) -> OperatorSnapshot:
        taken_at = dt.datetime.now(dt.timezone.utc)
        t0 = time.monotonic()
        m = _Meter()
        prov = self.provider
        try:
            if self._conn is None:
                self._conn = self._connect(prov.cloud, self.clouds_file)
            conn = self._conn
        except Exception as exc:  # noqa: BLE001 - reported as the operator being down
            return OperatorSnapshot(provider=prov.name, taken_at=taken_at, duration_seconds=time.monotonic() - t0,
                                    ok=False, error=_one_line(exc, prov.cloud, "connect"), api_calls=tuple(m.calls))
        with cf.ThreadPoolExecutor(max_workers=len(FAMILIES) + 1) as pool:
            # the department projects are needed only to pair limits with usage: read beside the rest
            projects_f = pool.submit(_department_projects, conn, self.departments, m)
            jobs: dict[str, Callable[[], object]] = {
                "capacity": lambda: self._capacity(conn, m),
                "quota_limits": lambda: self._quota_limits(conn, m, projects_f.result()),
                "compute_usage": lambda: self._compute_usage(conn, m),
                "network_usage": lambda: self._network_usage(conn, m),
                "volume_usage": lambda: self._volume_usage(conn, m),
            }
            futures = {name: pool.submit(fn) for name, fn in jobs.items()}
            try:
                projects = projects_f.result()
            except Exception as exc:  # noqa: BLE001 - Keystone unreadable: the operator is down
                for f in futures.values():
                    f.cancel()
                self._conn = None     # reconnect (re-authenticate) next time
                return OperatorSnapshot(provider=prov.name, taken_at=taken_at,
                                        duration_seconds=time.monotonic() - t0, ok=False,
                                        error=_one_line(exc, prov.cloud, "projects"), api_calls=tuple(m.calls))
            reads: list[FamilyRead] = []
            for name in FAMILIES:
                try:
                    self._last[name] = futures[name].result()
                    self._read_at[name] = taken_at
                    reads.append(FamilyRead(name, True, "", taken_at))
                except Exception as exc:  # noqa: BLE001 - one family failing leaves the others current
                    reads.append(FamilyRead(name, False, _one_line(exc, prov.cloud, name), self._read_at.get(name)))
        if not any(r.ok for r in reads):
            self._conn = None
            return OperatorSnapshot(provider=prov.name, taken_at=taken_at, duration_seconds=time.monotonic() - t0,
                                    ok=False, error=reads[0].error, families=tuple(reads), api_calls=tuple(m.calls))
        zones, instances = self._last.get("capacity", ((), ()))  # type: ignore[misc]
        quotas = self._combine(projects)
        return OperatorSnapshot(provider=prov.name, taken_at=taken_at, duration_seconds=time.monotonic() - t0,
                                ok=True, zones=zones, instances=instances, quotas=quotas, families=tuple(reads),
                                api_calls=tuple(m.calls))

    def _combine(self, projects: list[tuple[str, str]]) -> tuple[QuotaUsage, ...]:
        limits: dict[str, _Limits] = self._last.get("quota_limits", {})  # type: ignore[assignment]
        usage = {svc: self._last.get(fam) for fam, svc in SERVICE_OF_FAMILY.items()}
        out: list[QuotaUsage] = []
        name = self.provider.name
        for dept, pid in projects:
            lim = limits.get(pid)
            if lim is None:
                continue            # limits never read yet (their family failed): nothing to pair usage with
            for service, names, lims in (("compute", COMPUTE_QUOTAS, lim.compute), ("network", NETWORK_QUOTAS, lim.network),
                                         ("volume", VOLUME_QUOTAS, lim.volume)):
                used_by_project = usage[service]
                if used_by_project is None:
                    continue        # this service's usage never read yet
                used = used_by_project.get(pid, {})  # type: ignore[union-attr]
                for r in names:
                    if r not in lims:
                        continue
                    n = lim.key_pairs_in_use if (service, r) == ("compute", "key_pairs") else used.get(r, 0)
                    out.append(QuotaUsage(name, dept, pid, service, r, lims[r], n))
        return tuple(out)
