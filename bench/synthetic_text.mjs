// Deterministic English-like text for load generation: a Claude-Code-like system prompt with tool
// definitions, and user messages, each sized in approximate tokens (about 4 characters a token).

export const CHARS_PER_TOKEN = 4;

/** A small seeded PRNG (mulberry32); returns floats in [0, 1). */
export function makeRng(seed) {
  let a = (Number(seed) >>> 0) || 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes several integers into one seed, so that (seed, conversation, turn) give distinct texts. */
export function mixSeed(...parts) {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (Number(p) >>> 0), 0x01000193) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  return h;
}

const pick = (rng, list) => list[Math.floor(rng() * list.length)];

const SUBJECTS = ['the assistant', 'the agent', 'each tool call', 'the user', 'the session',
  'every edit', 'the working tree', 'the test suite', 'a background task', 'the shell'];
const VERBS = ['must check', 'should read', 'never changes', 'always reports', 'prefers',
  'may run', 'keeps', 'explains', 'verifies', 'summarizes', 'avoids', 'updates', 'searches'];
const OBJECTS = ['the file before editing it', 'the exact error message', 'a short plan',
  'the relevant tests', 'unrelated files', 'the project conventions', 'the build output',
  'large directories', 'secrets and credentials', 'the diff', 'the todo list', 'the import graph',
  'a minimal reproduction', 'the commit history', 'the configuration file'];
const TAILS = ['when it is unsure', 'before answering', 'after every change', 'in one sentence',
  'unless the user asks otherwise', 'with absolute paths', 'without guessing', 'as soon as possible',
  'in the same style', 'for each step', 'and stops there'];
const NOUNS = ['path', 'pattern', 'command', 'timeout', 'offset', 'limit', 'content', 'url',
  'prompt', 'query', 'glob', 'description', 'old_string', 'new_string', 'notebook', 'cell'];
const TYPES = ['string', 'integer', 'boolean', 'array', 'number'];
const TOOLS = ['Bash', 'Read', 'Edit', 'Write', 'Glob', 'Grep', 'WebFetch', 'WebSearch',
  'TodoWrite', 'Task', 'NotebookEdit', 'MultiEdit', 'LS', 'ExitPlanMode', 'BashOutput', 'KillShell'];
const FILES = ['src/server/http.cpp', 'src/engine/scheduler.cpp', 'README.md', 'CMakeLists.txt',
  'tests/e2e/server.mjs', 'src/model/forward.cpp', 'docs/ARCHITECTURE.md', 'src/core/log.h'];
const ASKS = ['Can you look at', 'Please fix the failing test in', 'Explain what happens in',
  'Add a short comment to', 'Find where the timeout is set in', 'Rename the helper in',
  'Why does the build warn about', 'Write a unit test for'];
const DETAILS = ['it crashes on empty input', 'the error message is unclear', 'it is too slow',
  'the output has trailing spaces', 'a log line is missing', 'the numbers look off by one',
  'it ignores the config value', 'the second call hangs'];

function sentence(rng) {
  const s = `${pick(rng, SUBJECTS)} ${pick(rng, VERBS)} ${pick(rng, OBJECTS)} ${pick(rng, TAILS)}.`;
  return s[0].toUpperCase() + s.slice(1);
}

function toolDefinition(rng, name) {
  const names = new Set();
  const n = 1 + Math.floor(rng() * 4);
  while (names.size < n) names.add(pick(rng, NOUNS));
  const params = [...names].map((p) =>
    `    "${p}": {"type": "${pick(rng, TYPES)}", "description": "${sentence(rng)}"}`);
  return `## ${name}\n${sentence(rng)} ${sentence(rng)}\nParameters:\n{\n${params.join(',\n')}\n}\n`;
}

/** Cuts `text` to at most `n_chars` characters, at a word boundary when one is near. */
function cutTo(text, n_chars) {
  if (text.length <= n_chars) return text;
  const cut = text.slice(0, n_chars);
  const space = cut.lastIndexOf(' ');
  return space > n_chars * 0.8 ? cut.slice(0, space) : cut;
}

/** The shared system prompt: instructions, then tool definitions; about `n_tokens` tokens. */
export function systemPrompt(seed, n_tokens) {
  if (n_tokens <= 0) return '';
  const rng = makeRng(mixSeed(seed, 0x5157));
  const target = Math.max(1, Math.round(n_tokens * CHARS_PER_TOKEN));
  let text = 'You are an interactive command line coding agent. Follow these instructions.\n';
  let paragraph = 0;
  while (text.length < target * 0.3) {
    text += `\n${++paragraph}. ${sentence(rng)} ${sentence(rng)} ${sentence(rng)}`;
  }
  text += '\n\n# Tools\n';
  let round = 0;
  while (text.length < target) {
    for (const name of TOOLS) {
      if (text.length >= target) break;
      text += toolDefinition(rng, round === 0 ? name : `${name}${round + 1}`);
    }
    round++;
  }
  return cutTo(text, target);
}

/** One user message of about `n_tokens` tokens; `label` makes it distinct from all others. */
export function userMessage(seed, n_tokens, label = '') {
  const rng = makeRng(mixSeed(seed, 0x75736572));
  const target = Math.max(1, Math.round(n_tokens * CHARS_PER_TOKEN));
  const detail = pick(rng, DETAILS);
  let text = `${label}${pick(rng, ASKS)} ${pick(rng, FILES)}? ${detail[0].toUpperCase()}${detail.slice(1)}.`;
  while (text.length < target) text += ` ${sentence(rng)}`;
  return cutTo(text, target);
}
