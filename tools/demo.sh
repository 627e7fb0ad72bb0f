#!/usr/bin/env bash
# The main job on a catalog (default: the bundled sample prefecture):
#   validate it, place every department's requests on the operators its contracts allow,
#   stand up a real local OpenStack per operator, read live capacity, take one department's
#   request through its lifecycle (review, approve, configure the tenant, publish), check the
#   tenant for drift and graded-protection compliance, show the Pulumi program's graph for it,
#   scrape the exporter once and print the month's bill.
# Everything it writes goes under out/demo/ (its own lifecycle store and state); the devcloud
# keeps running afterwards (stop it with `make devcloud-down`). Re-running is safe.
set -euo pipefail
CATALOG=${1:-examples/prefecture}
REQUEST=${REQUEST:-examples/requests/health-vaccine.yaml}
OUT=out/demo
Y=.venv/bin/yunshang
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

mkdir -p "$OUT"
rm -f "$OUT"/lifecycle.db*                      # the demo's own scratch store: each run tells the story anew
export YUNSHANG_CATALOG="$CATALOG" YUNSHANG_DB="sqlite:///$PWD/$OUT/lifecycle.db"
export YUNSHANG_STATE_DIR="$PWD/$OUT/state"

step "1. Validate the catalog ($CATALOG)"
$Y catalog validate

step "2. Place every department's requests (contract-aware, cheapest allowed operator first)"
$Y plan --output table

step "2b. A county department's placement: its county's zone or above (residency), its spend under the county's budget"
$Y plan --output table | sed -n '/^== xian-taojiang-health/,/^contracts:/p' | cut -c1-150
$Y plan --output table | sed -n '/^Site budgets/,/^$/p'

step "3. A real local OpenStack per operator on 127.0.0.1 (first run installs and starts it: minutes)"
$Y devcloud up
eval "$($Y devcloud env)"                       # OS_CLIENT_CONFIG_FILE only; never OS_CLOUD
$Y devcloud status
# the center's engineer records the plan (the tenants below are built from it, never re-placed)
$Y plan --save --os-cloud person-center-engineer | tail -2

step "4. Live capacity from each operator's Placement"
$Y capacity show --operator telecom --operator unicom

TENANT_DEPT=${TENANT_DEPT:-justice}; TENANT_OP=${TENANT_OP:-unicom}
step "5. $TENANT_DEPT's tenant on $TENANT_OP from the recorded plan, through the SDK engine: plan, apply, verify, re-apply"
$Y tenant apply "$TENANT_DEPT" --operator "$TENANT_OP" --clouds "$OS_CLIENT_CONFIG_FILE" --dry-run | sed -n '1,25p'
$Y tenant apply "$TENANT_DEPT" --operator "$TENANT_OP" --clouds "$OS_CLIENT_CONFIG_FILE" | tail -5
$Y tenant verify "$TENANT_DEPT" --operator "$TENANT_OP" --clouds "$OS_CLIENT_CONFIG_FILE"
$Y tenant apply "$TENANT_DEPT" --operator "$TENANT_OP" --clouds "$OS_CLIENT_CONFIG_FILE" | tail -3

DEPT=$(sed -n 's/^department: *//p' "$REQUEST")
step "6. A new request from $DEPT through its lifecycle ($REQUEST), each step by a person of the center's Keystone"
P=person-                                       # clouds.yaml entries the devcloud wrote (people.yaml)
$Y request submit "$REQUEST" --os-cloud "${P}$DEPT-it"
$Y request endorse 1 --os-cloud "${P}$DEPT-head"
$Y request review 1 --clouds "$OS_CLIENT_CONFIG_FILE" --live --os-cloud "${P}center-reviewer"
$Y request approve 1 --os-cloud "${P}center-approver-1" --reason "within contract ceilings; capacity available"
$Y request show 1 --os-cloud "${P}center-engineer" | head -1 | grep -q first-approved &&
  $Y request approve 1 --os-cloud "${P}center-approver-2" --reason "second approval (above the cost threshold)"
$Y request configure 1 --engine sdk --clouds "$OS_CLIENT_CONFIG_FILE" --os-cloud "${P}center-engineer" | tail -8
$Y request publish 1 --os-cloud "${P}center-engineer"
$Y request log --os-cloud "${P}center-auditor"

step "7. Graded-protection (MLPS) checks of the live tenants (evidence in $OUT/compliance.json)"
$Y compliance check --department "$TENANT_DEPT" --department "$DEPT" --operator telecom --operator unicom \
   --out "$OUT/compliance.json"

step "8. The Pulumi program's resource graph for $TENANT_DEPT (declared under Pulumi's mocks, not a preview)"
$Y stack graph "$TENANT_DEPT" | cut -c1-160 | sed -n '1,30p'

step "9. One exporter collection (what Prometheus would scrape), checked by promtool"
$Y exporter dump --operator telecom --operator unicom > "$OUT/metrics.prom"
grep -E '^yunshang_(operator_up|zone_capacity_free|quota_in_use)' "$OUT/metrics.prom" | sed -n '1,20p'
if command -v promtool >/dev/null; then promtool check metrics < "$OUT/metrics.prom" && echo "promtool: clean"; fi

step "10. This month's bill for $DEPT, to date and projected (HTML statement: $OUT/bill-$DEPT.html)"
MONTH=$(date -u +%Y-%m)
$Y bill --month "$MONTH" --department "$DEPT" --os-cloud "${P}$DEPT-head"                 # to date: what was held up to now
$Y bill --month "$MONTH" --department "$DEPT" --projected --os-cloud "${P}$DEPT-head" | sed -n '1,6p'   # the forecast to month end
$Y bill --month "$MONTH" --department "$DEPT" --os-cloud "${P}$DEPT-head" --output html --out "$OUT/bill-$DEPT.html"

step "11. The month's report per site and tier, rolled up the tree (HTML with charts: $OUT/report.html)"
$Y report --month "$(date +%Y-%m)" --os-cloud "${P}center-auditor" | cut -c1-200
$Y report --month "$(date +%Y-%m)" --os-cloud "${P}center-auditor" --output html --out "$OUT/report.html"

printf '\nDone. The devcloud is still running: `eval "$(%s devcloud env)"` to use it, `make devcloud-down` to stop it.\n' "$Y"
