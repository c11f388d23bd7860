#!/usr/bin/env node
// Load generator for `pensieve serve`: replays Claude-Code-like conversations (a long system
// prefix shared by all conversations, then sequential turns) or runs independent concurrent
// streams, and reports time to first token, latency and generation throughput. See bench/README.md.

import { streamMessage } from './messages_client.mjs';
import { startServer, splitArgs } from './server_process.mjs';
import { systemPrompt, userMessage, mixSeed, CHARS_PER_TOKEN } from './synthetic_text.mjs';
import { percentile, round, summarizeRequests, groupErrors, printConversationReport, printStreamsReport } from './report.mjs';

const USAGE = `usage:
  node bench/replay.mjs (--url URL | --bin PENSIEVE --model GGUF [--server-args "..."])
      [--conversations 4] [--turns 4] [--prefix-tokens 8000] [--turn-tokens 50] [--max-tokens 32]
      [--seed 1] [--warmup 1] [--timeout-s 300] [--api-key KEY] [--request-model NAME] [--json]
  node bench/replay.mjs (--url URL | --bin ... --model ...) --streams N
      [--requests-per-stream 4] [--prompt-tokens 500] [--max-tokens 32] [common options]
Token counts are approximate (${CHARS_PER_TOKEN} characters of English-like text a token); the
reported input tokens are the server's own counts.`;

const FLAGS = {
  url: 'string', bin: 'string', model: 'string', 'server-args': 'string', 'api-key': 'string',
  'request-model': 'string', json: 'bool', help: 'bool', seed: 'int0', warmup: 'int0',
  'timeout-s': 'int1', 'max-tokens': 'int1',
  conversations: 'int1', turns: 'int1', 'prefix-tokens': 'int0', 'turn-tokens': 'int1',
  streams: 'int1', 'requests-per-stream': 'int1', 'prompt-tokens': 'int1',
};
const CONVERSATION_ONLY = ['conversations', 'turns', 'prefix-tokens', 'turn-tokens'];
const STREAMS_ONLY = ['requests-per-stream', 'prompt-tokens'];
const DEFAULTS = {
  conversations: 4, turns: 4, 'prefix-tokens': 8000, 'turn-tokens': 50, 'max-tokens': 32,
  'requests-per-stream': 4, 'prompt-tokens': 500, seed: 1, warmup: 1, 'timeout-s': 300,
  'request-model': 'claude-sonnet-4-5', json: false, help: false,
};

class UsageError extends Error {}

function parseArgs(argv) {
  const given = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument '${arg}'`);
    let [name, value] = arg.slice(2).split(/=(.*)/s, 2);
    const kind = FLAGS[name];
    if (!kind) throw new UsageError(`unknown option '--${name}'`);
    if (name in given) throw new UsageError(`option '--${name}' is given twice`);
    if (kind === 'bool') {
      if (value !== undefined) throw new UsageError(`option '--${name}' takes no value`);
      given[name] = true;
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`option '--${name}' needs a value`);
      value = argv[++i];
    }
    if (kind === 'string') {
      given[name] = value;
    } else {
      const min = kind === 'int1' ? 1 : 0;
      if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
        throw new UsageError(`option '--${name}' value '${value}' is not a whole number >= ${min}`);
      }
      given[name] = Number(value);
    }
  }
  const opts = { ...DEFAULTS, ...given };
  if (opts.help) return opts;
  if (!!opts.url === !!(opts.bin || opts.model)) {
    throw new UsageError('give either --url, or --bin and --model (to start the server here)');
  }
  if (!opts.url && !(opts.bin && opts.model)) throw new UsageError('--bin and --model go together');
  if (opts.url && 'server-args' in given) throw new UsageError('--server-args needs --bin and --model');
  if (opts.url) {
    try { new URL(opts.url); } catch { throw new UsageError(`--url '${opts.url}' is not a URL`); }
    opts.url = opts.url.replace(/\/+$/, '');
  }
  const mixed = ('streams' in given ? CONVERSATION_ONLY : STREAMS_ONLY).filter((f) => f in given);
  if (mixed.length) {
    const mode = 'streams' in given ? 'the --streams benchmark' : 'the conversation replay (it needs --streams)';
    throw new UsageError(`--${mixed[0]} does not apply to ${mode}`);
  }
  return opts;
}

function request(opts, system, messages) {
  const body = {
    model: opts['request-model'], max_tokens: opts['max-tokens'], temperature: 0, stream: true, messages,
  };
  if (system) body.system = system;
  return body;
}

function send(ctx, body) {
  return streamMessage(ctx.baseURL, body, { timeoutMs: ctx.opts['timeout-s'] * 1000, apiKey: ctx.opts['api-key'] });
}

/** One conversation: turns in order, each resending the history plus the reply it got. */
async function runConversation(ctx, system, c) {
  const { opts } = ctx;
  const messages = [];
  const results = [];
  for (let turn = 1; turn <= opts.turns; turn++) {
    const user = userMessage(mixSeed(opts.seed, c, turn), opts['turn-tokens'], `[session ${c + 1}, turn ${turn}] `);
    messages.push({ role: 'user', content: user });
    const r = await send(ctx, request(opts, system, messages));
    r.conversation = c + 1;
    r.turn = turn;
    results.push(r);
    if (!r.ok) break; // the rest of this conversation would not be a replay any more
    // An empty reply cannot be sent back as assistant content; a placeholder keeps the turns alternating.
    messages.push({ role: 'assistant', content: r.text !== '' ? r.text : '.' });
  }
  return results;
}

async function runConversations(ctx) {
  const { opts } = ctx;
  const system = systemPrompt(opts.seed, opts['prefix-tokens']);
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: opts.conversations }, (_, c) => runConversation(ctx, system, c)));
  const wallMs = performance.now() - t0;
  const results = all.flat();
  const perTurn = [];
  for (let turn = 1; turn <= opts.turns; turn++) {
    perTurn.push({ turn, ...summarizeRequests(results.filter((r) => r.turn === turn)) });
  }
  const okTtft = (pred) => results.filter((r) => r.ok && pred(r) && r.ttftMs !== null).map((r) => r.ttftMs);
  const turn1 = percentile(okTtft((r) => r.turn === 1), 50);
  const later = percentile(okTtft((r) => r.turn >= 2), 50);
  const planned = opts.conversations * opts.turns;
  return {
    mode: 'conversations',
    config: {
      url: ctx.baseURL, conversations: opts.conversations, turns: opts.turns,
      prefix_tokens_approx: opts['prefix-tokens'], prefix_chars: system.length,
      turn_tokens_approx: opts['turn-tokens'], max_tokens: opts['max-tokens'], seed: opts.seed,
    },
    wall_s: round(wallMs / 1000, 3),
    per_turn: perTurn,
    overall: summarizeRequests(results),
    ttft_p50_turn2plus_over_turn1: turn1 && later !== null ? round(later / turn1, 3) : null,
    aggregate_tokens_per_s: round(sumOutput(results) / (wallMs / 1000)),
    requests: { planned, sent: results.length, skipped: planned - results.length },
    errors: groupErrors(results),
  };
}

async function runStreams(ctx) {
  const { opts } = ctx;
  const client = async (s) => {
    const results = [];
    for (let k = 0; k < opts['requests-per-stream']; k++) {
      const prompt = userMessage(mixSeed(opts.seed, 0x57, s, k), opts['prompt-tokens'], `[stream ${s + 1}, request ${k + 1}] `);
      const r = await send(ctx, request(opts, null, [{ role: 'user', content: prompt }]));
      r.stream = s + 1;
      results.push(r);
    }
    return results;
  };
  const t0 = performance.now();
  const results = (await Promise.all(Array.from({ length: opts.streams }, (_, s) => client(s)))).flat();
  const wallMs = performance.now() - t0;
  return {
    mode: 'streams',
    config: {
      url: ctx.baseURL, streams: opts.streams, requests_per_stream: opts['requests-per-stream'],
      prompt_tokens_approx: opts['prompt-tokens'], max_tokens: opts['max-tokens'], seed: opts.seed,
    },
    wall_s: round(wallMs / 1000, 3),
    overall: summarizeRequests(results),
    aggregate_tokens_per_s: round(sumOutput(results) / (wallMs / 1000)),
    requests: { planned: results.length, sent: results.length, skipped: 0 },
    errors: groupErrors(results),
  };
}

const sumOutput = (results) => results.reduce((n, r) => n + (r.ok ? r.outputTokens : 0), 0);

/** Short requests that load the model and warm the code paths without sharing the benchmark's prefix. */
async function warmUp(ctx) {
  for (let i = 0; i < ctx.opts.warmup; i++) {
    const r = await send(ctx, { ...request(ctx.opts, null, [{ role: 'user', content: 'Hello.' }]), max_tokens: 2 });
    if (!r.ok) throw new Error(`the warm-up request to ${ctx.baseURL} failed: ${r.errorMessage}`);
  }
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`replay: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let server = null;
  if (!opts.url) {
    try {
      server = await startServer(opts.bin, opts.model, splitArgs(opts['server-args']));
    } catch (err) {
      process.stderr.write(`replay: ${err.message}\n`);
      return 2;
    }
    const onSignal = () => { server.stop().then(() => process.exit(130)); };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  const ctx = { opts, baseURL: opts.url ?? server.baseURL };
  let report;
  try {
    await warmUp(ctx);
    report = 'streams' in opts ? await runStreams(ctx) : await runConversations(ctx);
    report.config.server = server ? { started: true, args: server.args } : { started: false };
  } catch (err) {
    process.stderr.write(`replay: ${err.message}\n`);
    if (server) process.stderr.write(`--- pensieve stderr (last lines) ---\n${server.tail(20)}\n`);
    if (server) await server.stop();
    return 1;
  }
  if (server) {
    const info = await server.stop();
    report.config.server.exit = info;
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else if (report.mode === 'streams') printStreamsReport(report);
  else printConversationReport(report);
  if (report.errors.failed > 0 && server && !opts.json) {
    process.stderr.write(`--- pensieve stderr (last lines) ---\n${server.tail(10)}\n`);
  }
  return report.errors.failed > 0 ? 1 : 0;
}

process.exitCode = await main();
