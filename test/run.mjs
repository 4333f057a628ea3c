// Runs every compiled test (dist/test/**/*.test.js) with node's own test runner, one `node --test`
// process per file, two files at a time, each file's TAP output printed whole when it ends.
//
// Why not a single `node --test a.js b.js …`: once in a full run, a test file's process sat idle
// forever before running its first test (Node 20's runner then waits with it, and CI times out with
// nothing to show). Here a file that prints nothing for GEOTFR_TEST_IDLE_S seconds (default 300;
// the slowest test file takes under a minute) is killed and run once more, and the run says so; a
// file that hangs twice fails. The closing lines add up every file: `# pass N`, `# fail N`,
// `# skipped N`, then `N passed, N failed`.
//
// Emulator-backed tests live under dist/test/stack and need the services .ci/run starts;
// GEOTFR_TEST_FILTER=substring narrows the run while developing.
//
// Every file runs with TMPDIR set to a private directory; a `geotfr-*` entry still in it when the
// file ends is a test that did not clean up after itself, and fails that file (issue 11 item 5).
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', process.env.GEOTFR_DIST ?? 'dist', 'test');
const files = [];
(function walk(d) {
  for (const name of readdirSync(d).sort()) {
    const p = path.join(d, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
})(root);
const filter = process.env.GEOTFR_TEST_FILTER;
const chosen = filter ? files.filter((f) => f.includes(filter)) : files;
if (!chosen.length) {
  console.error(`no test files under ${root}${filter ? ` matching ${filter}` : ''}`);
  process.exit(1);
}
const idleMs = Number(process.env.GEOTFR_TEST_IDLE_S ?? 300) * 1000;
const runTmp = mkdtempSync(path.join(os.tmpdir(), 'geotfr-testrun-'));
const env = { METADATA_SERVER_DETECTION: 'none', ...process.env };
let tmpSeq = 0;

/** One `node --test FILE`: its TAP output, exit status, and whether it went silent and was killed. */
function runFile(file) {
  const tmp = path.join(runTmp, String(tmpSeq++));
  mkdirSync(tmp);
  return new Promise((resolve) => {
    // Its own process group, so a kill also reaches the file's process under the runner and what it started.
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', file], {
      env: { ...env, TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const out = [];
    let hung = false;
    let timer;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        hung = true;
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, idleMs);
    };
    const take = (d) => {
      out.push(d);
      arm();
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    arm();
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const left = readdirSync(tmp).filter((n) => n.startsWith('geotfr-'));
      rmSync(tmp, { recursive: true, force: true });
      resolve({ text: Buffer.concat(out).toString('utf8'), code, signal, hung, left });
    });
  });
}

/** The totals a file's TAP output ends with (`# pass N` …); absent counts are 0. */
function counts(text) {
  const get = (k) => {
    const m = [...text.matchAll(new RegExp(`^# ${k} (\\d+)$`, 'gm'))].pop();
    return m ? Number(m[1]) : 0;
  };
  return { tests: get('tests'), pass: get('pass'), fail: get('fail'), skipped: get('skipped'), cancelled: get('cancelled'), todo: get('todo') };
}

const total = { tests: 0, pass: 0, fail: 0, skipped: 0, cancelled: 0, todo: 0 };
const failedFiles = [];
const rel = (f) => path.relative(process.cwd(), f);

async function runWithRetry(file) {
  let r = await runFile(file);
  if (r.hung) {
    process.stdout.write(`# ${rel(file)}: no output for ${idleMs / 1000} s; killed it and running it once more\n`);
    r = await runFile(file);
  }
  const c = counts(r.text);
  // A file that crashed, hung again or exited non-zero without a failing test still fails the run.
  if (r.hung || r.code !== 0 || r.left.length) c.fail = Math.max(c.fail, 1);
  process.stdout.write(`# ── ${rel(file)}\n${r.text}${r.text.endsWith('\n') ? '' : '\n'}`);
  if (r.left.length) process.stdout.write(`not ok - ${rel(file)} left ${r.left.length} geotfr-* entries in TMPDIR: ${r.left.slice(0, 10).join(', ')}\n`);
  if (r.hung) process.stdout.write(`not ok - ${rel(file)}: no output for ${idleMs / 1000} s, twice\n`);
  for (const k of Object.keys(total)) total[k] += c[k];
  if (c.fail) failedFiles.push(rel(file));
}

const queue = [...chosen];
await Promise.all(
  Array.from({ length: Math.min(2, queue.length) }, async () => {
    for (let f = queue.shift(); f; f = queue.shift()) await runWithRetry(f);
  }),
);

rmSync(runTmp, { recursive: true, force: true });
process.stdout.write(`# files ${chosen.length}\n`);
for (const k of Object.keys(total)) process.stdout.write(`# ${k} ${total[k]}\n`);
if (failedFiles.length) process.stdout.write(`# failing files: ${failedFiles.join(', ')}\n`);
process.stdout.write(`${total.pass} passed, ${total.fail} failed\n`);
process.exitCode = total.fail === 0 && failedFiles.length === 0 ? 0 : 1;
