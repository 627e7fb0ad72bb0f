"""Custom collectors: each takes its data source in its constructor and turns core records into
metric families at render time. No collector does I/O; the service renders them after every
background refresh and serves the bytes from memory.

Conventions: ``yunshang_<noun>_<unit>``; base units (bytes, seconds, ratios 0-1); counters end in
``_total``; labels ``operator``, ``zone``, ``department``, ``contract`` (plus ``resource``,
``service``, ``probe``, ``kind`` where named). Series that describe a zone, a department or a
contract also carry ``site`` and ``tier`` (the zone's site; the department's, for its quotas,
spend, contracts and probes; "" where the catalog does not know it), so recording rules can roll
them up the site tree (exporters/rules/yunshang-sites.rules.yml). Nothing secret is ever a label
value: probe URLs and error texts stay out of the exposition.
"""
from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from typing import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from yunshang import headroom as hr
from yunshang import sla
from yunshang.model import TIERS, Catalog, Contract, Department
from yunshang.sites import SiteTree

from exporters.probes import ProbeTarget
from exporters.state import API_BUCKETS_SECONDS, ExporterState
from exporters.store import ProbeStore

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# Placement resource class -> (metric stem, unit suffix, short resource label)
_RC = {
    "VCPU": ("yunshang_zone_vcpus", "", "vcpu"),
    "MEMORY_MB": ("yunshang_zone_memory", "_bytes", "memory"),
    "DISK_GB": ("yunshang_zone_disk", "_bytes", "disk"),
}


def _providers(catalog: Catalog | None) -> dict:
    return {p.name: p for p in catalog.providers} if catalog else {}


class _Sites:
    """(site, tier) label values of zones and departments from the catalog ("", "" when unknown)."""

    def __init__(self, catalog: Catalog | None):
        self.zones: dict[tuple[str, str], tuple[str, str]] = {}
        self.departments: dict[str, tuple[str, str]] = {}
        if catalog is None:
            return
        tree = SiteTree(catalog.sites)
        for p in catalog.providers:
            for z in p.zones:
                self.zones[(p.name, z.name)] = (tree.resolve(z.site), tree.tier(z.site))
        for d in catalog.departments:
            self.departments[d.name] = (tree.resolve(d.site), tree.tier(d.site))

    def zone(self, operator: str, zone: str) -> list[str]:
        return list(self.zones.get((operator, zone), ("", "")))

    def department(self, name: str) -> list[str]:
        return list(self.departments.get(name, ("", "")))


class CapacityCollector(Collector):
    """Capacity per operator and zone from each operator's Placement, and headroom against the
    catalog's overcommit policy (catalog zone size x overcommit - allocated).

    Sample exposition::

        # HELP yunshang_zone_vcpus Placement VCPU inventory total, summed over the zone's compute nodes.
        # TYPE yunshang_zone_vcpus gauge
        yunshang_zone_vcpus{operator="telecom",site="yiyang",tier="city",zone="az1"} 64.0
        yunshang_zone_vcpus_reserved{operator="telecom",site="yiyang",tier="city",zone="az1"} 0.0
        yunshang_zone_vcpus_allocated{operator="telecom",site="yiyang",tier="city",zone="az1"} 6.0
        yunshang_zone_vcpus_free{operator="telecom",site="yiyang",tier="city",zone="az1"} 1018.0
        yunshang_zone_vcpu_allocation_ratio{operator="telecom",site="yiyang",tier="city",zone="az1"} 16.0
        yunshang_zone_vcpus_headroom{operator="telecom",site="yiyang",tier="city",zone="az1"} 506.0
        yunshang_zone_memory_bytes{operator="telecom",site="yiyang",tier="city",zone="az1"} 6.8719476736e+10
        yunshang_zone_memory_allocated_bytes{operator="telecom",site="yiyang",tier="city",zone="az1"} 1.610612736e+09
        yunshang_zone_disk_free_bytes{operator="telecom",site="yiyang",tier="city",zone="az1"} 1.0995116277760e+12
        yunshang_zone_headroom_ratio{operator="telecom",resource="vcpu",site="yiyang",tier="city",zone="az1"} 0.9883
        yunshang_zone_instances{operator="telecom",site="yiyang",tier="city",zone="az1"} 3.0
    """

    def __init__(self, state: ExporterState, catalog: Catalog | None = None):
        self.state = state
        self.catalog = catalog

    def collect(self):
        L = ["operator", "zone", "site", "tier"]
        fam: dict[str, GaugeMetricFamily] = {}

        def g(name, doc, labels=L):
            if name not in fam:
                fam[name] = GaugeMetricFamily(name, doc, labels=labels)
            return fam[name]

        for rc, (stem, unit, short) in _RC.items():   # fixed family order, even when empty
            what = {"VCPU": "VCPU", "MEMORY_MB": "memory", "DISK_GB": "disk"}[rc]
            g(f"{stem}{unit}", f"Placement {what} inventory total, summed over the zone's compute nodes.")
            g(f"{stem}_reserved{unit}", f"Placement {what} reserved for the host.")
            g(f"{stem}_allocated{unit}", f"Placement {what} allocated to consumers (servers).")
            g(f"{stem}_free{unit}", f"Placement {what} still schedulable: (total - reserved) x allocation ratio - allocated.")
            g(f"yunshang_zone_{'vcpu' if rc == 'VCPU' else short}_allocation_ratio",
              f"Placement {what} allocation ratio (overcommit) of the zone's inventories.")
            g(f"{stem}_headroom{unit}", f"{what} the catalog's policy still allows: catalog size x overcommit - allocated.")
        ratio = g("yunshang_zone_headroom_ratio", "Headroom / catalog capacity per resource (negative: past policy).",
                  ["operator", "zone", "site", "tier", "resource"])
        inst = g("yunshang_zone_instances", "Servers in the zone (any state).")
        providers = _providers(self.catalog)
        sites = _Sites(self.catalog)
        for op, snap in sorted(self.state.snapshots().items()):
            acc: dict[tuple[str, str], list[float]] = {}
            for z in snap.zones:
                if z.resource_class not in _RC:
                    continue
                a = acc.setdefault((z.zone, z.resource_class), [0, 0, 0, 0.0, 0.0])
                a[0] += z.total
                a[1] += z.reserved
                a[2] += z.used
                a[3] += z.capacity
                a[4] = max(a[4], z.allocation_ratio)
            for (zone, rc), (total, reserved, used, capacity, alloc) in sorted(acc.items()):
                stem, unit, short = _RC[rc]
                b = functools.partial(hr.to_base_units, rc)
                lv = [op, zone] + sites.zone(op, zone)
                fam[f"{stem}{unit}"].add_metric(lv, b(total))
                fam[f"{stem}_reserved{unit}"].add_metric(lv, b(reserved))
                fam[f"{stem}_allocated{unit}"].add_metric(lv, b(used))
                fam[f"{stem}_free{unit}"].add_metric(lv, b(capacity - used))
                fam[f"yunshang_zone_{'vcpu' if rc == 'VCPU' else short}_allocation_ratio"].add_metric(lv, alloc)
                prov = providers.get(op)
                try:
                    czone = prov.zone(zone) if prov else None
                except KeyError:
                    czone = None
                if czone is not None:
                    fam[f"{stem}_headroom{unit}"].add_metric(lv, b(hr.headroom(czone, rc, used)))
                    ratio.add_metric(lv + [short], hr.headroom_ratio(czone, rc, used))
            for zone, n in sorted(snap.instances):
                inst.add_metric([op, zone] + sites.zone(op, zone), n)
        yield from fam.values()


# quota resources with a unit: OpenStack name -> (exported resource name, multiplier to base unit)
_QUOTA_UNITS = {
    ("compute", "ram"): ("ram_bytes", 1024 ** 2),
    ("volume", "gigabytes"): ("volume_bytes", 1024 ** 3),
    ("volume", "backup_gigabytes"): ("backup_bytes", 1024 ** 3),
}


class QuotaCollector(Collector):
    """Quota limit and usage per department and operator (compute, network, volume).

    Resources with a size are converted to bytes and renamed (``ram`` -> ``ram_bytes``,
    ``gigabytes`` -> ``volume_bytes``); counts keep OpenStack's names. An unlimited quota (-1)
    has no ``yunshang_quota_limit`` sample and a used ratio of 0.

    Sample exposition::

        # HELP yunshang_quota_limit Quota limit of the department's project (bytes for *_bytes resources, else a count).
        # TYPE yunshang_quota_limit gauge
        yunshang_quota_limit{department="health",operator="telecom",resource="cores",service="compute",site="yiyang",tier="city"} 20.0
        yunshang_quota_in_use{department="health",operator="telecom",resource="cores",service="compute",site="yiyang",tier="city"} 2.0
        yunshang_quota_used_ratio{department="health",operator="telecom",resource="cores",service="compute",site="yiyang",tier="city"} 0.1
        yunshang_quota_in_use{department="health",operator="telecom",resource="ram_bytes",service="compute",site="yiyang",tier="city"} 1.073741824e+09
    """  # noqa: E501 (exposition lines do not wrap)

    def __init__(self, state: ExporterState, catalog: Catalog | None = None):
        self.state = state
        self.catalog = catalog

    def collect(self):
        L = ["operator", "department", "service", "resource", "site", "tier"]
        sites = _Sites(self.catalog)
        limit = GaugeMetricFamily("yunshang_quota_limit",
                                  "Quota limit of the department's project (bytes for *_bytes resources, else a count).",
                                  labels=L)
        used = GaugeMetricFamily("yunshang_quota_in_use", "Quota usage of the department's project (same units as the limit).",
                                 labels=L)
        ratio = GaugeMetricFamily("yunshang_quota_used_ratio", "in_use / limit (0 for unlimited quotas).", labels=L)
        for op, snap in sorted(self.state.snapshots().items()):
            for q in snap.quotas:
                name, mult = _QUOTA_UNITS.get((q.service, q.resource), (q.resource, 1))
                lv = [op, q.department, q.service, name] + sites.department(q.department)
                if q.limit >= 0:
                    limit.add_metric(lv, q.limit * mult)
                used.add_metric(lv, q.in_use * mult)
                ratio.add_metric(lv, hr.quota_usage_ratio(q.limit, q.in_use))
        yield from (limit, used, ratio)


def valid_contracts(dept: Department, operator: str, today: dt.date) -> list[Contract]:
    """The department's contracts with ``operator`` valid today, primary first."""
    cs = [c for c in dept.contracts if c.provider == operator and c.valid_on(today)]
    return sorted(cs, key=lambda c: (c.role != "primary", c.id))


class SpendCollector(Collector):
    """What each tenant's current resources cost per month (``Prices.monthly_cny`` over cores, RAM,
    volume GB and floating IPs in use) against the contract's monthly ceiling.

    Sample exposition::

        # HELP yunshang_tenant_monthly_cost_cny Monthly price of the resources the department's project uses now.
        # TYPE yunshang_tenant_monthly_cost_cny gauge
        yunshang_tenant_monthly_cost_cny{contract="HEALTH-TEL-2026",department="health",operator="telecom",site="yiyang",tier="city"} 420.0
        yunshang_contract_ceiling_cny{contract="HEALTH-TEL-2026",department="health",operator="telecom",site="yiyang",tier="city"} 50000.0
        yunshang_contract_ceiling_used_ratio{contract="HEALTH-TEL-2026",department="health",operator="telecom",site="yiyang",tier="city"} 0.0084
    """  # noqa: E501 (exposition lines do not wrap)

    def __init__(self, state: ExporterState, catalog: Catalog, clock: Clock = utc_now):
        self.state = state
        self.catalog = catalog
        self.clock = clock

    def collect(self):
        L = ["operator", "department", "contract", "site", "tier"]
        sites = _Sites(self.catalog)
        cost = GaugeMetricFamily("yunshang_tenant_monthly_cost_cny",
                                 "Monthly price of the resources the department's project uses now.", labels=L)
        ceiling = GaugeMetricFamily("yunshang_contract_ceiling_cny", "The contract's monthly spending ceiling.", labels=L)
        ratio = GaugeMetricFamily("yunshang_contract_ceiling_used_ratio",
                                  "Tenant monthly cost / contract ceiling.", labels=L)
        today = self.clock().date()
        snaps = self.state.snapshots()
        for op in sorted(self.state.operators):
            try:
                prov = self.catalog.provider(op)
            except KeyError:
                continue
            snap = snaps.get(op)
            by_dept = defaultdict(list)
            if snap is not None:
                for q in snap.quotas:
                    by_dept[q.department].append(q)
            for dept in self.catalog.departments:
                contracts = valid_contracts(dept, op, today)
                if not contracts:
                    continue
                where = sites.department(dept.name)
                for c in contracts:
                    ceiling.add_metric([op, dept.name, c.id] + where, c.ceiling_cny_per_month)
                if dept.name in by_dept:
                    c = contracts[0]   # the tenant's resources count against the primary (first valid) contract
                    value = hr.tenant_monthly_cost_cny(prov.prices, by_dept[dept.name])
                    cost.add_metric([op, dept.name, c.id] + where, value)
                    ratio.add_metric([op, dept.name, c.id] + where, hr.ceiling_used_ratio(value, c.ceiling_cny_per_month))
        yield from (cost, ceiling, ratio)


class SlaCollector(Collector):
    """Synthetic probes and SLA per contract over the current calendar month, maintenance excluded.

    A contract's month counts the probes of its operator's API endpoints (Keystone catalog) and
    the department's published services assigned to it (catalog ``probes:``). Counters are the
    month's tallies (persisted; they restart at 0 when a month begins, which ``rate()`` treats as
    a counter reset), so burn rates come from ``rate(yunshang_sla_probe_failures_total[1h]) /
    rate(yunshang_sla_probe_samples_total[1h])`` in Prometheus (see exporters/rules/).

    Sample exposition::

        # HELP yunshang_probe_success 1 if the last probe of the target succeeded.
        # TYPE yunshang_probe_success gauge
        yunshang_probe_success{contract="",department="",kind="http",operator="telecom",probe="api-compute",site="",tier=""} 1.0
        yunshang_probe_success{contract="HEALTH-TEL-2026",department="health",kind="tcp",operator="telecom",probe="portal",site="yiyang",tier="city"} 1.0
        yunshang_probe_samples_total{contract="",department="",kind="http",operator="telecom",probe="api-compute",site="",tier=""} 412.0
        yunshang_sla_probe_samples_total{contract="HEALTH-TEL-2026",department="health",operator="telecom",site="yiyang",tier="city"} 2884.0
        yunshang_sla_probe_failures_total{contract="HEALTH-TEL-2026",department="health",operator="telecom",site="yiyang",tier="city"} 3.0
        yunshang_sla_availability_ratio{contract="HEALTH-TEL-2026",department="health",operator="telecom",site="yiyang",tier="city"} 0.99896
        yunshang_sla_target_ratio{contract="HEALTH-TEL-2026",department="health",operator="telecom",site="yiyang",tier="city"} 0.9995
        yunshang_sla_error_budget_remaining_ratio{contract="HEALTH-TEL-2026",department="health",operator="telecom",site="yiyang",tier="city"} -1.08
        yunshang_sla_service_credit_ratio{contract="HEALTH-TEL-2026",department="health",operator="telecom",site="yiyang",tier="city"} 0.1
        yunshang_sla_breached{contract="HEALTH-TEL-2026",department="health",operator="telecom",site="yiyang",tier="city"} 1.0
        yunshang_maintenance_month_seconds{operator="telecom"} 7200.0
        yunshang_maintenance_active{operator="telecom"} 0.0
    """  # noqa: E501 (exposition lines do not wrap)

    def __init__(self, state: ExporterState, store: ProbeStore, targets: Callable[[], Iterable[ProbeTarget]],
                 catalog: Catalog, clock: Clock = utc_now):
        self.state = state
        self.store = store
        self.targets = targets
        self.catalog = catalog
        self.clock = clock

    def collect(self):
        now = self.clock()
        PL = ["operator", "department", "contract", "probe", "kind", "site", "tier"]
        sites = _Sites(self.catalog)
        success = GaugeMetricFamily("yunshang_probe_success", "1 if the last probe of the target succeeded.", labels=PL)
        dur = GaugeMetricFamily("yunshang_probe_duration_seconds", "Duration of the last probe.", labels=PL)
        samples = CounterMetricFamily("yunshang_probe_samples",
                                      "Probe samples counted this calendar month (maintenance excluded).", labels=PL)
        fails = CounterMetricFamily("yunshang_probe_failures",
                                    "Failed probe samples counted this calendar month (maintenance excluded).", labels=PL)
        maint = CounterMetricFamily("yunshang_probe_maintenance_samples",
                                    "Probe samples taken inside declared maintenance this month (not counted).", labels=PL)
        CL = ["operator", "department", "contract", "site", "tier"]
        c_samples = CounterMetricFamily("yunshang_sla_probe_samples", "Probe samples counted for the contract this month.",
                                        labels=CL)
        c_fails = CounterMetricFamily("yunshang_sla_probe_failures", "Failed probe samples counted for the contract this month.",
                                      labels=CL)
        avail = GaugeMetricFamily("yunshang_sla_availability_ratio",
                                  "Availability this calendar month, declared maintenance excluded.", labels=CL)
        target = GaugeMetricFamily("yunshang_sla_target_ratio", "The SLA availability target of the contract's operator.",
                                   labels=CL)
        budget = GaugeMetricFamily("yunshang_sla_error_budget_remaining_ratio",
                                   "Share of this month's error budget left (negative: overspent).", labels=CL)
        credit = GaugeMetricFamily("yunshang_sla_service_credit_ratio",
                                   "Service credit owed at the current availability (share of the monthly bill).", labels=CL)
        breached = GaugeMetricFamily("yunshang_sla_breached", "1 if this month's availability is below target.", labels=CL)
        mmonth = GaugeMetricFamily("yunshang_maintenance_month_seconds",
                                   "Declared maintenance of the operator inside the current calendar month.", labels=["operator"])
        mactive = GaugeMetricFamily("yunshang_maintenance_active", "1 while a declared maintenance window is open.",
                                    labels=["operator"])

        results = self.state.probes()
        api_tally: dict[str, sla.ProbeTally] = defaultdict(sla.ProbeTally)
        contract_tally: dict[tuple[str, str, str], sla.ProbeTally] = defaultdict(sla.ProbeTally)
        for t in self.targets():
            lv = [t.operator, t.department, t.contract, t.name, t.kind] + sites.department(t.department)
            tally = self.store.tally(t.key, now)
            r = results.get(t.key)
            if r is not None:
                success.add_metric(lv, 1.0 if r.ok else 0.0)
                dur.add_metric(lv, r.duration_seconds)
            samples.add_metric(lv, tally.counted)
            fails.add_metric(lv, tally.bad)
            maint.add_metric(lv, tally.excluded)
            if t.department:
                key = (t.operator, t.department, t.contract)
                contract_tally[key] = contract_tally[key].merged(tally)
            else:
                api_tally[t.operator] = api_tally[t.operator].merged(tally)

        today = now.date()
        for op in sorted(self.state.operators):
            try:
                prov = self.catalog.provider(op)
            except KeyError:
                continue
            mmonth.add_metric([op], sla.maintenance_seconds_in_month(prov.maintenance, now))
            mactive.add_metric([op], 1.0 if sla.in_maintenance(now, prov.maintenance) else 0.0)
            for dept in self.catalog.departments:
                for c in valid_contracts(dept, op, today):
                    tally = api_tally[op].merged(contract_tally[(op, dept.name, c.id)])
                    lv = [op, dept.name, c.id] + sites.department(dept.name)
                    c_samples.add_metric(lv, tally.counted)
                    c_fails.add_metric(lv, tally.bad)
                    target.add_metric(lv, prov.sla.availability)
                    if tally.counted == 0:
                        continue      # no probe data this month: no availability (absent, like the bill's null)
                    a = sla.availability_ratio(tally)
                    avail.add_metric(lv, a)
                    budget.add_metric(lv, sla.error_budget_remaining_ratio(a, prov.sla.availability))
                    credit.add_metric(lv, sla.service_credit_ratio(a, c.sla_credits))
                    breached.add_metric(lv, 1.0 if sla.sla_breached(a, prov.sla.availability) else 0.0)
        yield from (success, dur, samples, fails, maint, c_samples, c_fails, avail, target, budget, credit,
                    breached, mmonth, mactive)


class SiteCollector(Collector):
    """The catalog's site tree (sites.yaml; one implicit root without it), for the roll-up rules.

    ``yunshang_site_path`` has one series per site whose ``province``/``city``/``county``/
    ``township`` labels name the site's ancestor (or itself) at that tier ("" where the chain
    skips the tier): recording rules join on ``site`` and sum by a tier label to roll a figure up
    the tree. Sample exposition::

        # HELP yunshang_site_info The site's place in the tree (1 per site).
        # TYPE yunshang_site_info gauge
        yunshang_site_info{parent="yiyang",site="taojiang",tier="county"} 1.0
        yunshang_site_path{city="yiyang",county="taojiang",province="",site="fuqiushan",tier="township",township="fuqiushan"} 1.0
        yunshang_site_budget_cny{site="taojiang",tier="county"} 60000.0
    """

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def collect(self):
        tree = SiteTree(self.catalog.sites)
        info = GaugeMetricFamily("yunshang_site_info", "The site's place in the tree (1 per site).",
                                 labels=["site", "tier", "parent"])
        path = GaugeMetricFamily("yunshang_site_path", "The site's ancestor (or itself) at each tier (1 per site).",
                                 labels=["site", "tier", *TIERS])
        budget = GaugeMetricFamily("yunshang_site_budget_cny",
                                   "Monthly budget of the site and the sites below it (sites.yaml).",
                                   labels=["site", "tier"])
        for s in tree.ordered():
            info.add_metric([s.name, s.tier, s.parent], 1.0)
            at = {tree.tier(n): n for n in tree.chain(s.name)}
            path.add_metric([s.name, s.tier, *(at.get(t, "") for t in TIERS)], 1.0)
            if s.budget_cny_per_month is not None:
                budget.add_metric([s.name, s.tier], s.budget_cny_per_month)
        yield from (info, path, budget)


class SelfCollector(Collector):
    """The exporter reporting on itself, per operator.

    Sample exposition::

        # HELP yunshang_operator_up 1 if the last refresh of the operator's APIs succeeded, else 0.
        # TYPE yunshang_operator_up gauge
        yunshang_operator_up{operator="telecom"} 1.0
        yunshang_operator_up{operator="unicom"} 0.0
        yunshang_collection_duration_seconds{operator="telecom"} 0.41
        yunshang_last_refresh_timestamp_seconds{operator="telecom"} 1.7981424e+09
        yunshang_collection_errors_total{operator="unicom"} 3.0
        yunshang_collections_total{operator="unicom"} 7.0
        yunshang_family_up{family="volume_usage",operator="telecom"} 0.0
        yunshang_family_last_refresh_timestamp_seconds{family="volume_usage",operator="telecom"} 1.7981421e+09
        yunshang_openstack_api_calls_total{operator="telecom",service="compute"} 412.0
        yunshang_openstack_api_errors_total{operator="telecom",service="volume"} 6.0
        yunshang_openstack_api_call_duration_seconds_bucket{le="0.05",operator="telecom",service="compute"} 380.0

    ``yunshang_operator_up`` is 1 when the refresh reached the operator and read at least one family;
    ``yunshang_family_up`` says which families it read (a failed family serves its last good values,
    ``..._last_refresh_timestamp_seconds`` saying how old they are).
    """

    def __init__(self, state: ExporterState):
        self.state = state

    def collect(self):
        L = ["operator"]
        up = GaugeMetricFamily("yunshang_operator_up", "1 if the last refresh of the operator's APIs succeeded, else 0.",
                               labels=L)
        dur = GaugeMetricFamily("yunshang_collection_duration_seconds", "Duration of the operator's last refresh.", labels=L)
        last = GaugeMetricFamily("yunshang_last_refresh_timestamp_seconds",
                                 "Unix time of the operator's last successful refresh.", labels=L)
        errs = CounterMetricFamily("yunshang_collection_errors", "Failed refreshes of the operator since start.", labels=L)
        runs = CounterMetricFamily("yunshang_collections", "Refreshes of the operator since start.", labels=L)
        for op, h in sorted(self.state.health().items()):
            up.add_metric([op], 1.0 if h.up else 0.0)
            dur.add_metric([op], h.last_duration_seconds)
            if h.last_success_unix is not None:
                last.add_metric([op], h.last_success_unix)
            errs.add_metric([op], h.errors_total)
            runs.add_metric([op], h.refreshes_total)
        rerr = CounterMetricFamily("yunshang_exporter_render_errors",
                                   "Renders of /metrics that failed (the previous page was kept).")
        rerr.add_metric([], self.state.render_errors_total)
        yield from (up, dur, last, errs, runs, rerr)
        yield from self._families()
        yield from self._api()

    def _families(self):
        FL = ["operator", "family"]
        fup = GaugeMetricFamily("yunshang_family_up",
                                "1 if the operator's last refresh read this family of facts (capacity, quota_limits, "
                                "compute_usage, network_usage, volume_usage), else 0: its values are then the last good ones.",
                                labels=FL)
        fage = GaugeMetricFamily("yunshang_family_last_refresh_timestamp_seconds",
                                 "Unix time at which the values of this family were read (alert on its age).", labels=FL)
        for op, fams in sorted(self.state.families().items()):
            for f in fams:
                fup.add_metric([op, f.family], 1.0 if f.ok else 0.0)
                if f.read_at is not None:
                    fage.add_metric([op, f.family], f.read_at.timestamp())
        yield from (fup, fage)

    def _api(self):
        AL = ["operator", "service"]
        calls = CounterMetricFamily("yunshang_openstack_api_calls", "HTTP calls the exporter made to OpenStack APIs.",
                                    labels=AL)
        errs = CounterMetricFamily("yunshang_openstack_api_errors",
                                   "OpenStack API calls that failed (connection error or HTTP status >= 400).", labels=AL)
        lat = HistogramMetricFamily("yunshang_openstack_api_call_duration_seconds",
                                    "Latency of the exporter's OpenStack API calls.", labels=AL)
        for (op, svc), st in sorted(self.state.api_stats().items()):
            calls.add_metric([op, svc], st.calls_total)
            errs.add_metric([op, svc], st.errors_total)
            cum, buckets = 0, []
            counts = st.bucket_counts or [0] * (len(API_BUCKETS_SECONDS) + 1)
            for bound, n in zip((*map(str, API_BUCKETS_SECONDS), "+Inf"), counts, strict=True):
                cum += n
                buckets.append((bound, cum))
            lat.add_metric([op, svc], buckets, st.seconds_sum)
        yield from (calls, errs, lat)
