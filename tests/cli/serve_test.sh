#!/usr/bin/env bash
# `pensieve serve` as an operator starts it: the missing-model message, a port in use named,
# the loopback rule, settings precedence (flag > environment > --config TOML), bad settings
# named, and SIGTERM during a stream: the stream finishes and the server exits 0.
set -u
pensieve="$1"
shared="$2"
model="$shared/models/TinyStories-656K-Q8_0.gguf"
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}
check() {  # check NAME EXPECTED_RC PATTERN -- COMMAND...
  local name=$1 want_rc=$2 pattern=$3
  shift 4
  local out rc
  out=$(timeout 30 env -u PENSIEVE_MODEL -u PENSIEVE_PORT "$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want_rc" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    fail "$name: exit $rc (want $want_rc), output: ${out:0:400}"
  else
    echo "ok   $name"
  fi
}
# start NAME ARGS...: starts a server in the background, sets $port from its listening line.
start() {
  local log="$tmp/$1.log"
  shift
  "$@" 2>"$log" &
  server_pid=$!
  port=""
  for _ in $(seq 100); do
    port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$log" | grep -oE '[0-9]+$')
    [ -n "$port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "server $1 did not start: $(cat "$log")"
  return 1
}

mkdir -p "$tmp/no-models"
check no-model 1 'serve: no model given.*--model FILE.gguf.*PENSIEVE_MODEL.*pensieve pull' -- \
  env PENSIEVE_MODELS_DIR="$tmp/no-models" "$pensieve" serve
check bad-port 1 "config: port 'abc' \(from --port\) is not a number in 0..65535" -- \
  "$pensieve" serve -m "$model" --port abc
check bad-env 1 "config: max_queue 'x' \(from PENSIEVE_MAX_QUEUE\)" -- \
  env PENSIEVE_MAX_QUEUE=x "$pensieve" serve -m "$model"
check exposed 1 'binding to 0.0.0.0 exposes the server: set an API key' -- \
  "$pensieve" serve -m "$model" --host 0.0.0.0 --port 0
check missing-config 1 'nothing.toml' -- "$pensieve" serve -m "$model" --config "$tmp/nothing.toml"
printf 'port = 1\nbogus = 2\n' >"$tmp/bad.toml"
check unknown-key 1 'bogus' -- "$pensieve" serve -m "$model" --config "$tmp/bad.toml"

# A port in use is named.
if start first "$pensieve" serve -m "$model" --port 0; then
  check port-in-use 1 "cannot listen on 127.0.0.1:$port: port $port is already in use" -- \
    "$pensieve" serve -m "$model" --port "$port"
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null
fi

# Precedence: the file names the model and a key; the environment overrides the key; a flag
# overrides the environment.
printf 'model = "%s"\napi_key = "from-file"\nport = 0\nmodel_name = "file-name"\n' "$model" \
  >"$tmp/pensieve.toml"
if start precedence env PENSIEVE_API_KEY=from-env "$pensieve" serve --config "$tmp/pensieve.toml" \
  --model-name flag-name; then
  url="http://127.0.0.1:$port/v1/models"
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'x-api-key: from-file' "$url")" = 401 ] ||
    fail "precedence: the file's key was accepted over the environment's"
  body=$(curl -s -H 'x-api-key: from-env' "$url")
  grep -q '"id":"flag-name"' <<<"$body" || fail "precedence: flag model name not used: $body"
  echo "ok   precedence"
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null
fi

# SIGTERM mid-stream: the stream still ends with message_stop, and the exit status is 0.
if start drain "$pensieve" serve -m "$model" --port 0 --debug-token-delay-ms 20; then
  curl -sN "http://127.0.0.1:$port/v1/messages" -d '{"max_tokens":40,"stream":true,
    "temperature":0,"messages":[{"role":"user","content":"Once upon a time"}]}' >"$tmp/stream" &
  curl_pid=$!
  sleep 0.3
  kill -TERM "$server_pid"
  wait "$server_pid"
  rc=$?
  wait "$curl_pid"
  if [ "$rc" -ne 0 ] || ! grep -q 'event: message_stop' "$tmp/stream"; then
    fail "drain: exit $rc, stream: $(tail -c 300 "$tmp/stream")"
  else
    echo "ok   drain"
  fi
fi

[ "$failures" -eq 0 ] || exit 1
