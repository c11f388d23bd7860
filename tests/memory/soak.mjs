// Soak: many distinct requests against one server; anonymous memory (RssAnon + VmSwap) of the
// server must stay flat. After a warm-up, a least-squares line through (requests done, memory)
// must rise by less than --max-slope MiB per request (default 0.1), and every request must
// succeed. Mixed traffic: both routes, streaming and not, varying max_tokens.
//
// Usage: node tests/memory/soak.mjs [--requests N] [--model M] [--bin B] [--concurrency C]
//          [--warmup-fraction F] [--max-slope MIB]
// (scripts/soak runs this with N = 2000 by default.)

import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    model: { type: 'string' },
    bin: { type: 'string' },
    concurrency: { type: 'string', default: '4' },
    'warmup-fraction': { type: 'string', default: '0.15' },
    'max-slope': { type: 'string', default: '0.1' },
  },
});
// lib.mjs reads PENSIEVE_BIN when it loads: set it before the import.
if (opts.bin) process.env.PENSIEVE_BIN = opts.bin;
const lib = await import('./lib.mjs');
const { startServer, processMemory, generate, prompt, fitLine, mib, MiB } = lib;

const positive = (name, text, min) => {
  const v = Number(text);
  if (!Number.isFinite(v) || v < min) {
    console.error(`soak: --${name} '${text}' is not a number >= ${min}`);
    process.exit(2);
  }
  return v;
};
const nRequests = Math.floor(positive('requests', opts.requests, 10));
const concurrency = Math.floor(positive('concurrency', opts.concurrency, 1));
const warmupFraction = positive('warmup-fraction', opts['warmup-fraction'], 0);
const maxSlope = positive('max-slope', opts['max-slope'], 0);
if (warmupFraction >= 0.9) {
  console.error(`soak: --warmup-fraction ${warmupFraction} leaves too few requests to fit`);
  process.exit(2);
}

const server = await startServer({ model: opts.model ?? lib.MODEL });
const anon = () => {
  const m = processMemory(server.pid);
  return m ? m.rssAnon + m.vmSwap : null;
};
console.log(`soak: server pid ${server.pid} on ${server.baseURL}; ${nRequests} requests, `
  + `concurrency ${concurrency}; RssAnon+VmSwap at start ${mib(anon())} MiB`);

// samples: [requests completed, RssAnon+VmSwap bytes], one after each completed request
const samples = [];
const failures = [];
const counts = { anthropic: 0, openai: 0, stream: 0, plain: 0, outputTokens: 0 };
let next = 0;
let done = 0;
const started = performance.now();

async function worker() {
  for (;;) {
    const i = next++;
    if (i >= nRequests) return;
    const route = i % 2 === 0 ? 'anthropic' : 'openai';
    const stream = Math.floor(i / 2) % 2 === 0;
    const maxTokens = 1 + ((i * 37) % 64);
    const r = await generate(server.baseURL, { route, stream, prompt: prompt(i), maxTokens,
      temperature: i % 3 === 0 ? 0 : 0.8 });
    counts[route]++;
    counts[stream ? 'stream' : 'plain']++;
    counts.outputTokens += r.outputTokens;
    if (!r.ok) failures.push(`request ${i} (${route}, stream ${stream}): ${r.error}`);
    done++;
    const bytes = anon();
    if (bytes !== null) samples.push([done, bytes]);
    if (done % Math.max(1, Math.floor(nRequests / 10)) === 0) {
      console.log(`  ${done}/${nRequests} requests, ${((performance.now() - started) / 1000).toFixed(1)} s, `
        + `RssAnon+VmSwap ${mib(bytes ?? 0)} MiB`);
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = (performance.now() - started) / 1000;

const warmup = Math.floor(nRequests * warmupFraction);
const fitted = samples.filter(([n]) => n > warmup);
const { slope } = fitLine(fitted.map(([n]) => n), fitted.map(([, b]) => b / MiB));
const first = fitted[0]?.[1] ?? 0;
const last = fitted.at(-1)?.[1] ?? 0;
const peak = Math.max(...samples.map(([, b]) => b));
const exit = await server.stop();

console.log(`soak: ${nRequests} requests in ${seconds.toFixed(1)} s (${(nRequests / seconds).toFixed(1)} req/s; `
  + `${counts.anthropic} anthropic, ${counts.openai} openai, ${counts.stream} streaming, `
  + `${counts.outputTokens} output tokens); warm-up ${warmup} requests; peak ${mib(peak)} MiB; `
  + `server exit code ${exit.code}${exit.signal ? ` signal ${exit.signal}` : ''}`);
console.log(`slope: ${slope.toFixed(4)} MiB/request over ${nRequests} requests `
  + `(RssAnon+VmSwap ${mib(first)} MiB -> ${mib(last)} MiB)`);

let failed = false;
if (failures.length) {
  failed = true;
  console.log(`FAIL ${failures.length} request(s) failed; first ones:`);
  for (const f of failures.slice(0, 5)) console.log(`  ${f}`);
}
if (fitted.length < 10) {
  failed = true;
  console.log(`FAIL only ${fitted.length} memory samples after the warm-up: cannot fit a slope`);
}
if (!(slope < maxSlope)) {
  failed = true;
  console.log(`FAIL anonymous memory grows ${slope.toFixed(4)} MiB/request (limit ${maxSlope})`);
}
if (exit.code !== 0) {
  failed = true;
  console.log(`FAIL server exit status ${exit.code} (signal ${exit.signal}) after SIGTERM\n${server.tail(20)}`);
}
process.exit(failed ? 1 : 0);
