// The tier's object store over S3 (radosgw, or any S3 service): the only module that knows the AWS
// SDK. Credentials come the SDK's usual way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE,
// ~/.aws). Requests go through withRetries (the SDK's own retries are off, so there is one policy);
// files over MULTIPART_BYTES are uploaded in parts, a few at once.
import { createReadStream } from 'node:fs';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  GetObjectCommand, HeadBucketCommand, PutObjectCommand, S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3';
import { forEachBounded } from './bounded.js';
import { tierFailed } from '../errors.js';
import { objectKey, type ObjectStore } from './object-store.js';
import { DEFAULT_RETRY, withRetries, type RetryPolicy } from './retry.js';
import { tierUrl, type TierLocation } from './url.js';

/**
 * Files larger than this go up in parts of PART_BYTES, PARTS_IN_FLIGHT at a time, each part streamed
 * from its range of the file. (lib-storage's Upload assembled every part in memory: serve's resident
 * memory passed 500 MB while it shipped 64 MiB journal segments beside a full-speed write.)
 */
export const MULTIPART_BYTES = 32 * 2 ** 20;
const PART_BYTES = 16 * 2 ** 20;
const PARTS_IN_FLIGHT = 4;
const CONNECT_TIMEOUT_MS = 5_000;
/** No byte moving for this long fails the request (then it is retried). */
const REQUEST_TIMEOUT_MS = 30_000;

export interface S3Options {
  /** e.g. http://127.0.0.1:7480 (radosgw); absent: the SDK's default for the region. */
  endpoint?: string;
  region?: string;
  retry?: RetryPolicy;
}

/** The endpoint from the environment when none is given (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL). */
export function endpointFromEnv(): string | undefined {
  return process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined;
}

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
const nameOf = (err: unknown) => (err as { name?: string }).name;

export class S3ObjectStore implements ObjectStore {
  readonly where: string;
  private readonly client: S3Client;
  private readonly retry: RetryPolicy;

  constructor(private readonly loc: TierLocation, opts: S3Options = {}) {
    this.where = tierUrl(loc);
    this.retry = opts.retry ?? DEFAULT_RETRY;
    const endpoint = opts.endpoint ?? endpointFromEnv();
    this.client = new S3Client({
      endpoint,
      region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      // radosgw and most S3-compatible services want path-style addressing at a custom endpoint.
      forcePathStyle: endpoint !== undefined,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      // A service killed in the middle of a request must fail it, not leave it hanging.
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
    });
  }

  private key(key: string): string {
    return objectKey(this.loc.prefix, key);
  }

  private async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withRetries(this.retry, fn);
    } catch (err) {
      throw tierFailed(`${this.where}: ${what}`, err);
    }
  }

  /** Creates the bucket when it does not exist (for `rewind tier`). */
  async ensureBucket(): Promise<void> {
    await this.run(`bucket ${this.loc.bucket}`, async () => {
      try {
        await this.client.send(new HeadBucketCommand({ Bucket: this.loc.bucket }));
      } catch (err) {
        if (statusOf(err) !== 404 && nameOf(err) !== 'NotFound' && nameOf(err) !== 'NoSuchBucket') throw err;
        await this.client.send(new CreateBucketCommand({ Bucket: this.loc.bucket }));
      }
    });
  }

  put(key: string, body: Buffer, opts: { ifAbsent?: boolean } = {}): Promise<boolean> {
    return this.run(`put ${key}`, async () => {
      try {
        await this.client.send(new PutObjectCommand({ Bucket: this.loc.bucket, Key: this.key(key), Body: body, IfNoneMatch: opts.ifAbsent ? '*' : undefined }));
        return true;
      } catch (err) {
        // 412: it exists. 409: a create of the same key is in flight (some services say so instead).
        if (opts.ifAbsent && (statusOf(err) === 412 || statusOf(err) === 409 || nameOf(err) === 'PreconditionFailed')) return false;
        throw err;
      }
    });
  }

  putFile(key: string, path: string, bytes: number): Promise<void> {
    return this.run(`upload ${key} (${bytes} bytes)`, async () => {
      if (bytes <= MULTIPART_BYTES) {
        await this.client.send(new PutObjectCommand({ Bucket: this.loc.bucket, Key: this.key(key), Body: createReadStream(path, { start: 0, end: bytes - 1 }), ContentLength: bytes }));
        return;
      }
      await this.putFileInParts(key, path, bytes);
    });
  }

  /** A multipart upload of the file's `bytes`: parts streamed from the file, aborted on any failure (no parts left behind). */
  private async putFileInParts(key: string, path: string, bytes: number): Promise<void> {
    const target = { Bucket: this.loc.bucket, Key: this.key(key) };
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand(target));
    if (!UploadId) throw tierFailed(`upload ${key}: the service gave no upload id`);
    try {
      const count = Math.ceil(bytes / PART_BYTES);
      const parts: { PartNumber: number; ETag: string }[] = new Array(count);
      await forEachBounded(Array.from({ length: count }, (_, i) => i), PARTS_IN_FLIGHT, async (i) => {
        const start = i * PART_BYTES;
        const end = Math.min(bytes, start + PART_BYTES);
        const body = createReadStream(path, { start, end: end - 1, highWaterMark: 1 << 20 });
        const r = await this.client.send(new UploadPartCommand({ ...target, UploadId, PartNumber: i + 1, ContentLength: end - start, Body: body }));
        if (!r.ETag) throw tierFailed(`upload ${key}: the service gave no ETag for part ${i + 1}`);
        parts[i] = { PartNumber: i + 1, ETag: r.ETag };
      });
      await this.client.send(new CompleteMultipartUploadCommand({ ...target, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ ...target, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  get(key: string, range?: { start: number; end: number }): Promise<Buffer | null> {
    return this.run(`get ${key}${range ? ` bytes ${range.start}-${range.end - 1}` : ''}`, async () => {
      try {
        const r = await this.client.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: this.key(key), Range: range ? `bytes=${range.start}-${range.end - 1}` : undefined }));
        return Buffer.from(await r.Body!.transformToByteArray());
      } catch (err) {
        if (statusOf(err) === 404 || nameOf(err) === 'NoSuchKey') return null;
        throw err;
      }
    });
  }

  delete(key: string): Promise<void> {
    return this.run(`delete ${key}`, async () => {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key: this.key(key) }));
    });
  }

  close(): void {
    this.client.destroy();
  }
}
