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
export YUNSHANG_STATE_DIR="$PWD/$OUT/state" YUNSHANG_ACTOR=demo-engineer

step "1. Validate the catalog ($CATALOG)"
$Y catalog validate

step "2. Place every department's requests (contract-aware, cheapest allowed operator first)"
$Y plan --output table

step "3. A real local OpenStack per operator on 127.0.0.1 (first run installs and starts it: minutes)"
$Y devcloud up
eval "$($Y devcloud env)"                       # OS_CLIENT_CONFIG_FILE only; never OS_CLOUD
$Y devcloud status

step "4. Live capacity from each operator's Placement"
$Y capacity show --operator telecom --operator unicom

DEPT=$(python3 -c "import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))['department'])" "$REQUEST" 2>/dev/null \
       || sed -n 's/^department: *//p' "$REQUEST")
step "5. $DEPT's request through its lifecycle ($REQUEST)"
$Y request submit "$REQUEST" --by "$DEPT-it-contact"
$Y request review 1 --clouds "$OS_CLIENT_CONFIG_FILE"
$Y request approve 1 --by center-director --reason "within contract ceilings; capacity available"
$Y request configure 1 --engine sdk --clouds "$OS_CLIENT_CONFIG_FILE"
$Y request publish 1
$Y request log

step "6. Drift check of $DEPT's tenants against their spec (no drift expected)"
for op in $($Y request show 1 -o json | python3 -c "import json,sys; print(' '.join(sorted({p['provider'] for p in json.load(sys.stdin)['placements']})))"); do
  $Y tenant verify "$DEPT" --operator "$op" --clouds "$OS_CLIENT_CONFIG_FILE" --date "$(date +%F)" || true
done

step "7. Graded-protection (MLPS) checks of $DEPT's live tenants (evidence in $OUT/compliance.json)"
$Y compliance check --department "$DEPT" --operator telecom --operator unicom --out "$OUT/compliance.json" || true

step "8. The Pulumi program's resource graph for $DEPT (declared under Pulumi's mocks, not a preview)"
$Y stack graph "$DEPT" | head -40

step "9. One exporter collection (what Prometheus would scrape), checked by promtool"
$Y exporter dump --operator telecom --operator unicom > "$OUT/metrics.prom"
grep -E '^yunshang_(operator_up|zone_capacity_free|quota_in_use)' "$OUT/metrics.prom" | head -20
if command -v promtool >/dev/null; then promtool check metrics < "$OUT/metrics.prom" && echo "promtool: clean"; fi

step "10. This month's bill for $DEPT (HTML statement: $OUT/bill-$DEPT.html)"
$Y bill --month "$(date +%Y-%m)" --department "$DEPT"
$Y bill --month "$(date +%Y-%m)" --department "$DEPT" --output html --out "$OUT/bill-$DEPT.html"

printf '\nDone. The devcloud is still running: `eval "$(%s devcloud env)"` to use it, `make devcloud-down` to stop it.\n' "$Y"
