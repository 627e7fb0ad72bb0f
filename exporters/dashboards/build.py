"""Regenerate the Grafana dashboards (JSON, schemaVersion 39) from the panel lists below.

    python exporters/dashboards/build.py      # rewrites capacity.json, departments.json, sla.json

Every expression is run against a real Prometheus scraping the exporter in
tests/exporters/test_dashboards.py (it must parse and return at least one series).
"""
from __future__ import annotations

import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
OP = 'operator=~"$operator"'
OPD = 'operator=~"$operator",department=~"$department"'


def var(name: str, query: str) -> dict:
    return {"name": name, "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
            "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}


def panel(pid: int, title: str, exprs: list[tuple[str, str]], unit: str = "short", kind: str = "timeseries",
          x: int = 0, y: int = 0, w: int = 12, h: int = 8, description: str = "") -> dict:
    return {
        "id": pid, "type": kind, "title": title, "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": lf,
                     "datasource": {"type": "prometheus", "uid": "${datasource}"}} for i, (e, lf) in enumerate(exprs)],
    }


def dashboard(uid: str, title: str, panels: list[dict], variables: list[dict]) -> dict:
    ds = {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus",
          "current": {"text": "Prometheus", "value": "prometheus"}}
    return {"uid": uid, "title": title, "tags": ["yunshang"], "timezone": "browser", "schemaVersion": 39,
            "version": 1, "editable": True, "refresh": "1m", "time": {"from": "now-24h", "to": "now"},
            "templating": {"list": [ds] + variables}, "panels": panels, "annotations": {"list": []}}


def layout(panels_spec: list[tuple]) -> list[dict]:
    out = []
    for i, spec in enumerate(panels_spec):
        title, exprs, unit, *rest = spec
        kind = rest[0] if rest else "timeseries"
        out.append(panel(i + 1, title, exprs, unit, kind, x=(i % 2) * 12, y=(i // 2) * 8))
    return out


CAPACITY = layout([
    ("Operator up", [(f"yunshang_operator_up{{{OP}}}", "{{operator}}")], "short", "stat"),
    ("Seconds since last successful refresh",
     [(f"time() - yunshang_last_refresh_timestamp_seconds{{{OP}}}", "{{operator}}")], "s", "stat"),
    ("vCPU allocated / free (Placement)", [(f"yunshang_zone_vcpus_allocated{{{OP}}}", "{{operator}}/{{zone}} allocated"),
                                           (f"yunshang_zone_vcpus_free{{{OP}}}", "{{operator}}/{{zone}} free")], "short"),
    ("Memory allocated / free", [(f"yunshang_zone_memory_allocated_bytes{{{OP}}}", "{{operator}}/{{zone}} allocated"),
                                 (f"yunshang_zone_memory_free_bytes{{{OP}}}", "{{operator}}/{{zone}} free")], "bytes"),
    ("Disk allocated / free", [(f"yunshang_zone_disk_allocated_bytes{{{OP}}}", "{{operator}}/{{zone}} allocated"),
                               (f"yunshang_zone_disk_free_bytes{{{OP}}}", "{{operator}}/{{zone}} free")], "bytes"),
    ("Headroom vs catalog policy (tightest resource)",
     [(f"zone:yunshang_zone_headroom_ratio:min{{{OP}}}", "{{operator}}/{{zone}}")], "percentunit"),
    ("Headroom per resource", [(f"yunshang_zone_headroom_ratio{{{OP}}}", "{{operator}}/{{zone}} {{resource}}")], "percentunit"),
    ("Headroom forecast in 7 days (linear, last 6h)",
     [(f"predict_linear(yunshang_zone_headroom_ratio{{{OP}}}[6h], 7 * 86400)", "{{operator}}/{{zone}} {{resource}}")],
     "percentunit"),
    ("vCPU allocation ratio (overcommit)", [(f"yunshang_zone_vcpu_allocation_ratio{{{OP}}}", "{{operator}}/{{zone}}")], "short"),
    ("Instances", [(f"yunshang_zone_instances{{{OP}}}", "{{operator}}/{{zone}}")], "short"),
    ("Refresh duration", [(f"yunshang_collection_duration_seconds{{{OP}}}", "{{operator}}")], "s"),
    ("Refresh errors / s", [(f"rate(yunshang_collection_errors_total{{{OP}}}[$__rate_interval])", "{{operator}}")], "short"),
])

DEPARTMENTS = layout([
    ("Fullest quota per department", [(f"department:yunshang_quota_used_ratio:max{{{OPD}}}",
                                       "{{department}} on {{operator}}")], "percentunit"),
    ("Top 10 quotas by use", [(f"topk(10, yunshang_quota_used_ratio{{{OPD}}})",
                               "{{department}} {{service}}/{{resource}} on {{operator}}")], "percentunit", "table"),
    ("Cores in use / limit", [(f'yunshang_quota_in_use{{{OPD},resource="cores"}}', "{{department}} on {{operator}} used"),
                              (f'yunshang_quota_limit{{{OPD},resource="cores"}}', "{{department}} on {{operator}} limit")],
     "short"),
    ("RAM in use / limit", [(f'yunshang_quota_in_use{{{OPD},resource="ram_bytes"}}', "{{department}} on {{operator}} used"),
                            (f'yunshang_quota_limit{{{OPD},resource="ram_bytes"}}', "{{department}} on {{operator}} limit")],
     "bytes"),
    ("Instances in use", [(f'yunshang_quota_in_use{{{OPD},resource="instances"}}', "{{department}} on {{operator}}")], "short"),
    ("Network quotas used", [(f'yunshang_quota_used_ratio{{{OPD},service="network"}}',
                              "{{department}} {{resource}} on {{operator}}")], "percentunit"),
    ("Monthly cost of current resources vs ceiling",
     [(f"yunshang_tenant_monthly_cost_cny{{{OPD}}}", "{{department}} {{contract}} cost"),
      (f"yunshang_contract_ceiling_cny{{{OPD}}}", "{{department}} {{contract}} ceiling")], "currencyCNY"),
    ("Share of contract ceiling", [(f"yunshang_contract_ceiling_used_ratio{{{OPD}}}", "{{department}} {{contract}}")],
     "percentunit"),
    ("Monthly cost per operator", [(f"operator:yunshang_tenant_monthly_cost_cny:sum{{{OP}}}", "{{operator}}")], "currencyCNY"),
])

SLA = layout([
    ("Availability this month (maintenance excluded)",
     [(f"yunshang_sla_availability_ratio{{{OPD}}}", "{{department}} {{contract}}")], "percentunit", "table"),
    ("Error budget remaining", [(f"yunshang_sla_error_budget_remaining_ratio{{{OPD}}}", "{{department}} {{contract}}")],
     "percentunit"),
    ("SLA target", [(f"yunshang_sla_target_ratio{{{OPD}}}", "{{department}} {{contract}}")], "percentunit", "table"),
    ("Burn rate 1h / 5m (page above 14.4)",
     [(f"contract:yunshang_sla_burn_rate:rate1h{{{OPD}}}", "{{department}} {{contract}} 1h"),
      (f"contract:yunshang_sla_burn_rate:rate5m{{{OPD}}}", "{{department}} {{contract}} 5m")], "short"),
    ("Burn rate 6h / 30m (ticket above 6)",
     [(f"contract:yunshang_sla_burn_rate:rate6h{{{OPD}}}", "{{department}} {{contract}} 6h"),
      (f"contract:yunshang_sla_burn_rate:rate30m{{{OPD}}}", "{{department}} {{contract}} 30m")], "short"),
    ("Probe success", [(f"yunshang_probe_success{{{OP}}}", "{{operator}} {{department}} {{probe}}")], "short"),
    ("Probe duration", [(f"yunshang_probe_duration_seconds{{{OP}}}", "{{operator}} {{department}} {{probe}}")], "s"),
    ("Failed probes / s", [(f"sum by (operator, department, contract) "
                            f"(rate(yunshang_sla_probe_failures_total{{{OPD}}}[$__rate_interval]))",
                            "{{department}} {{contract}}")], "short"),
    ("Service credit owed (share of bill)", [(f"yunshang_sla_service_credit_ratio{{{OPD}}}", "{{department}} {{contract}}")],
     "percentunit"),
    ("SLA breached this month", [(f"yunshang_sla_breached{{{OPD}}}", "{{department}} {{contract}}")], "short", "stat"),
    ("Declared maintenance this month", [(f"yunshang_maintenance_month_seconds{{{OP}}}", "{{operator}}")], "s", "stat"),
    ("Maintenance open now", [(f"yunshang_maintenance_active{{{OP}}}", "{{operator}}")], "short", "stat"),
])

OPV = var("operator", "label_values(yunshang_operator_up, operator)")
DEPV = var("department", "label_values(yunshang_quota_in_use, department)")
DEPV_SLA = var("department", "label_values(yunshang_sla_target_ratio, department)")

DASHBOARDS = {
    "capacity.json": dashboard("yunshang-capacity", "yunshang: capacity per operator and zone", CAPACITY, [OPV]),
    "departments.json": dashboard("yunshang-departments", "yunshang: departments (quota, spend)", DEPARTMENTS, [OPV, DEPV]),
    "sla.json": dashboard("yunshang-sla", "yunshang: SLA per contract", SLA, [OPV, DEPV_SLA]),
}

if __name__ == "__main__":
    for name, d in DASHBOARDS.items():
        (HERE / name).write_text(json.dumps(d, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {HERE / name}: {len(d['panels'])} panels")
