// The tier's object store over S3 (radosgw, or any S3 service): the only module that knows the AWS
// SDK. Credentials come the SDK's usual way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE,
// ~/.aws). Requests go through withRetries (the SDK's own retries are off, so there is one policy);
// a file goes up from the tier's upload buffers (buffer-pool.ts): whole when it fits one, else in parts.
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  GetObjectCommand, HeadBucketCommand, PutObjectCommand, S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3';
import { forEachBounded } from './bounded.js';
import { uploadBuffers, UPLOAD_BUFFER_BYTES } from './buffer-pool.js';
import { assert, tierFailed } from '../errors.js';
import { nodeStorage } from '../storage/node-storage.js';
import { readAsync, type StorageFile } from '../storage/storage.js';
import { objectKey, type ObjectStore } from './object-store.js';
import { DEFAULT_RETRY, withRetries, type RetryPolicy } from './retry.js';
import { tierUrl, type TierLocation } from './url.js';

/** Parts of a file upload: the pool's buffer size, S3's smallest part (5 MiB), and its most parts. */
const PART_BYTES = UPLOAD_BUFFER_BYTES;
const PARTS_MAX = 10_000;
/** Parts of one file uploaded at once (all uploads share the pool's few buffers in any case). */
const PARTS_IN_FLIGHT = 2;
const CONNECT_TIMEOUT_MS = 5_000;
/** No byte moving on a request's socket for this long fails it (then it is retried). */
const IDLE_TIMEOUT_MS = 30_000;

export interface S3Options {
  /** e.g. http://127.0.0.1:7480 (radosgw); absent: the SDK's default for the region. */
  endpoint?: string;
  region?: string;
  retry?: RetryPolicy;
  /** A request whose socket moves no byte for this long fails (default IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
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
      // A service killed or stalled in the middle of a request must fail it, not leave it hanging.
      // (socketTimeout is the idle bound; the SDK's requestTimeout only logs a warning unless told to
      // throw, and it bounds a whole request's time, which a large part may need.)
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS },
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
      const file = nodeStorage.open(path, 'read');
      try {
        if (bytes <= PART_BYTES) {
          await uploadBuffers.use(async (buf) => {
            const body = await readPart(file, buf, 0, bytes);
            await this.client.send(new PutObjectCommand({ Bucket: this.loc.bucket, Key: this.key(key), Body: body, ContentLength: bytes }));
          });
          return;
        }
        await this.putFileInParts(key, file, bytes);
      } finally {
        file.close();
      }
    });
  }

  /** A multipart upload of the file's `bytes`, each part read into a pool buffer; aborted on any failure (no parts left behind). */
  private async putFileInParts(key: string, file: StorageFile, bytes: number): Promise<void> {
    const count = Math.ceil(bytes / PART_BYTES);
    if (count > PARTS_MAX) throw tierFailed(`upload ${key}: ${bytes} bytes need ${count} parts of ${PART_BYTES}, over S3's ${PARTS_MAX}`);
    const target = { Bucket: this.loc.bucket, Key: this.key(key) };
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand(target));
    if (!UploadId) throw tierFailed(`upload ${key}: the service gave no upload id`);
    try {
      const parts: { PartNumber: number; ETag: string }[] = new Array(count);
      await forEachBounded(Array.from({ length: count }, (_, i) => i), PARTS_IN_FLIGHT, (i) => uploadBuffers.use(async (buf) => {
        const start = i * PART_BYTES;
        const body = await readPart(file, buf, start, Math.min(bytes, start + PART_BYTES) - start);
        const r = await this.client.send(new UploadPartCommand({ ...target, UploadId, PartNumber: i + 1, ContentLength: body.byteLength, Body: body }));
        if (!r.ETag) throw tierFailed(`upload ${key}: the service gave no ETag for part ${i + 1}`);
        parts[i] = { PartNumber: i + 1, ETag: r.ETag };
      }));
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

/** Reads `length` bytes at `position` of the file into the start of `buf`; a short file is an error. */
async function readPart(file: StorageFile, buf: Buffer, position: number, length: number): Promise<Buffer> {
  assert(length <= buf.byteLength, `a part of ${length} bytes fits its buffer of ${buf.byteLength}`);
  const n = await readAsync(file, buf, position, 0, length);
  if (n < length) throw tierFailed(`upload of ${file.path}: the file ended at ${position + n}, before the ${position + length} bytes to ship`);
  return buf.subarray(0, length);
}
