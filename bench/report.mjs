// Statistics over per-request results of bench/replay.mjs and its human-readable report.

/** The p-th percentile (0..100) with linear interpolation between ranks; null for no values. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (v.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return v[lo] + (v[hi] - v[lo]) * (rank - lo);
}

/** `v` rounded to `digits` decimals (null stays null), so that JSON reports stay readable. */
export const round = (v, digits = 1) => (v === null ? null : Number(v.toFixed(digits)));
const mean = (values) => (values.length ? round(values.reduce((a, b) => a + b, 0) / values.length) : null);
const p50p95 = (values) => ({ p50: round(percentile(values, 50)), p95: round(percentile(values, 95)) });

/**
 * Summary of a set of requests. Per-stream tokens/s is output tokens over the request's whole
 * time (queueing and prefill included); decode tokens/s counts only from the first text delta on.
 */
export function summarizeRequests(results) {
  const ok = results.filter((r) => r.ok);
  const ttft = ok.filter((r) => r.ttftMs !== null).map((r) => r.ttftMs);
  const decode = ok.filter((r) => r.ttftMs !== null && r.outputTokens > 1 && r.totalMs > r.ttftMs)
    .map((r) => ((r.outputTokens - 1) * 1000) / (r.totalMs - r.ttftMs));
  return {
    requests: results.length,
    ok: ok.length,
    failed: results.length - ok.length,
    without_text: ok.length - ttft.length,
    ttft_ms: p50p95(ttft),
    total_ms: p50p95(ok.map((r) => r.totalMs)),
    input_tokens_mean: mean(ok.map((r) => r.inputTokens)),
    cache_read_input_tokens_mean: mean(ok.map((r) => r.cacheReadTokens)),
    cache_creation_input_tokens_mean: mean(ok.map((r) => r.cacheCreationTokens)),
    output_tokens: ok.reduce((n, r) => n + r.outputTokens, 0),
    per_stream_tokens_per_s: p50p95(ok.filter((r) => r.totalMs > 0).map((r) => (r.outputTokens * 1000) / r.totalMs)),
    decode_tokens_per_s: p50p95(decode),
  };
}

/** Failed requests grouped by kind, with one full message each and a hint for known causes. */
export function groupErrors(results) {
  const kinds = new Map();
  for (const r of results) {
    if (r.ok) continue;
    const k = kinds.get(r.errorKey) ?? { kind: r.errorKey, count: 0, example: r.errorMessage };
    k.count++;
    kinds.set(r.errorKey, k);
  }
  const by_kind = [...kinds.values()].sort((a, b) => b.count - a.count);
  const hints = [];
  if (by_kind.some((k) => /prompt is too long/.test(k.kind))) {
    hints.push('the prompts outgrew the model\'s context: lower --prefix-tokens, --turn-tokens, ' +
      '--turns, --prompt-tokens or --max-tokens, or give the server a larger --ctx');
  }
  if (by_kind.some((k) => /^HTTP (429|529)/.test(k.kind))) {
    hints.push('the server refused work (queue full or memory pressure): fewer concurrent ' +
      'requests, or a larger --max-queue / memory budget on the server');
  }
  if (by_kind.some((k) => /^connection/.test(k.kind))) hints.push('is the server running at that URL?');
  return { failed: results.filter((r) => !r.ok).length, by_kind, hints };
}

const ms = (v) => (v === null ? '-' : v.toFixed(1));
const num = (v, d = 1) => (v === null ? '-' : v.toFixed(d));

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padStart(widths[i])).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

function printErrors(report) {
  const { errors, requests } = report;
  if (errors.failed === 0) {
    console.log('errors: none');
    return;
  }
  const skipped = requests.skipped ? ` (${requests.skipped} later turns not sent)` : '';
  console.log(`errors: ${errors.failed} of ${requests.sent} requests failed${skipped}`);
  for (const k of errors.by_kind) console.log(`  ${k.count} x ${k.example}`);
  for (const h of errors.hints) console.log(`  hint: ${h}`);
}

function printThroughput(report) {
  const o = report.overall;
  console.log(`generation: ${o.output_tokens} output tokens in ${report.wall_s.toFixed(2)} s = ` +
    `${num(report.aggregate_tokens_per_s)} tokens/s aggregate`);
  console.log(`per stream: p50 ${num(o.per_stream_tokens_per_s.p50)} tokens/s (output tokens / request time), ` +
    `decode p50 ${num(o.decode_tokens_per_s.p50)} tokens/s (after the first text delta)`);
}

export function printConversationReport(report) {
  const c = report.config;
  console.log(`pensieve replay: ${c.conversations} conversations x ${c.turns} turns against ${c.url}`);
  console.log(`  shared prefix ~${c.prefix_tokens_approx} tokens (${c.prefix_chars} chars), ` +
    `turns ~${c.turn_tokens_approx} tokens, max_tokens ${c.max_tokens}, temperature 0, streaming`);
  const row = (label, s) => [label, s.requests, s.ok, ms(s.ttft_ms.p50), ms(s.ttft_ms.p95),
    ms(s.total_ms.p50), num(s.input_tokens_mean, 0), num(s.cache_read_input_tokens_mean, 0),
    num(s.cache_creation_input_tokens_mean, 0), s.output_tokens];
  const rows = report.per_turn.map((t) => row(String(t.turn), t));
  rows.push(row('all', report.overall));
  console.log(table(['turn', 'reqs', 'ok', 'ttft_p50_ms', 'ttft_p95_ms', 'total_p50_ms', 'input_tok',
    'cache_read', 'cache_write', 'output_tok'], rows));
  console.log('(input_tok, cache_read, cache_write: means per request as the server reported them)');
  const ratio = report.ttft_p50_turn2plus_over_turn1;
  console.log(`TTFT p50 of turns 2+ / turn 1: ${ratio === null ? '-' : ratio.toFixed(2)}`);
  printThroughput(report);
  if (report.overall.without_text) console.log(`${report.overall.without_text} replies had no text (no TTFT)`);
  printErrors(report);
}

export function printStreamsReport(report) {
  const c = report.config;
  const o = report.overall;
  console.log(`pensieve streams: ${c.streams} concurrent streams x ${c.requests_per_stream} requests against ${c.url}`);
  console.log(`  distinct prompts ~${c.prompt_tokens_approx} tokens (server counted ${num(o.input_tokens_mean, 0)} ` +
    `on average), max_tokens ${c.max_tokens}, temperature 0, streaming`);
  console.log(`requests: ${o.ok} ok of ${o.requests}`);
  console.log(`TTFT: p50 ${ms(o.ttft_ms.p50)} ms, p95 ${ms(o.ttft_ms.p95)} ms; ` +
    `request time: p50 ${ms(o.total_ms.p50)} ms, p95 ${ms(o.total_ms.p95)} ms`);
  printThroughput(report);
  if (o.without_text) console.log(`${o.without_text} replies had no text (no TTFT)`);
  printErrors(report);
}
