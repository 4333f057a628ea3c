/**
 * `npm run stack` as users run it: `node dist/test/stack/stack.js` prints exactly one
 * `STACK READY {json}` line with the documented keys, serves, and on SIGTERM stops everything,
 * including the Pub/Sub emulator's process group (its port is closed afterwards).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { distRoot } from '../support/oracles.js';
import { needPubsubEmulator } from './helpers.js';

const portOpen = (hostPort: string) =>
  new Promise<boolean>((resolve) => {
    const [host, port] = hostPort.replace(/^https?:\/\//, '').split(':');
    const s = net.connect(Number(port), host!, () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

test('npm run stack prints STACK READY with the documented keys and stops everything on SIGTERM', { timeout: 240_000 }, async (t) => {
  if (!needPubsubEmulator(t)) return;
  const child = spawn(process.execPath, [path.join(distRoot, 'test', 'stack', 'stack.js')], {
    env: { ...process.env, GEOTFR_LOG_LEVEL: 'NONE' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const ready = await new Promise<Record<string, any>>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('STACK READY '));
      if (line && out.includes('\n')) resolve(JSON.parse(line.slice('STACK READY '.length)));
    });
    child.once('exit', (code) => reject(new Error(`stack exited ${code} before READY:\n${err}`)));
  });
  for (const k of ['pubsubHost', 'storageHost', 'projectId', 'requestTopic', 'bucket']) assert.equal(typeof ready[k], 'string', k);
  assert.deepEqual(Object.keys(ready.buckets).sort(), ['exports', 'predictions', 'sources']);
  assert.equal(ready.bucket, ready.buckets.exports);
  assert.equal(await portOpen(ready.pubsubHost), true);
  const emu = await fetch(`http://${ready.pubsubHost}/`);
  assert.equal((await emu.text()).trim(), 'Ok');
  for (const b of Object.values(ready.buckets as Record<string, string>)) assert.equal((await fetch(`${ready.storageHost}/storage/v1/b/${b}`)).status, 200, b);
  const topics = (await (await fetch(`http://${ready.pubsubHost}/v1/projects/${ready.projectId}/topics`)).json()) as { topics: { name: string }[] };
  assert.ok(topics.topics.some((x) => x.name.endsWith(`/topics/${ready.requestTopic}`)));
  // An empty POST to planExport is a clear 400, not a crash.
  const bad = await fetch(ready.functions.planExport, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' });
  assert.equal(bad.status, 400);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, err);
  assert.equal(out.split('\n').filter((l) => l.startsWith('STACK READY')).length, 1);
  for (const hp of [ready.pubsubHost, ready.storageHost, ...Object.values(ready.functions as Record<string, string>)])
    assert.equal(await portOpen(hp), false, `${hp} still listening`);
});

/** Child processes of `pid` whose command line contains `match` (from /proc, so no pids need be printed). */
function childrenMatching(pid: number, match: string): number[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' }).trim();
  return out
    .split('\n')
    .filter((l) => l.includes(match))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

test('npm run stack stops cleanly on SIGTERM after one of its function instances died', { timeout: 120_000 }, async (t) => {
  if (!needPubsubEmulator(t)) return;
  const child = spawn(process.execPath, [path.join(distRoot, 'test', 'stack', 'stack.js'), '--workers', '2'], {
    env: { ...process.env, GEOTFR_LOG_LEVEL: 'NONE' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const ready = await new Promise<Record<string, any>>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('STACK READY '));
      if (line && out.includes('\n')) resolve(JSON.parse(line.slice('STACK READY '.length)));
    });
    void exited.then((code) => reject(new Error(`stack exited ${code} before READY:\n${err}`)));
  });
  // A worker instance dies (SIGKILL: no goodbye), and stays dead.
  const [victim] = childrenMatching(child.pid!, 'exportShard');
  assert.ok(victim, "no exportShard instance among the stack's children");
  const gone = new Promise<void>((resolve) => {
    const poll = () => (childrenMatching(child.pid!, 'exportShard').includes(victim!) ? setTimeout(poll, 100) : resolve());
    poll();
  });
  process.kill(victim!, 'SIGKILL');
  await gone;
  child.kill('SIGTERM');
  // Before the fix the stack waited forever for that instance's 'exit', leaving the emulator running.
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running after 60 s'), 60_000).unref())]);
  if (code !== 0) {
    child.kill('SIGKILL');
    // Do not leave the emulator of a hung stack behind (its own process group, found by its port).
    const port = ready.pubsubHost.split(':')[1];
    for (const l of execFileSync('ps', ['-eo', 'pgid=,args='], { encoding: 'utf8' }).split('\n'))
      if (l.includes('pubsub-emulator') && l.includes(`--port=${port}`)) process.kill(-Number(l.trim().split(/\s+/)[0]), 'SIGKILL');
  }
  assert.equal(code, 0, err);
  for (const hp of [ready.pubsubHost, ready.storageHost]) assert.equal(await portOpen(hp), false, `${hp} still listening`);
});
