#!/usr/bin/env bash
# `pensieve memory`: one check prints a tier, --json has every field, --watch repeats, a bad
# --interval is refused, a registered server (this shell, by a hand-written entry) is listed,
# and an entry whose process is gone is dropped and its file removed.
set -u
pensieve="$1"
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
export PENSIEVE_RUNTIME_DIR="$tmp/run"
mkdir -m 700 "$PENSIEVE_RUNTIME_DIR"
failures=0
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}
check() {  # check NAME EXPECTED_RC PATTERN -- COMMAND...
  local name=$1 want_rc=$2 pattern=$3
  shift 4
  local out rc
  out=$(timeout 30 "$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want_rc" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    fail "$name: exit $rc (want $want_rc), output: ${out:0:400}"
  else
    echo "ok   $name"
  fi
}
# json_check NAME SCRIPT: runs SCRIPT with `lines` (each stdin line parsed as JSON) and `fail`.
json_check() {
  local name=$1 script=$2 out
  if out=$(node -e '
    const lines = require("fs").readFileSync(0, "utf8").split("\n").filter((l) => l !== "")
      .map((l) => JSON.parse(l));
    const fail = (why) => { console.log(why); process.exit(1); };
    '"$script" 2>&1); then
    echo "ok   $name"
  else
    fail "$name: $out"
  fi
}
fields='["tier","available_bytes","mem_available_bytes","total_bytes","swap_total_bytes",
  "swap_used_bytes","cgroup_limit_bytes","cgroup_usage_bytes","psi_some_avg10","psi_full_avg10",
  "instances"]'

check text 0 '^tier +(safe|caution|warning|critical|emergency)$' -- "$pensieve" memory
check text-instances-none 0 '^instances +none$' -- "$pensieve" memory

"$pensieve" memory --json >"$tmp/one.json"
json_check json-fields "
  if (lines.length !== 1) fail('want 1 line, got ' + lines.length);
  const o = lines[0];
  for (const f of $fields) if (!(f in o)) fail('missing field ' + f);
  if (!['safe','caution','warning','critical','emergency'].includes(o.tier)) fail('tier ' + o.tier);
  if (!(o.total_bytes > 0 && o.available_bytes >= 0 && o.mem_available_bytes > 0)) fail('sizes');
  if (!Array.isArray(o.instances)) fail('instances is not an array');" <"$tmp/one.json"

# --watch: one object per line, repeated until killed. SIGINT once two lines are out (a slow
# start, as under a sanitizer on a busy machine, is given up to 20 s).
"$pensieve" memory --watch --interval 0.2 --json >"$tmp/watch.json" 2>"$tmp/watch.err" &
watch_pid=$!
for _ in $(seq 200); do
  [ "$(wc -l <"$tmp/watch.json")" -ge 2 ] && break
  sleep 0.1
done
kill -INT "$watch_pid"
wait "$watch_pid"
watch_rc=$?
[ "$watch_rc" -eq 0 ] || fail "watch: exit $watch_rc after SIGINT: $(cat "$tmp/watch.err")"
json_check watch "
  if (lines.length < 2) fail('want >= 2 lines in 20 s, got ' + lines.length);
  for (const o of lines) for (const f of $fields) if (!(f in o)) fail('missing field ' + f);" \
  <"$tmp/watch.json"

check interval-zero 105 "--interval: '0' is not a number of seconds greater than 0" -- \
  "$pensieve" memory --watch --interval 0
check interval-text 105 "--interval: 'soon' is not a number of seconds" -- \
  "$pensieve" memory --watch --interval soon
check interval-needs-watch 107 '--interval requires --watch' -- "$pensieve" memory --interval 1

# A registered server: this shell, with its real start time (field 22 of /proc/PID/stat, the
# 20th after the ')' that ends the command name).
ticks=$(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f20)
printf '{"pid":%d,"start_ticks":%s,"host":"127.0.0.1","port":4242,"model":"tiny-model",
  "budget_bytes":1073741824,"started_at":"2024-05-01T12:00:00Z"}\n' $$ "$ticks" \
  >"$PENSIEVE_RUNTIME_DIR/$$.json"
check listed-text 0 "^ +$$ +127\.0\.0\.1:4242 +tiny-model +[0-9.]+ [KMG]?i?B +[0-9.]+ [KMG]?i?B +1\.00 GiB$" \
  -- "$pensieve" memory
"$pensieve" memory --json >"$tmp/listed.json"
json_check listed-json "
  const i = lines[0].instances.filter((x) => x.pid === $$);
  if (i.length !== 1) fail('want this shell listed once: ' + JSON.stringify(lines[0].instances));
  const e = i[0];
  if (e.host !== '127.0.0.1' || e.port !== 4242 || e.model !== 'tiny-model') fail('fields');
  if (e.budget_bytes !== 1073741824 || e.started_at !== '2024-05-01T12:00:00Z') fail('budget');
  if (!(e.rss_anon_bytes > 0) || typeof e.swap_bytes !== 'number') fail('usage');" \
  <"$tmp/listed.json"
[ -e "$PENSIEVE_RUNTIME_DIR/$$.json" ] || fail "listed: the live entry's file was removed"

# An entry whose process has exited (and been reaped) is stale: not listed, file removed.
sh -c 'exit 0' &
dead=$!
wait "$dead"
printf '{"pid":%d,"start_ticks":1,"host":"127.0.0.1","port":4343,"model":"gone",
  "budget_bytes":1,"started_at":"2024-05-01T12:00:00Z"}\n' "$dead" \
  >"$PENSIEVE_RUNTIME_DIR/$dead.json"
"$pensieve" memory --json >"$tmp/stale.json"
json_check stale "
  const pids = lines[0].instances.map((x) => x.pid);
  if (pids.includes($dead)) fail('dead pid $dead still listed');
  if (!pids.includes($$)) fail('live entry lost: ' + pids);" <"$tmp/stale.json"
[ ! -e "$PENSIEVE_RUNTIME_DIR/$dead.json" ] && echo "ok   stale-file-removed" ||
  fail "stale: $PENSIEVE_RUNTIME_DIR/$dead.json was not removed"

[ "$failures" -eq 0 ] || exit 1
