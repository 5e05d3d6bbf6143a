// Tier locations: `s3://BUCKET/PREFIX` where a store's history goes under `PREFIX/<store-id>/`, and
// `s3://BUCKET/PREFIX/<store-id>` naming one store's history (restore/log/status --from).
import { badArgument } from '../errors.js';

export interface TierLocation {
  bucket: string;
  /** Key prefix without leading or trailing slash ('' for the bucket's root). */
  prefix: string;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function parseTierUrl(text: string, flag = '--url'): TierLocation {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(text.trim());
  if (!m) throw badArgument(`${flag} "${text}" must be s3://BUCKET[/PREFIX]`);
  if (!BUCKET.test(m[1])) throw badArgument(`${flag} "${text}": "${m[1]}" is not an S3 bucket name (3-63 lower-case letters, digits, '.' or '-')`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '').replace(/\/+/g, '/');
  return { bucket: m[1], prefix };
}

export function tierUrl(loc: TierLocation): string {
  return `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
}

/** The location of one store's history inside a tier location. */
export function storeLocation(loc: TierLocation, storeId: string): TierLocation {
  return { bucket: loc.bucket, prefix: loc.prefix ? `${loc.prefix}/${storeId}` : storeId };
}
