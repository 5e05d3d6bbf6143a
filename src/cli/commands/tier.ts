// `rewind tier`: sets a store's second tier up (tier.json); `rewind serve` then ships its sealed
// history there in the background. Checks the location is usable first (the bucket is created when
// missing; credentials come from the usual AWS environment variables or profile).
import type { Io } from '../io.js';
import { readConfig } from '../../config.js';
import { nodeStorage } from '../../storage/node-storage.js';
import { S3ObjectStore } from '../../tier/s3-store.js';
import { ManifestLog } from '../../tier/manifest.js';
import { writeTierConfig, readTierConfig } from '../../tier/tier-config.js';
import { parseTierUrl, storeLocation, tierUrl } from '../../tier/url.js';
import { formatRetention, parseRetention } from '../../lifecycle/retention.js';
import { badArgument } from '../../errors.js';
import { EXIT } from '../exit-codes.js';

export interface TierOptions {
  url?: string;
  endpoint?: string;
  region?: string;
  tierRetain?: string;
  json?: boolean;
}

export async function tierCommand(io: Io, store: string, opts: TierOptions): Promise<number> {
  readConfig(nodeStorage, store); // a store it is (exit 3 otherwise)
  if (opts.url === undefined) {
    const c = readTierConfig(nodeStorage, store);
    if (!c) throw badArgument(`${store} has no tier set up: give --url s3://BUCKET[/PREFIX]`);
    const where = tierUrl(storeLocation(parseTierUrl(c.url), c.storeId));
    io.out(opts.json ? JSON.stringify({ url: c.url, location: where, storeId: c.storeId, endpoint: c.endpoint ?? null, retain: c.retain ?? null }) + '\n' : `tier ${where}${c.endpoint ? ` at ${c.endpoint}` : ''}\n`);
    return EXIT.OK;
  }
  const loc = parseTierUrl(opts.url);
  const retain = opts.tierRetain === undefined ? undefined : formatRetention(parseRetention(opts.tierRetain));
  const old = readTierConfig(nodeStorage, store);
  const storeId = old?.storeId;
  // Reach the service before anything is written: the bucket exists (or is made), the manifest reads.
  const bucket = new S3ObjectStore({ bucket: loc.bucket, prefix: '' }, { endpoint: opts.endpoint, region: opts.region });
  try {
    await bucket.ensureBucket();
  } finally {
    bucket.close();
  }
  if (storeId) {
    const s3 = new S3ObjectStore(storeLocation(loc, storeId), { endpoint: opts.endpoint, region: opts.region });
    try {
      await new ManifestLog(s3).latest();
    } finally {
      s3.close();
    }
  }
  const c = await writeTierConfig(nodeStorage, store, { url: tierUrl(loc), endpoint: opts.endpoint, region: opts.region, retain });
  const where = tierUrl(storeLocation(loc, c.storeId));
  if (opts.json) io.out(JSON.stringify({ url: c.url, location: where, storeId: c.storeId, endpoint: c.endpoint ?? null, retain: c.retain ?? null }) + '\n');
  else io.out(`tier set up: ${store} ships to ${where}${c.endpoint ? ` at ${c.endpoint}` : ''} while \`rewind serve\` runs; restore elsewhere with \`rewind restore --from ${where} ...\`\n`);
  return EXIT.OK;
}
