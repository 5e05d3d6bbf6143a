// The S3 endpoint the tier tests run against: REWIND_TIER_ENDPOINT (with the usual AWS_* credential
// variables), as .ci/run sets it after starting scripts/ceph-dev.sh, or any other S3 service. With
// no endpoint the tests fail in CI and skip elsewhere.
import { randomUUID } from 'node:crypto';
import { S3ObjectStore } from '../../src/tier/s3-store.js';

export const TIER_BUCKET = process.env.REWIND_TIER_BUCKET ?? 'rewind-tests';

export function s3Endpoint(): string | null {
  const e = process.env.REWIND_TIER_ENDPOINT;
  if (e) return e;
  if (process.env.CI) throw new Error('REWIND_TIER_ENDPOINT is not set: CI must start scripts/ceph-dev.sh (or give an S3 endpoint) before the tier tests');
  return null;
}

/** A fresh prefix per test file, so runs never see each other's objects. */
export function freshPrefix(name: string): string {
  return `${name}-${randomUUID().slice(0, 8)}`;
}

export async function bucketReady(endpoint: string): Promise<void> {
  const s = new S3ObjectStore({ bucket: TIER_BUCKET, prefix: '' }, { endpoint });
  await s.ensureBucket();
  s.close();
}
