// Never OOM-killed in a memory-limited cgroup under load (MEMORY.md promise 4), for real: the
// server runs in a fresh memory cgroup (v1, or v2 where that holds the memory controller) with a
// 384 MiB limit and a synthetic SmolLM2-135M (Q4_0, 4096-token context); 8 clients (half of them
// streaming) load it while a balloon in the same cgroup takes most of the rest. Checks: no OOM
// kill (the cgroup's oom_kill counter stays 0, server and balloon alive), every non-200 answer
// is a 529 (or a 429 from a full queue), 529s do come while the balloon holds its memory, the
// server serves again once the balloon is gone, and SIGTERM gives exit status 0.
// Needs root and a writable memory cgroup; skips (77) otherwise.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import {
  CACHE_DIR, MiB, PENSIEVE_BIN, SHARED, check, finish, generate, health, mib, poll, prompt, skip,
  sleep, startBalloon, startServer,
} from './lib.mjs';

const LIMIT_BYTES = 384 * MiB;
const CLIENTS = 8;

// --- the cgroup -------------------------------------------------------------------------------
function memoryHierarchy() {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
  const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').map((l) => l.split(':'));
  const v1 = mounts.find((m) => m[2] === 'cgroup' && m[3]?.split(',').includes('memory'));
  if (v1) {
    const line = own.find((l) => l[1]?.split(',').includes('memory'));
    return { version: 1, parent: path.join(v1[1], line ? line[2] : '/') };
  }
  const v2 = mounts.find((m) => m[2] === 'cgroup2');
  if (v2 && readFileSync(path.join(v2[1], 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory')) {
    // v2 puts no processes in an inner cgroup that has controllers on: use the root's child
    try { writeFileSync(path.join(v2[1], 'cgroup.subtree_control'), '+memory'); } catch { /* checked below */ }
    return { version: 2, parent: v2[1] };
  }
  return null;
}

if (process.getuid() !== 0) skip('needs root to create a memory cgroup');
const hierarchy = memoryHierarchy();
if (!hierarchy) skip('no memory cgroup controller is mounted (v1 or v2)');
const dir = path.join(hierarchy.parent, `pensieve-memtest-${process.pid}`);
const file = (v1, v2) => path.join(dir, hierarchy.version === 1 ? v1 : v2);
const limitFile = file('memory.limit_in_bytes', 'memory.max');
try {
  mkdirSync(dir);
  writeFileSync(limitFile, String(LIMIT_BYTES));
} catch (err) {
  try { rmdirSync(dir); } catch { /* never made */ }
  skip(`cannot create a memory cgroup with a limit under ${hierarchy.parent}: ${err.message}`);
}

function cgroupPids() {
  try {
    return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
// Synchronous, so that it also runs from the 'exit' handler.
function removeCgroup() {
  if (!existsSync(dir)) return;
  for (const pid of cgroupPids()) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  console.log(`warning: could not remove ${dir}`);
}
process.on('exit', removeCgroup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1));

const readNumber = (name) => {
  try { return Number(readFileSync(path.join(dir, name), 'utf8').trim()); } catch { return NaN; }
};
const usage = () => readNumber(hierarchy.version === 1 ? 'memory.usage_in_bytes' : 'memory.current');
function oomKills() {
  const text = readFileSync(file('memory.oom_control', 'memory.events'), 'utf8');
  const m = /^oom_kill (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}
// a prefix that moves the process into the cgroup and then becomes the command
const wrap = ['sh', '-c', 'echo $$ > "$0" && exec "$@"', path.join(dir, 'cgroup.procs')];

// --- the model: synthetic SmolLM2-135M, Q4_0, made once and kept in the build folder ----------
const model = path.join(CACHE_DIR, 'smollm2-135m-q4_0.gguf');
if (!existsSync(model)) {
  mkdirSync(CACHE_DIR, { recursive: true });
  const f16 = `${model}.f16.tmp`;
  const partial = `${model}.tmp`;
  const t0 = performance.now();
  execFileSync(PENSIEVE_BIN, ['synth', 'smollm2-135m', '-o', f16, '--seed', '1',
    '--vocab', path.join(SHARED, 'vocab', 'ggml-vocab-starcoder.gguf')], { stdio: 'inherit' });
  execFileSync(PENSIEVE_BIN, ['quantize', f16, partial, 'Q4_0'], { stdio: 'inherit' });
  rmSync(f16);
  renameSync(partial, model);
  console.log(`made ${model} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

// --- the run ----------------------------------------------------------------------------------
const statuses = {};        // HTTP status -> count, all phases
const phaseStatuses = { before: {}, balloon: {}, after: {} };
const problems = [];        // answers that are neither 200-and-complete, 529 nor 429
let phase = 'before';
let loadOn = true;
let server = null;
let balloons = [];

async function client(c) {
  for (let i = 0; loadOn; i++) {
    const route = c % 4 === 3 ? 'openai' : 'anthropic';
    const r = await generate(server.baseURL, { route, stream: c % 2 === 0,
      prompt: prompt(c * 1000 + i), maxTokens: 4 + (i % 5) });
    const key = r.status || 'no answer';
    statuses[key] = (statuses[key] ?? 0) + 1;
    phaseStatuses[phase][key] = (phaseStatuses[phase][key] ?? 0) + 1;
    if (r.status === 529 || r.status === 429) {
      await sleep(100);
    } else if (!r.ok) {
      problems.push(`client ${c} (${phase}): ${r.error}`);
      if (!r.status) await sleep(100);
    }
  }
}

try {
  console.log(`cgroup: v${hierarchy.version} ${dir}, limit ${mib(LIMIT_BYTES)} MiB`);
  const oomBefore = oomKills();
  server = await startServer({
    model, wrap,
    args: ['--ctx', 1024, '--parallel', 4, '--max-body-bytes', '1MiB', '--memory-caution', '40%', '--memory-warning', '30%',
      '--memory-critical', '20%', '--memory-emergency', 0, '--memory-poll-ms', 100],
  });
  const h0 = await health(server.baseURL);
  console.log(`server pid ${server.pid}: cgroup usage ${mib(usage())} MiB; health HTTP ${h0.status} `
    + `tier ${h0.body?.tier} budget ${mib(h0.body?.budget?.total_bytes ?? 0)} MiB`);
  const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
  await sleep(3000);

  // The balloon leaves ~40 MiB of headroom: well under the critical threshold (20% = 77 MiB).
  // From the Warning tier on the server gives memory back (it drops its prefix cache and
  // returns the free KV blocks' pages), so the balloon is topped up while that frees room.
  phase = 'balloon';
  const isCritical = async () => {
    const h = await health(server.baseURL);
    return ['critical', 'emergency'].includes(h.body?.tier) ? h : null;
  };
  for (let round = 0; round < 4 && !(await isCritical()); round++) {
    const balloonBytes = LIMIT_BYTES - usage() - 40 * MiB;
    if (balloonBytes < 8 * MiB) break;
    balloons.push(await startBalloon(balloonBytes, { wrap }));
    console.log(`balloon of ${mib(balloonBytes)} MiB in the cgroup: usage ${mib(usage())} MiB`);
    await sleep(1500);
  }
  const critical = await poll(isCritical, 15_000);
  check(critical, `the tier did not reach critical within 15 s (usage ${mib(usage())} MiB of ${mib(LIMIT_BYTES)})`);
  await sleep(3000);
  console.log(`under the balloon: usage ${mib(usage())} MiB, statuses ${JSON.stringify(phaseStatuses.balloon)}`);
  for (const b of balloons) {
    const balloonExit = await b.stop();
    check(balloonExit.code === 0, `a balloon was killed (code ${balloonExit.code}, signal ${balloonExit.signal})`);
  }
  balloons = [];

  phase = 'after';
  const recovered = await poll(async () => (await health(server.baseURL)).status === 200, 15_000);
  check(recovered, 'the server did not accept requests within 15 s of the balloon exiting');
  await poll(async () => (phaseStatuses.after[200] ?? 0) >= 2, 20_000);
  loadOn = false;
  await Promise.all(clients);

  const oomAfter = oomKills();
  const alive = server.exitInfo === null;
  const failcnt = hierarchy.version === 1 ? readNumber('memory.failcnt') : NaN;
  const maxUsage = hierarchy.version === 1 ? readNumber('memory.max_usage_in_bytes') : readNumber('memory.peak');
  const exit = await server.stop();
  console.log(`statuses: ${JSON.stringify(statuses)}; by phase ${JSON.stringify(phaseStatuses)}`);
  console.log(`oom_kill ${oomBefore} -> ${oomAfter}; failcnt ${failcnt}; peak usage ${mib(maxUsage)} MiB `
    + `of ${mib(LIMIT_BYTES)} MiB; server alive before SIGTERM: ${alive}; exit code ${exit.code}`);
  check(oomAfter === oomBefore, `the cgroup OOM-killed ${oomAfter - oomBefore} process(es)`);
  check(alive, `the server died under load (code ${server.exitInfo?.code}, signal ${server.exitInfo?.signal})\n${server.tail(30)}`);
  check(problems.length === 0, `${problems.length} answer(s) neither 200, 529 nor 429: ${problems.slice(0, 5).join('; ')}`);
  check((phaseStatuses.balloon[529] ?? 0) > 0, 'no 529 while the balloon held the cgroup near its limit');
  check((phaseStatuses.before[200] ?? 0) > 0, 'no request succeeded before the balloon');
  check((phaseStatuses.after[200] ?? 0) > 0, 'no request succeeded after the balloon');
  check(exit.code === 0, `exit status ${exit.code} (signal ${exit.signal}) after SIGTERM, want 0\n${server.tail(20)}`);
} catch (err) {
  check(false, `${err.message}${server ? `\n${server.tail(30)}` : ''}`);
} finally {
  loadOn = false;
  for (const b of balloons) await b.stop();
  if (server && !server.exitInfo) await server.stop();
  removeCgroup();
}
finish('memory.cgroup');
