#!/usr/bin/env bash
# Every benchmark of bench/README.md, one after another, with the README's own commands: the
# figures of one quiet run. Each script's output goes to $OUT/<name>.txt; the summary lists each
# exit status, and this script exits non-zero if any benchmark failed or measured nothing.
# About 75 minutes on the project's 2-core machine. Usage: bench/all.sh [name ...] (default all)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${OUT:-var/bench/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
AMQP=amqp://guest:guest@127.0.0.1:5672/deadlines
if command -v rabbitmqctl >/dev/null && ! rabbitmqctl list_vhosts 2>/dev/null | grep -qx deadlines; then
  # The RabbitMQ runs use a virtual host of their own, so a purge never touches anyone else's queues.
  rabbitmqctl add_vhost deadlines >/dev/null && rabbitmqctl set_permissions -p deadlines guest '.*' '.*' '.*' >/dev/null
fi

declare -A RUNS=(
  [seed_demo]="$PY bench/seed_demo.py --tickets 100000"
  [admin_pages]="env DEBUG=true DATABASE_URL=postgres://postgres@127.0.0.1:5432/helpdesk_bench $PY bench/admin_pages.py --repeat 3"
  [api]="$PY bench/api.py --seconds 15 --rounds 3 --big 1000000 --requests 200 --database-url postgres://postgres@127.0.0.1:5432/helpdesk_apibench --redis-url redis://127.0.0.1:6379/13 --port 8011"
  [api_no_vacuum]="$PY bench/api.py --seconds 15 --rounds 3 --big 1000000 --skip-list --skip-throughput --no-vacuum --database-url postgres://postgres@127.0.0.1:5432/helpdesk_apibench --redis-url redis://127.0.0.1:6379/13 --port 8011"
  [import_tickets]="$PY bench/import_tickets.py --tickets 100000"
  [sla_sweep]="$PY bench/sla_sweep.py --big 1000000 --rate 100 --seconds 30 --database-url postgres://postgres@127.0.0.1:5432/bench_deadlines --broker redis://127.0.0.1:6379/6"
  [sla_latency_redis]="$PY bench/sla_sweep.py --skip-sweep --rate 100 --seconds 30 --concurrency 4"
  [sla_latency_rabbitmq]="$PY bench/sla_sweep.py --skip-sweep --rate 100 --seconds 30 --concurrency 4 --broker $AMQP"
  [sla_latency_eta]="$PY bench/sla_sweep.py --skip-sweep --rate 100 --seconds 30 --concurrency 4 --sweep-seconds 10 --horizon 13"
  [sla_redo_rabbitmq]="$PY bench/sla_redo.py --rounds 20 --broker $AMQP"
  [sla_redo_redis]="$PY bench/sla_redo.py --rounds 20 --broker redis://127.0.0.1:6379/6"
  [qa_sample]="$PY bench/qa_sample.py --conversations 1000000"
  [live_view]="$PY bench/live_view.py --runs 50"
  [reports]="$PY bench/reports.py --tickets 1000000 --runs 10"
  [kb_search]="$PY bench/kb_search.py --articles 100000 --runs 5"
  [load]="$PY bench/load.py"
  [pg_restart]="$PY bench/pg_restart.py --clients 8 --workers 4 --before 10 --after 15"
  [soak]="$PY bench/soak.py"
)
ORDER=(seed_demo admin_pages api api_no_vacuum import_tickets sla_sweep sla_latency_redis sla_latency_rabbitmq
       sla_latency_eta sla_redo_rabbitmq sla_redo_redis qa_sample live_view reports kb_search load pg_restart soak)
[ $# -gt 0 ] && ORDER=("$@")

failed=0
summary=()
for name in "${ORDER[@]}"; do
  command=${RUNS[$name]:-}
  if [ -z "$command" ]; then echo "unknown benchmark: $name (one of: ${!RUNS[*]})" >&2; exit 2; fi
  echo "== $name: $command"
  started=$(date +%s)
  $command >"$OUT/$name.txt" 2>&1
  status=$?
  seconds=$(( $(date +%s) - started ))
  [ $status -ne 0 ] && failed=1
  summary+=("$(printf '%-22s exit %d  %5d s' "$name" "$status" "$seconds")")
  tail -n 3 "$OUT/$name.txt" | sed 's/^/   /'
done
echo "== summary ($OUT)"
printf '%s\n' "${summary[@]}"
exit $failed
