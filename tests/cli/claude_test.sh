#!/usr/bin/env bash
# `pensieve claude` and scripts/claude-local with a fake `claude` first on PATH that records its
# arguments and environment: arguments pass through unchanged, the environment is claude's only,
# a running server is reused, one is started when none answers (and keeps running, unless
# --stop-after), two ports at once, and the errors: no claude, a server that cannot start, a port
# held by another program, a server that wants a key.
set -u
pensieve="$1"
shared="$2"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
model="$shared/models/TinyStories-656K-Q8_0.gguf"
tmp=$(mktemp -d)
export PENSIEVE_RUNTIME_DIR="$tmp/run"
unset PENSIEVE_PORT PENSIEVE_MODEL PENSIEVE_API_KEY ANTHROPIC_BASE_URL ANTHROPIC_API_KEY
cleanup() {
  # Servers this test started registered in its own runtime directory.
  for entry in "$tmp"/run/*.json; do
    [ -f "$entry" ] || continue
    kill "$(basename "$entry" .json)" 2>/dev/null
  done
  kill $(jobs -p) 2>/dev/null
  sleep 0.3
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}
ok() { echo "ok   $*"; }

# The fake claude: argv one per line, then the variables it was given.
mkdir -p "$tmp/bin" "$tmp/nobin"
cat >"$tmp/bin/claude" <<'EOF'
#!/usr/bin/env bash
out="${FAKE_CLAUDE_OUT:?}"
{
  for a in "$@"; do printf 'ARG[%s]\n' "$a"; done
  for v in ANTHROPIC_BASE_URL ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN API_TIMEOUT_MS \
    ANTHROPIC_MODEL ANTHROPIC_DEFAULT_SONNET_MODEL ANTHROPIC_DEFAULT_HAIKU_MODEL \
    ANTHROPIC_SMALL_FAST_MODEL CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC; do
    printf '%s=%s\n' "$v" "${!v-<unset>}"
  done
  # The server answers at the URL claude was given.
  printf 'HEALTH=%s\n' "$(curl -s -o /dev/null -w '%{http_code}' "$ANTHROPIC_BASE_URL/health")"
} >"$out"
sleep "${FAKE_CLAUDE_SLEEP:-0}"
exit "${FAKE_CLAUDE_RC:-0}"
EOF
chmod +x "$tmp/bin/claude"

# Free loopback ports, distinct from each other, below the kernel's ephemeral range: servers that
# other tests start on port 0 take theirs from that range, so they cannot take one of these
# between the check here and its use.
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || ephemeral_low=32768
ports=()
for candidate in $(shuf -i 10000-$((ephemeral_low - 1)) -n 40); do
  (echo >"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null && continue
  ports+=("$candidate")
  [ "${#ports[@]}" -ge 7 ] && break
done
p_start=${ports[0]} p_two_a=${ports[1]} p_two_b=${ports[2]} p_stop=${ports[3]}
p_bad=${ports[4]} p_other=${ports[5]} p_key=${ports[6]}
serve_opts=(-m "$model" --serve-arg --threads --serve-arg 1)

# run NAME OUTFILE ARGS...: pensieve claude with the fake claude first on PATH; sets $rc, $err.
run() {
  local name=$1 out=$2
  shift 2
  err=$(PATH="$tmp/bin:$PATH" FAKE_CLAUDE_OUT="$out" timeout 60 "$pensieve" claude "$@" 2>&1)
  rc=$?
}
has() {  # has NAME FILE LINE: FILE has exactly LINE
  grep -qxF -- "$3" "$2" || fail "$1: no line '$3' in: $(cat "$2" 2>/dev/null)"
}
n_servers() { ls "$tmp"/run/*.json 2>/dev/null | wc -l; }
health() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/health"; }

# No claude on PATH (only the tools the script needs): a clear error, and no server started.
for tool in bash timeout readlink dirname; do ln -s "$(command -v "$tool")" "$tmp/nobin/$tool"; done
err=$(PATH="$tmp/nobin" timeout 30 "$pensieve" claude --port "$p_start" -m "$model" 2>&1)
rc=$?
if [ "$rc" -eq 127 ] && grep -qF "'claude' was not found on PATH; install it with npm install -g @anthropic-ai/claude-code" <<<"$err" &&
  [ "$(n_servers)" -eq 0 ]; then
  ok missing-claude
else
  fail "missing-claude: exit $rc, servers $(n_servers), output: $err"
fi
err=$(PATH="$tmp/nobin" PENSIEVE_BIN="$pensieve" timeout 30 bash "$repo/scripts/claude-local" 2>&1)
grep -qF "claude-local: 'claude' was not found on PATH" <<<"$err" && ok missing-claude-script ||
  fail "missing-claude-script: $err"

# None running: one is started; arguments pass unchanged (after --, and without it); the
# environment is the child's; claude's exit status is returned; the server keeps running.
export ANTHROPIC_AUTH_TOKEN=users-real-token
run start "$tmp/start.out" --port "$p_start" "${serve_opts[@]}" -- -p "Say hi" --model sonnet "two  words" ""
if [ "$rc" -ne 0 ] || ! grep -q "started pensieve serve on port $p_start" <<<"$err"; then
  fail "start: exit $rc, output: $err"
else
  f="$tmp/start.out"
  for line in "ARG[-p]" "ARG[Say hi]" "ARG[--model]" "ARG[sonnet]" "ARG[two  words]" "ARG[]" \
    "ANTHROPIC_BASE_URL=http://127.0.0.1:$p_start" "ANTHROPIC_API_KEY=pensieve-local" \
    "ANTHROPIC_AUTH_TOKEN=<unset>" "API_TIMEOUT_MS=600000" \
    "ANTHROPIC_MODEL=TinyStories-656K-Q8_0" "ANTHROPIC_DEFAULT_SONNET_MODEL=TinyStories-656K-Q8_0" \
    "ANTHROPIC_DEFAULT_HAIKU_MODEL=TinyStories-656K-Q8_0" \
    "ANTHROPIC_SMALL_FAST_MODEL=TinyStories-656K-Q8_0" \
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1" "HEALTH=200"; do
    has start "$f" "$line"
  done
  [ "$(grep -c '^ARG' "$f")" -eq 6 ] || fail "start: not 6 arguments: $(cat "$f")"
  [ "$(health "$p_start")" = 200 ] || fail "start: the server stopped after claude exited"
  [ -f "$tmp/run/serve-$p_start.log" ] || fail "start: no server log in the runtime dir"
  ok start
fi
# This shell's environment is untouched.
[ -z "${ANTHROPIC_BASE_URL-}" ] && [ "$ANTHROPIC_AUTH_TOKEN" = users-real-token ] &&
  ok parent-env-unchanged || fail "parent-env-unchanged"
unset ANTHROPIC_AUTH_TOKEN

# Running: reused, no second server; options end at the first unknown argument; exit status.
before=$(n_servers)
run reuse "$tmp/reuse.out" --port="$p_start" -p --port 1
if [ "$rc" -eq 0 ] && grep -q "using the pensieve server on port $p_start" <<<"$err" &&
  [ "$(n_servers)" -eq "$before" ] && [ "$before" -eq 1 ]; then
  has reuse "$tmp/reuse.out" "ARG[--port]"
  has reuse "$tmp/reuse.out" "ARG[1]"
  ok reuse
else
  fail "reuse: exit $rc, servers $before -> $(n_servers), output: $err"
fi
FAKE_CLAUDE_RC=7 run exit-status "$tmp/rc.out" --port "$p_start" -p x
[ "$rc" -eq 7 ] && ok exit-status || fail "exit-status: $rc, want 7: $err"

# Through the script, with PENSIEVE_BIN naming the binary under test.
out=$(PATH="$tmp/bin:$PATH" FAKE_CLAUDE_OUT="$tmp/script.out" PENSIEVE_BIN="$pensieve" \
  timeout 60 bash "$repo/scripts/claude-local" --port "$p_start" -p "from the script" 2>&1)
rc=$?
[ "$rc" -eq 0 ] && grep -qxF "ARG[from the script]" "$tmp/script.out" && ok script ||
  fail "script: exit $rc: $out"

# Two terminals, two ports, at once: each claude talks to its own server.
PATH="$tmp/bin:$PATH" FAKE_CLAUDE_OUT="$tmp/a.out" FAKE_CLAUDE_SLEEP=1 timeout 60 \
  "$pensieve" claude --port "$p_two_a" "${serve_opts[@]}" -p a >"$tmp/a.err" 2>&1 &
job_a=$!
PATH="$tmp/bin:$PATH" FAKE_CLAUDE_OUT="$tmp/b.out" FAKE_CLAUDE_SLEEP=1 timeout 60 \
  "$pensieve" claude --port "$p_two_b" "${serve_opts[@]}" -p b >"$tmp/b.err" 2>&1 &
job_b=$!
wait "$job_a"
rc_a=$?
wait "$job_b"
rc_b=$?
if [ "$rc_a" -eq 0 ] && [ "$rc_b" -eq 0 ]; then
  has two "$tmp/a.out" "ANTHROPIC_BASE_URL=http://127.0.0.1:$p_two_a"
  has two "$tmp/b.out" "ANTHROPIC_BASE_URL=http://127.0.0.1:$p_two_b"
  has two "$tmp/a.out" "HEALTH=200"
  has two "$tmp/b.out" "HEALTH=200"
  [ "$(n_servers)" -eq 3 ] || fail "two: $(n_servers) servers, want 3"
  ok two-ports
else
  fail "two-ports: exits $rc_a $rc_b: $(cat "$tmp/a.err" "$tmp/b.err")"
fi

# --stop-after stops a server it started once claude exits.
run stop "$tmp/stop.out" --port "$p_stop" "${serve_opts[@]}" --stop-after -p x
if [ "$rc" -eq 0 ] && grep -qxF "HEALTH=200" "$tmp/stop.out" && [ "$(health "$p_stop")" = 000 ]; then
  ok stop-after
else
  fail "stop-after: exit $rc, health after $(health "$p_stop"): $err"
fi

# A server that cannot start: its own error, from the end of its log.
run bad-model "$tmp/bad.out" --port "$p_bad" -m "$tmp/missing.gguf"
if [ "$rc" -eq 1 ] && grep -qF "the server did not start on port $p_bad" <<<"$err" &&
  grep -qF "missing.gguf" <<<"$err" && [ ! -f "$tmp/bad.out" ]; then
  ok bad-model
else
  fail "bad-model: exit $rc, output: $err"
fi

# A port held by something else.
python3 -m http.server "$p_other" --bind 127.0.0.1 >/dev/null 2>&1 &
for _ in $(seq 50); do [ "$(health "$p_other")" = 000 ] || break; sleep 0.1; done
run other "$tmp/other.out" --port "$p_other" "${serve_opts[@]}"
[ "$rc" -eq 1 ] && grep -qF "port $p_other is answered by a program that is not pensieve" <<<"$err" &&
  ok other-program || fail "other-program: exit $rc, output: $err"

# A key: given to the server started and to claude; a reuse without it is refused clearly.
run key "$tmp/key.out" --port "$p_key" "${serve_opts[@]}" --api-key sekrit -p x
[ "$rc" -eq 0 ] && has key "$tmp/key.out" "ANTHROPIC_API_KEY=sekrit" && ok key-given ||
  fail "key-given: exit $rc: $err"
run key-missing "$tmp/key2.out" --port "$p_key" -p x
[ "$rc" -eq 1 ] && grep -qF "wants an API key" <<<"$err" && ok key-missing ||
  fail "key-missing: exit $rc: $err"
PENSIEVE_API_KEY=sekrit run key-env "$tmp/key3.out" --port "$p_key" -p x
[ "$rc" -eq 0 ] && has key-env "$tmp/key3.out" "ANTHROPIC_API_KEY=sekrit" && ok key-env ||
  fail "key-env: exit $rc: $err"

# Bad options are named.
run bad-port "$tmp/x.out" --port abc
[ "$rc" -eq 2 ] && grep -qF -- "--port 'abc' is not a port" <<<"$err" && ok bad-port ||
  fail "bad-port: exit $rc: $err"

[ "$failures" -eq 0 ] || exit 1
echo "all passed"
