/**
 * The real Pub/Sub emulator (google-cloud-cli's `cloud-pubsub-emulator`, a Java program; ECOSYSTEM.md),
 * started in its own process group so stopping it kills the JVM and its launcher together.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A free TCP port on 127.0.0.1 (bound then released; fine for a local stack). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Path of the emulator launcher, or undefined when google-cloud-cli (with the emulator) is missing. */
export function emulatorPath(): string | undefined {
  if (process.env.GEOTFR_PUBSUB_EMULATOR) return process.env.GEOTFR_PUBSUB_EMULATOR;
  try {
    const root = execFileSync('gcloud', ['info', '--format=value(installation.sdk_root)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const p = path.join(root, 'platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');
    return existsSync(p) ? p : undefined;
  } catch {
    return undefined;
  }
}

export interface Emulator {
  host: string;
  port: number;
  stop(): Promise<void>;
}

/** Starts the emulator and waits until `GET /` answers `Ok` (about 2 s). */
export async function startPubsubEmulator(port?: number, opts: { timeoutMs?: number; log?: (line: string) => void } = {}): Promise<Emulator> {
  const bin = emulatorPath();
  if (!bin) throw new Error('Pub/Sub emulator not found (install google-cloud-cli with the pubsub emulator component, or set GEOTFR_PUBSUB_EMULATOR)');
  const p = port ?? (await freePort());
  const child: ChildProcess = spawn(bin, [`--host=127.0.0.1`, `--port=${p}`], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-4000);
    opts.log?.(d.toString());
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited = false;
  const exitedP = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const stop = async () => {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {}
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {}
    }, 3000);
    await exitedP;
    clearTimeout(t);
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (exited) throw new Error(`Pub/Sub emulator exited during start-up:\n${output}`);
    try {
      const r = await fetch(`http://127.0.0.1:${p}/`, { signal: AbortSignal.timeout(1000) });
      if ((await r.text()).trim() === 'Ok') return { host: `127.0.0.1:${p}`, port: p, stop };
    } catch {}
    await new Promise((r) => setTimeout(r, 150));
  }
  await stop();
  throw new Error(`Pub/Sub emulator did not become ready on port ${p}:\n${output}`);
}
