#!/usr/bin/env bash
# `pensieve run --chat` with piped stdin: one reply per user line, a clean exit at EOF and /exit,
# /reset, a conversation that outgrows the context, and models without a chat template.
set -u
pensieve="$1"
shared="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model="$tmp/tiny-phi3.gguf"
stories="$shared/models/stories260K.gguf"
"$pensieve" synth tiny-phi3 -o "$model" --vocab "$shared/vocab/ggml-vocab-phi-3.gguf" >/dev/null ||
  { echo "FAIL synth"; exit 1; }
failures=0
count=0
fail() {
  echo "FAIL $1: $2"
  failures=$((failures + 1))
}
# chat NAME INPUT ARGS...: runs a chat with INPUT on stdin; sets rc, out (stdout), err (stderr)
# and turns (the per-turn info lines on stderr).
chat() {
  local name=$1 input=$2
  shift 2
  current=$name
  out=$(printf '%b' "$input" | "$pensieve" --log-level info run --chat "$@" 2>"$tmp/err")
  rc=$?
  err=$(cat "$tmp/err")
  turns=$(grep -c 'info chat: .* prompt tokens' <<<"$err")
}
not() { ! "$@"; }
expect() {  # expect WHAT COMMAND...: counts a failure unless COMMAND succeeds
  local what=$1
  shift
  count=$((count + 1))
  if ! "$@"; then fail "$current" "$what (exit $rc, stdout: ${out:0:200}, stderr: ${err:0:400})"; fi
}

chat two-turns 'Hello there\nHow are you?\n' -m "$model" -n 8 --temp 0
expect "exit 0" test "$rc" -eq 0
expect "two replies" test "$turns" -eq 2
expect "replies on stdout" test "$(printf '%s\n' "$out" | wc -l)" -ge 2
expect "turn 2 reuses turn 1" grep -qE 'prompt tokens \([1-9][0-9]* reused' <<<"$err"
expect "no prompt when piped" not grep -q '^> ' <<<"$err"

chat reset-and-exit 'Hello there\n/reset\nHello there\n/exit\nnot sent\n' -m "$model" -n 8 --temp 0
expect "exit 0" test "$rc" -eq 0
expect "two replies" test "$turns" -eq 2
expect "/reset starts from nothing" test "$(grep -c '(0 reused' <<<"$err")" -eq 2
half=$((${#out} / 2))
expect "same greedy reply after /reset" test "${out:0:half}" = "${out:half+1}"

chat eof-only '' -m "$model"
expect "exit 0" test "$rc" -eq 0
expect "nothing printed" test -z "$out"

chat unknown-command '/frobnicate\nHi\n' -m "$model" -n 2
expect "exit 0" test "$rc" -eq 0
expect "names the command" grep -q "unknown command '/frobnicate'" <<<"$err"
expect "one reply" test "$turns" -eq 1

chat outgrows-context "$(printf 'And more.\\n%.0s' {1..10})" -m "$model" -c 64 -n 2 --temp 0
expect "exit 0" test "$rc" -eq 0
expect "says so" grep -qE 'conversation \([0-9]+ tokens\) no longer fit the context \(64 tokens\)' <<<"$err"
expect "every line answered" test "$turns" -eq 10

chat reply-fills-context 'Hello\nHello\n' -m "$model" -c 32 -n 100 --temp 0
expect "exit 0" test "$rc" -eq 0
expect "says so" grep -q 'the reply filled the context (32 tokens) and was cut off' <<<"$err"
expect "starts over" test "$(grep -c '(0 reused' <<<"$err")" -eq 2

chat message-too-long "$(printf 'word %.0s' {1..80})\nHi\n" -m "$model" -c 48 -n 4
expect "exit 0" test "$rc" -eq 0
expect "says so" grep -qE 'does not fit the context: the prompt needs [0-9]+ tokens and room to reply, the context holds 48' <<<"$err"
expect "the next line is answered" test "$turns" -eq 1

chat no-template 'Hi\n' -m "$stories"
expect "exit 1" test "$rc" -eq 1
expect "explains" grep -q 'has no chat template (tokenizer.chat_template); choose one with --chat-template' <<<"$err"

chat plain-fallback 'Once upon a time\nThe end\n' -m "$stories" --chat-template plain -n 8 --temp 0
expect "exit 0" test "$rc" -eq 0
expect "two replies" test "$turns" -eq 2

chat bad-template 'Hi\n' -m "$model" --chat-template vicuna
expect "exit 1" test "$rc" -eq 1
expect "lists names" grep -q "unknown name 'vicuna' (valid names: chatml, llama3, phi3" <<<"$err"

chat system-dropped 'Hi\n' -m "$model" --system "Be brief." -n 2
expect "exit 0" test "$rc" -eq 0
expect "warns" grep -q 'model chat template leaves system messages out' <<<"$err"

chat with-prompt 'Hi\n' -m "$model" -p "text"
expect "usage error" test "$rc" -ne 0 -a "$rc" -lt 128
expect "names the conflict" grep -qi 'excludes' <<<"$err"

echo "$((count - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
