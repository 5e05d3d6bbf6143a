// Structured replies, metadata contexts and block status (proto.md "Metadata querying"): the option
// parsing and extent shaping as pure pieces, then over the wire with a raw client (every reply
// framed as the protocol says: OFFSET_DATA for reads, one BLOCK_STATUS chunk per context with DONE
// on the last, ERROR chunks), then with nbdinfo --map, which must print what the export says.
import { afterEach, describe, expect, it } from 'vitest';
import type { BlockStatusExtent, ExportProvider, NbdExport, OpenOptions } from '../../src/nbd/export.js';
import { MemoryExportProvider } from '../../src/nbd/memory-export.js';
import { parseMetaContextRequest } from '../../src/nbd/meta-context.js';
import { shapeExtents } from '../../src/nbd/block-status.js';
import { run } from '../helpers/processes.js';
import { requireTool } from '../helpers/tools.js';
import { closeServers, KiB, pattern, serve } from './harness.js';
import { RawClient } from './raw-client.js';

const OPT = { GO: 7, STRUCTURED_REPLY: 8, LIST_META: 9, SET_META: 10 };
const REP = { ACK: 1, META_CONTEXT: 4, ERR_INVALID: 0x80000003, ERR_UNKNOWN: 0x80000006, ERR_TOO_BIG: 0x80000009 };
const CMD = { READ: 0, BLOCK_STATUS: 7 };
const REQ_ONE = 1 << 3;
const SIZE = 64 * KiB;
const DIRTY = 'x-test:dirty';

/** Option data of LIST/SET_META_CONTEXT. */
function metaData(name: string, queries: string[]): Buffer {
  const parts = [Buffer.alloc(4), Buffer.from(name)];
  parts[0].writeUInt32BE(Buffer.byteLength(name));
  const count = Buffer.alloc(4);
  count.writeUInt32BE(queries.length);
  parts.push(count);
  for (const q of queries) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(Buffer.byteLength(q));
    parts.push(len, Buffer.from(q));
  }
  return Buffer.concat(parts);
}

/** A memory export whose context x-test:dirty marks the second 16 KiB as dirty (flag 1). */
class DirtyProvider implements ExportProvider {
  readonly inner = new MemoryExportProvider({ disk0: { size: SIZE, data: pattern(SIZE, 3) }, other: { size: SIZE } });
  opened: OpenOptions[] = [];
  list() {
    return this.inner.list();
  }
  metaContexts(name: string, queries: readonly string[] | null, mode: 'list' | 'set'): string[] | null {
    if (name !== 'disk0' && name !== 'other') return null;
    if (queries === null) return [DIRTY];
    return queries.some((q) => q === DIRTY || (mode === 'list' && q === 'x-test:')) ? [DIRTY] : [];
  }
  async open(name: string, opts?: OpenOptions): Promise<NbdExport> {
    this.opened.push(opts ?? { metaContexts: [] });
    const exp = await this.inner.open(name);
    const blockStatus = (context: string, offset: number, length: number): BlockStatusExtent[] => {
      if (context !== DIRTY) return [{ length, flags: 0 }];
      const out: BlockStatusExtent[] = [];
      for (let at = offset; at < offset + length; ) {
        const edge = at < 16 * KiB ? 16 * KiB : at < 32 * KiB ? 32 * KiB : SIZE;
        out.push({ length: edge - at, flags: at >= 16 * KiB && at < 32 * KiB ? 1 : 0 });
        at = edge;
      }
      return out;
    };
    return Object.assign(Object.create(Object.getPrototypeOf(exp) as object) as NbdExport, exp, { blockStatus });
  }
}

interface Chunk {
  flags: number;
  type: number;
  handle: bigint;
  payload: Buffer;
}

async function chunk(c: RawClient): Promise<Chunk> {
  const h = await c.read(20);
  expect(h.readUInt32BE(0)).toBe(0x668e33ef);
  const length = h.readUInt32BE(16);
  return { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), handle: h.readBigUInt64BE(8), payload: length ? await c.read(length) : Buffer.alloc(0) };
}

function extentsOf(payload: Buffer): { id: number; extents: [number, number][] } {
  const extents: [number, number][] = [];
  for (let at = 4; at < payload.length; at += 8) extents.push([payload.readUInt32BE(at), payload.readUInt32BE(at + 4)]);
  return { id: payload.readUInt32BE(0), extents };
}

async function contextReplies(c: RawClient, option: number, data: Buffer): Promise<{ names: [number, string][]; last: number; message: string }> {
  c.sendOption(option, data);
  const names: [number, string][] = [];
  for (;;) {
    const r = await c.optionReply();
    if (r.type !== REP.META_CONTEXT) return { names, last: r.type, message: r.data.toString() };
    names.push([r.data.readUInt32BE(0), r.data.subarray(4).toString()]);
  }
}

afterEach(closeServers);

describe('metadata context option data', () => {
  it('parses the export name and queries, and says what is wrong with bad data', () => {
    expect(parseMetaContextRequest(metaData('disk0', ['base:allocation', 'qemu:dirty-bitmap:x']))).toEqual({ exportName: 'disk0', queries: ['base:allocation', 'qemu:dirty-bitmap:x'] });
    expect(parseMetaContextRequest(metaData('', []))).toEqual({ exportName: '', queries: [] });
    expect(parseMetaContextRequest(Buffer.concat([metaData('d', ['a:b']), Buffer.from([0])]))).toMatch(/1 bytes after the last query/);
    expect(parseMetaContextRequest(metaData('d', ['a:b']).subarray(0, 12))).toMatch(/cannot fit/);
    const lie = metaData('d', []);
    lie.writeUInt32BE(1_000_000, 5);
    expect(parseMetaContextRequest(lie)).toMatch(/cannot fit/);
    expect(parseMetaContextRequest(Buffer.from([0, 0, 0, 9, 1]))).toMatch(/overruns/);
  });
});

describe('block status extents', () => {
  it('clips to the request, merges equal neighbours, honours REQ_ONE and the extent limit', () => {
    expect(shapeExtents([{ length: 100, flags: 0 }], 40, false)).toEqual([{ length: 40, flags: 0 }]);
    expect(shapeExtents([{ length: 10, flags: 1 }, { length: 10, flags: 1 }, { length: 10, flags: 0 }], 100, false)).toEqual([{ length: 20, flags: 1 }, { length: 10, flags: 0 }]);
    expect(shapeExtents([{ length: 10, flags: 1 }, { length: 10, flags: 0 }], 100, true)).toEqual([{ length: 10, flags: 1 }]);
    expect(shapeExtents([{ length: 10, flags: 1 }, { length: 10, flags: 0 }, { length: 10, flags: 1 }], 100, false, 2)).toEqual([{ length: 10, flags: 1 }, { length: 10, flags: 0 }]);
    expect(() => shapeExtents([], 10, false)).toThrow(/at least one extent/);
    expect(() => shapeExtents([{ length: 0, flags: 0 }], 10, false)).toThrow(/at least one byte/);
  });
});

describe('structured replies and block status over the wire', () => {
  async function negotiated(port: number): Promise<RawClient> {
    const c = await RawClient.connect(port);
    await c.start();
    c.sendOption(OPT.STRUCTURED_REPLY);
    expect((await c.optionReply()).type).toBe(REP.ACK);
    return c;
  }

  it('acknowledges STRUCTURED_REPLY (refusing data with it); meta-context options need it first', async () => {
    const { port } = await serve(new DirtyProvider());
    const c = await RawClient.connect(port);
    await c.start();
    expect((await contextReplies(c, OPT.SET_META, metaData('disk0', ['base:allocation']))).last).toBe(REP.ERR_INVALID);
    c.sendOption(OPT.STRUCTURED_REPLY, Buffer.from([1]));
    expect((await c.optionReply()).type).toBe(REP.ERR_INVALID);
    c.sendOption(OPT.STRUCTURED_REPLY);
    expect((await c.optionReply()).type).toBe(REP.ACK);
    expect((await contextReplies(c, OPT.SET_META, metaData('disk0', ['base:allocation']))).names).toEqual([[1, 'base:allocation']]);
    c.destroy();
  });

  it('lists contexts: everything for no query, base: as a wildcard, unknown namespaces ignored, bad queries refused', async () => {
    const { port } = await serve(new DirtyProvider());
    const c = await negotiated(port);
    expect(await contextReplies(c, OPT.LIST_META, metaData('disk0', []))).toMatchObject({ names: [[0, 'base:allocation'], [0, DIRTY]], last: REP.ACK });
    expect((await contextReplies(c, OPT.LIST_META, metaData('disk0', ['base:']))).names).toEqual([[0, 'base:allocation']]);
    expect((await contextReplies(c, OPT.LIST_META, metaData('disk0', ['x-test:']))).names).toEqual([[0, DIRTY]]);
    expect(await contextReplies(c, OPT.LIST_META, metaData('disk0', ['nobody:thing', 'base:other']))).toMatchObject({ names: [], last: REP.ACK });
    expect(await contextReplies(c, OPT.LIST_META, metaData('disk0', ['nocolon']))).toMatchObject({ names: [], last: REP.ERR_INVALID, message: expect.stringContaining('namespace') });
    expect(await contextReplies(c, OPT.LIST_META, metaData('nope', ['base:allocation']))).toMatchObject({ last: REP.ERR_UNKNOWN, message: 'no export "nope"' });
    expect((await contextReplies(c, OPT.SET_META, metaData('disk0', Array.from({ length: 65 }, () => 'base:allocation')))).last).toBe(REP.ERR_TOO_BIG);
    c.destroy();
  });

  it('answers reads with OFFSET_DATA chunks and block status with one chunk per context, DONE on the last', async () => {
    const provider = new DirtyProvider();
    const { port } = await serve(provider);
    const c = await negotiated(port);
    expect((await contextReplies(c, OPT.SET_META, metaData('disk0', ['base:allocation', DIRTY, 'base:']))).names).toEqual([[1, 'base:allocation'], [2, DIRTY]]);
    await c.go('disk0');
    expect(provider.opened.at(-1)).toEqual({ metaContexts: ['base:allocation', DIRTY] });

    c.sendRequest(CMD.READ, { offset: 100, length: 1000, handle: 7n });
    const read = await chunk(c);
    expect([read.flags, read.type, read.handle]).toEqual([1, 1, 7n]);
    expect(Number(read.payload.readBigUInt64BE(0))).toBe(100);
    expect(read.payload.subarray(8).equals(pattern(SIZE, 3).subarray(100, 1100))).toBe(true);

    c.sendRequest(CMD.BLOCK_STATUS, { offset: 8 * KiB, length: 32 * KiB, handle: 8n });
    const first = await chunk(c);
    const second = await chunk(c);
    expect([first.flags, first.type, second.flags, second.type]).toEqual([0, 5, 1, 5]);
    const byId = new Map([extentsOf(first.payload), extentsOf(second.payload)].map((x) => [x.id, x.extents]));
    expect(byId.get(1)).toEqual([[32 * KiB, 0]]);
    expect(byId.get(2)).toEqual([[8 * KiB, 0], [16 * KiB, 1], [8 * KiB, 0]]);

    c.sendRequest(CMD.BLOCK_STATUS, { offset: 20 * KiB, length: 4 * KiB, flags: REQ_ONE, handle: 9n });
    const one = [extentsOf((await chunk(c)).payload), extentsOf((await chunk(c)).payload)].sort((a, b) => a.id - b.id);
    expect(one.map((x) => x.extents)).toEqual([[[4 * KiB, 0]], [[4 * KiB, 1]]]);

    // Errors: a read or block status past the end gets an ERROR chunk, never a simple reply.
    c.sendRequest(CMD.READ, { offset: SIZE, length: 1, handle: 10n });
    const bad = await chunk(c);
    expect([bad.flags, bad.type, bad.handle, bad.payload.readUInt32BE(0)]).toEqual([1, 0x8001, 10n, 22]);
    c.sendRequest(CMD.BLOCK_STATUS, { offset: SIZE - 1, length: 2, handle: 11n });
    const badStatus = await chunk(c);
    expect([badStatus.type, badStatus.payload.readUInt32BE(0)]).toEqual([0x8001, 22]);
    c.destroy();
  });

  it('drops the selection when the client opens another export, so block status is refused', async () => {
    const provider = new DirtyProvider();
    const { port } = await serve(provider);
    const c = await negotiated(port);
    expect((await contextReplies(c, OPT.SET_META, metaData('other', ['base:allocation']))).names).toHaveLength(1);
    await c.go('disk0');
    expect(provider.opened.at(-1)).toEqual({ metaContexts: [] });
    c.sendRequest(CMD.BLOCK_STATUS, { offset: 0, length: 512, handle: 3n });
    const r = await chunk(c);
    expect([r.type, r.payload.readUInt32BE(0)]).toEqual([0x8001, 22]);
    c.destroy();
  });

  it('a SET that fails clears the earlier selection', async () => {
    const provider = new DirtyProvider();
    const { port } = await serve(provider);
    const c = await negotiated(port);
    expect((await contextReplies(c, OPT.SET_META, metaData('disk0', ['base:allocation']))).names).toHaveLength(1);
    expect((await contextReplies(c, OPT.SET_META, metaData('disk0', ['bad']))).last).toBe(REP.ERR_INVALID);
    await c.go('disk0');
    expect(provider.opened.at(-1)).toEqual({ metaContexts: [] });
    c.destroy();
  });
});

describe('nbdinfo --map', () => {
  it('prints base:allocation and a provider context as the export answers them', async () => {
    if (!requireTool('nbdinfo')) return;
    const { port } = await serve(new DirtyProvider());
    const base = await run('nbdinfo', ['--map', `nbd://127.0.0.1:${port}/disk0`]);
    expect(base.code, base.stderr).toBe(0);
    expect(base.stdout.trim().split(/\s+/)).toEqual(['0', String(SIZE), '0', 'data']);
    const dirty = await run('nbdinfo', ['--map=' + DIRTY, '--json', `nbd://127.0.0.1:${port}/disk0`]);
    expect(dirty.code, dirty.stderr).toBe(0);
    const map = (JSON.parse(dirty.stdout) as { offset: number; length: number; type: number }[]).map((e) => [e.offset, e.length, e.type]);
    expect(map).toEqual([[0, 16 * KiB, 0], [16 * KiB, 16 * KiB, 1], [32 * KiB, 32 * KiB, 0]]);
  });
});
