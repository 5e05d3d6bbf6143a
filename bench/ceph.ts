// An S3 endpoint for the tier bench: REWIND_TIER_ENDPOINT (with the AWS_* credentials in the
// environment) when given, else a single-node Ceph of its own, started with scripts/ceph-dev.sh on
// free ports in a temporary directory and stopped (directory removed) by close().
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from './held-points.js';
import { freePort, root } from './servers.js';

export interface S3Endpoint {
  endpoint: string;
  /** 'started': a Ceph this process started (ceph-dev.sh); 'given': REWIND_TIER_ENDPOINT. */
  kind: 'started' | 'given';
  /** The credentials and endpoint, as environment variables for the rewind commands. */
  env: Record<string, string>;
  close(): Promise<void>;
}

const script = join(root, 'scripts', 'ceph-dev.sh');

/** The endpoint to bench against, or null (with the reason logged) when there is none and Ceph is not installed. */
export async function s3ForBench(log: (m: string) => void): Promise<S3Endpoint | null> {
  const given = process.env.REWIND_TIER_ENDPOINT;
  if (given) return { endpoint: given, kind: 'given', env: { REWIND_TIER_ENDPOINT: given }, close: async () => undefined };
  const have = await exec('sh', ['-c', 'command -v ceph-mon && command -v radosgw']);
  if (have.code !== 0) {
    log('tier: no REWIND_TIER_ENDPOINT and Ceph is not installed (apt-get install -y ceph radosgw): skipping');
    return null;
  }
  const parent = mkdtempSync(join(tmpdir(), 'rewind-bench-ceph-'));
  const dir = join(parent, 'ceph');
  const ports = { CEPH_DEV_MON_PORT: String(await freePort()), CEPH_DEV_RGW_PORT: String(await freePort()) };
  const t0 = performance.now();
  const started = await execEnv(script, ['start', dir], ports);
  const stopCeph = async () => {
    await exec(script, ['stop', dir]);
    rmSync(parent, { recursive: true, force: true });
  };
  if (started.code !== 0) {
    await stopCeph();
    throw new Error(`scripts/ceph-dev.sh start exited ${started.code}: ${started.stderr.trim().slice(-2000)}`);
  }
  log(`tier: started Ceph in ${((performance.now() - t0) / 1000).toFixed(1)} s (radosgw on 127.0.0.1:${ports.CEPH_DEV_RGW_PORT})`);
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(dir, 's3.env'), 'utf8').split('\n')) {
    const m = /^([A-Z_0-9]+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2];
  }
  return { endpoint: env.REWIND_TIER_ENDPOINT, kind: 'started', env, close: stopCeph };
}

/** Sets the variables in this process's environment (children inherit it); returns the undo. */
export function applyEnv(env: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** Runs with `env` added (spawn copies the environment at once, so the undo can follow right away). */
function execEnv(cmd: string, args: string[], env: Record<string, string>) {
  const undo = applyEnv(env);
  try {
    return exec(cmd, args);
  } finally {
    undo();
  }
}
