"""Read live capacity, usage and department quotas from each operator's cloud.

Per operator, in order:
  1. Nova: aggregates (list) -> host -> availability zone; hypervisors (list) ->
     compute node name -> host.
  2. Placement: resource providers (list); for each compute node provider its
     inventories and usages. Placement has no call returning inventories or usages
     of all providers at once, so these two are per provider (2 calls per node).
  3. Instances per zone: the hypervisors' ``running_vms`` (compute API 2.1, the same
     list call as in 1), summed per zone. Not a list of all servers: with ~800 servers
     on a loaded 2-core devcloud ``servers/detail?all_tenants`` took 52 s against ~1 s,
     and servers that never reached a host (ERROR) hold no zone capacity anyway.
  4. Keystone: projects tagged ``yunshang`` (one list); per department project the
     compute, network and volume quota limits with usage. Nova and Cinder have no
     list call for quota sets, and Neutron's quota list holds only projects with
     non-default limits and no usage, so these are per project (3 calls each).

``read_operator_snapshot`` never raises: an unreachable or broken operator gives
``ok=False`` with an error text (no secrets), so the other operators still report.
"""
from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import time
from typing import Iterable

from keystoneauth1 import exceptions as ks_exc

from yunshang.capacity import (DEPARTMENT_TAG_PREFIX, PROJECT_TAG, OperatorSnapshot, QuotaUsage, ZoneCapacity)
from yunshang.errors import CloudUnavailable
from yunshang.openstack import CLOUD_ERRORS, connect
from yunshang.redact import exception_text

DEFAULT_ZONE = "nova"          # where nova puts hosts that are in no availability-zone aggregate
MAX_PARALLEL_OPERATORS = 8
PROJECT_READERS = 4            # concurrent per-project quota reads within one operator
COMPUTE_QUOTAS = ("cores", "ram", "instances", "key_pairs", "server_groups")
NETWORK_QUOTAS = ("network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule")
VOLUME_QUOTAS = ("volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes")


class _ApiError(Exception):
    pass


class _Gone(_ApiError):
    """404: the thing vanished between the list and the read (another client deleted it)."""


def _get(adapter, path: str, what: str, **params) -> dict:
    try:
        resp = adapter.get(path, params=params or None, raise_exc=False)
    except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout) as exc:
        raise _ApiError(f"{what}: cannot connect ({type(exc).__name__})") from None
    except ks_exc.EndpointNotFound:
        raise _ApiError(f"{what}: no endpoint in the service catalog") from None
    except CLOUD_ERRORS as exc:
        raise _ApiError(f"{what}: {type(exc).__name__}") from None
    if resp.status_code == 404:
        raise _Gone(f"{what}: HTTP 404")
    if resp.status_code >= 400:
        raise _ApiError(f"{what}: HTTP {resp.status_code}")
    return resp.json()


def _zone_capacity(conn, provider_name: str) -> tuple[tuple[ZoneCapacity, ...], tuple[tuple[str, int], ...]]:
    aggs = _get(conn.compute, "/os-aggregates", "nova aggregates")["aggregates"]
    host_zone: dict[str, str] = {}
    for a in aggs:
        az = (a.get("metadata") or {}).get("availability_zone") or a.get("availability_zone")
        if az:
            for h in a.get("hosts") or []:
                host_zone[h] = az
    hyps = _get(conn.compute, "/os-hypervisors/detail", "nova hypervisors")["hypervisors"]
    node_host = {h["hypervisor_hostname"]: (h.get("service") or {}).get("host", h["hypervisor_hostname"])
                 for h in hyps}
    instances: dict[str, int] = {}
    for h in hyps:
        zone = host_zone.get(node_host[h["hypervisor_hostname"]], DEFAULT_ZONE)
        instances[zone] = instances.get(zone, 0) + int(h.get("running_vms") or 0)
    rps = _get(conn.placement, "/resource_providers", "placement resource providers")["resource_providers"]
    # (zone, rc) -> [total, reserved, weighted capacity, used]
    acc: dict[tuple[str, str], list[float]] = {}
    for rp in rps:
        if rp["name"] not in node_host:
            continue                       # not a compute node (e.g. a sharing provider)
        zone = host_zone.get(node_host[rp["name"]], DEFAULT_ZONE)
        # per provider: Placement has no bulk inventories/usages call
        inv = _get(conn.placement, f"/resource_providers/{rp['uuid']}/inventories",
                   "placement inventories")["inventories"]
        used = _get(conn.placement, f"/resource_providers/{rp['uuid']}/usages", "placement usages")["usages"]
        for rc, i in inv.items():
            a = acc.setdefault((zone, rc), [0, 0, 0.0, 0])
            a[0] += i["total"]
            a[1] += i["reserved"]
            a[2] += (i["total"] - i["reserved"]) * i["allocation_ratio"]
            a[3] += used.get(rc, 0)
    out = []
    for (zone, rc), (total, reserved, cap, used) in sorted(acc.items()):
        usable = total - reserved
        ratio = cap / usable if usable > 0 else 1.0
        out.append(ZoneCapacity(provider=provider_name, zone=zone, resource_class=rc, total=int(total),
                                reserved=int(reserved), allocation_ratio=round(ratio, 6), used=int(used)))
    return tuple(out), tuple(sorted(instances.items()))


def _department_projects(conn, departments: tuple[str, ...] | None) -> list[tuple[str, str]]:
    out = []
    data = _get(conn.identity, "/projects", "keystone projects", tags=PROJECT_TAG)["projects"]
    for p in data:
        dept = next((t[len(DEPARTMENT_TAG_PREFIX):] for t in p.get("tags") or [] if t.startswith(DEPARTMENT_TAG_PREFIX)),
                    None)
        if dept is None or (departments is not None and dept not in departments):
            continue
        out.append((dept, p["id"]))
    return sorted(out)


def _quotas(conn, provider_name: str, departments: tuple[str, ...] | None) -> tuple[QuotaUsage, ...]:
    projects = _department_projects(conn, departments)
    if not projects:
        return ()
    with cf.ThreadPoolExecutor(max_workers=min(PROJECT_READERS, len(projects))) as pool:
        per_project = list(pool.map(lambda dp: _project_quotas_or_none(conn, provider_name, *dp), projects))
    return tuple(q for qs in per_project for q in qs)


def _project_quotas_or_none(conn, provider_name: str, dept: str, pid: str) -> list[QuotaUsage]:
    try:
        return _project_quotas(conn, provider_name, dept, pid)
    except _Gone:
        return []              # project deleted while we read: it has no quotas to report


def _project_quotas(conn, provider_name: str, dept: str, pid: str) -> list[QuotaUsage]:
    out: list[QuotaUsage] = []
    # Per project: nova/cinder have no list call for quota sets; neutron's list lacks usage.
    comp = _get(conn.compute, f"/os-quota-sets/{pid}/detail", "nova quotas")["quota_set"]
    for r in COMPUTE_QUOTAS:
        if isinstance(comp.get(r), dict):
            out.append(QuotaUsage(provider_name, dept, pid, "compute", r, int(comp[r]["limit"]),
                                  int(comp[r]["in_use"])))
    net = _get(conn.network, f"/quotas/{pid}/details", "neutron quotas")["quota"]
    for r in NETWORK_QUOTAS:
        if isinstance(net.get(r), dict):
            out.append(QuotaUsage(provider_name, dept, pid, "network", r, int(net[r]["limit"]),
                                  int(net[r]["used"])))
    vol = _get(conn.block_storage, f"/os-quota-sets/{pid}", "cinder quotas", usage="True")["quota_set"]
    for r in VOLUME_QUOTAS:
        if isinstance(vol.get(r), dict):
            out.append(QuotaUsage(provider_name, dept, pid, "volume", r, int(vol[r]["limit"]),
                                  int(vol[r]["in_use"])))
    return out


def read_operator_snapshot(provider, clouds_file: str | None,
                           departments: tuple[str, ...] | None = None) -> OperatorSnapshot:
    """Everything live about one operator (``provider``: ``yunshang.model.Provider``). Never raises."""
    taken_at = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    step = "connect"
    try:
        conn = connect(provider.cloud, clouds_file)
        step = "capacity"
        zones, instances = _zone_capacity(conn, provider.name)
        step = "quotas"
        quotas = _quotas(conn, provider.name, departments)
        return OperatorSnapshot(provider=provider.name, taken_at=taken_at, duration_seconds=time.monotonic() - t0,
                                ok=True, zones=zones, instances=instances, quotas=quotas)
    except CloudUnavailable as exc:
        error = str(exc)
    except _ApiError as exc:
        error = f"cloud {provider.cloud!r}: {exception_text(exc)}"
    except CLOUD_ERRORS as exc:
        error = f"cloud {provider.cloud!r}: {step}: {type(exc).__name__}: {exception_text(exc, limit=160)}"
    except Exception as exc:  # noqa: BLE001 - a snapshot never raises; the error is reported instead
        error = f"cloud {provider.cloud!r}: {step}: unexpected {type(exc).__name__}"
    return OperatorSnapshot(provider=provider.name, taken_at=taken_at, duration_seconds=time.monotonic() - t0,
                            ok=False, error=error)


def read_all(catalog, clouds_file: str | None, operators: Iterable[str] | None = None,
             departments: tuple[str, ...] | None = None) -> tuple[OperatorSnapshot, ...]:
    """Snapshots of the catalog's operators (all, or those named), read concurrently, in catalog order."""
    wanted = None if operators is None else set(operators)
    providers = [p for p in catalog.providers if wanted is None or p.name in wanted or p.cloud in wanted]
    if not providers:
        return ()
    with cf.ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_OPERATORS, len(providers))) as pool:
        return tuple(pool.map(lambda p: read_operator_snapshot(p, clouds_file, departments), providers))
