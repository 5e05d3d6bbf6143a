// The storage interface over the real file system (node:fs).
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import type { OpenMode, Storage, StorageFile } from './storage.js';

const fdatasync = promisify(fs.fdatasync);
const fsync = promisify(fs.fsync);
const pread = promisify(fs.read) as unknown as (fd: number, buf: Uint8Array, offset: number, length: number, position: number) => Promise<{ bytesRead: number }>;
const pwrite = promisify(fs.write) as unknown as (fd: number, buf: Uint8Array, offset: number, length: number, position: number) => Promise<{ bytesWritten: number }>;
const pwritev = promisify(fs.writev) as unknown as (fd: number, bufs: Uint8Array[], position: number) => Promise<{ bytesWritten: number }>;

class NodeFile implements StorageFile {
  private fd: number;
  private readonly blockDevice: boolean;

  constructor(readonly path: string, mode: OpenMode) {
    const flags = mode === 'read' ? 'r' : mode === 'write' ? 'r+' : fs.constants.O_RDWR | fs.constants.O_CREAT;
    this.fd = fs.openSync(path, flags, 0o644);
    this.blockDevice = fs.fstatSync(this.fd).isBlockDevice();
  }

  get osFd(): number | undefined {
    return this.fd >= 0 ? this.fd : undefined;
  }

  read(buf: Uint8Array, position: number, offset = 0, length = buf.byteLength - offset): number {
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, offset + done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  write(buf: Uint8Array, position: number): void {
    let done = 0;
    while (done < buf.byteLength) {
      done += fs.writeSync(this.fd, buf, done, buf.byteLength - done, position + done);
    }
  }

  writev(bufs: Uint8Array[], position: number): void {
    const total = bufs.reduce((s, b) => s + b.byteLength, 0);
    const n = fs.writevSync(this.fd, bufs, position);
    if (n === total) return;
    // Short vectored write: finish the rest buffer by buffer.
    for (const r of unwritten(bufs, position, n)) this.write(r.buf, r.position);
  }

  async readAsync(buf: Uint8Array, position: number, offset = 0, length = buf.byteLength - offset): Promise<number> {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await pread(this.fd, buf, offset + done, length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async writeAsync(buf: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < buf.byteLength) {
      const { bytesWritten } = await pwrite(this.fd, buf, done, buf.byteLength - done, position + done);
      done += bytesWritten;
    }
  }

  async writevAsync(bufs: Uint8Array[], position: number): Promise<void> {
    const total = bufs.reduce((s, b) => s + b.byteLength, 0);
    const { bytesWritten } = await pwritev(this.fd, bufs, position);
    if (bytesWritten === total) return;
    for (const r of unwritten(bufs, position, bytesWritten)) await this.writeAsync(r.buf, r.position);
  }

  size(): number {
    return this.blockDevice ? blockDeviceSize(this.path) : fs.fstatSync(this.fd).size;
  }

  truncate(size: number): void {
    fs.ftruncateSync(this.fd, size);
  }

  sync(): Promise<void> {
    return fdatasync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** What a vectored write of `bufs` at `position` left unwritten after its first `written` bytes, piece by piece. */
function unwritten(bufs: Uint8Array[], position: number, written: number): { buf: Uint8Array; position: number }[] {
  const rest: { buf: Uint8Array; position: number }[] = [];
  let skip = written;
  let pos = position + written;
  for (const b of bufs) {
    if (skip >= b.byteLength) {
      skip -= b.byteLength;
      continue;
    }
    const piece = b.subarray(skip);
    skip = 0;
    rest.push({ buf: piece, position: pos });
    pos += piece.byteLength;
  }
  return rest;
}

function blockDeviceSize(path: string): number {
  const real = fs.realpathSync(path);
  const name = real.split('/').pop()!;
  const sectors = Number(fs.readFileSync(`/sys/class/block/${name}/size`, 'utf8').trim());
  return sectors * 512;
}

export class NodeStorage implements Storage {
  open(path: string, mode: OpenMode): StorageFile {
    return new NodeFile(path, mode);
  }
  exists(path: string): boolean {
    return fs.existsSync(path);
  }
  list(dir: string): string[] {
    try {
      return fs.readdirSync(dir).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
  mkdirp(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
  }
  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  }
  remove(path: string): void {
    fs.rmSync(path, { force: true });
  }
  async syncDir(dir: string): Promise<void> {
    const fd = fs.openSync(dir, 'r');
    try {
      await fsync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  sizeOf(path: string): number {
    const st = fs.statSync(path);
    return st.isBlockDevice() ? blockDeviceSize(path) : st.size;
  }
}

export const nodeStorage = new NodeStorage();
