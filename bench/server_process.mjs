// Starts `pensieve serve -m MODEL --port 0 ...` for a benchmark run and stops it with SIGTERM.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import readline from 'node:readline';

const LISTEN_RE = /pensieve: listening on (http:\/\/\S+?:\d+)/;
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 40_000; // longer than the server's default 30 s drain

/** Splits a command-line string into words; single and double quotes group words. */
export function splitArgs(text) {
  const words = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m;
  while ((m = re.exec(text ?? '')) !== null) words.push(m[1] ?? m[2] ?? m[3]);
  return words;
}

/** Resolves to {baseURL, pid, tail(n), stop()}; rejects with the server's stderr when it fails to start. */
export async function startServer(bin, model, extraArgs = []) {
  if (!existsSync(bin)) throw new Error(`the pensieve binary ${bin} does not exist`);
  if (!existsSync(model)) throw new Error(`the model file ${model} does not exist`);
  const args = ['serve', '-m', model, '--port', '0', ...extraArgs];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = [];
  let onLine = null;
  readline.createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
    lines.push(line);
    if (lines.length > 2000) lines.shift();
    if (onLine) onLine(line);
  });
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve((exitInfo = { code, signal })));
  });
  const killOnExit = () => { if (!exitInfo) child.kill('SIGKILL'); };
  process.on('exit', killOnExit);
  const tail = (n = 30) => lines.slice(-n).join('\n');

  const baseURL = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pensieve did not print its listening line within ${START_TIMEOUT_MS / 1000} s:\n${tail()}`));
    }, START_TIMEOUT_MS);
    onLine = (line) => {
      const m = LISTEN_RE.exec(line);
      if (m) {
        clearTimeout(timer);
        onLine = null;
        resolve(m[1]);
      }
    };
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${bin}: ${err.message}`));
    });
    exited.then(async (info) => {
      clearTimeout(timer);
      await new Promise((r) => setTimeout(r, 50)); // let the last stderr lines arrive
      reject(new Error(`pensieve exited before listening (code ${info.code}, signal ${info.signal}):\n${tail()}`));
    });
  });

  const stop = async () => {
    if (!exitInfo) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        process.stderr.write(`replay: pensieve (pid ${child.pid}) ignored SIGTERM for ${STOP_TIMEOUT_MS / 1000} s; sending SIGKILL\n`);
        child.kill('SIGKILL');
      }, STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    process.off('exit', killOnExit);
    return exitInfo;
  };
  return { baseURL, pid: child.pid, args, tail, stop };
}
