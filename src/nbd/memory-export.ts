// An ExportProvider that keeps each export in one Buffer: for tests and for measuring the protocol
// layer alone. Every connection to a name shares the same bytes and nothing is cached, so flush is
// a no-op and CAN_MULTI_CONN is honest.

import { assert, badArgument, unknownExport } from '../errors.js';
import type { ExportProvider, NbdExport } from './export.js';

export interface MemoryExportSpec {
  size: number;
  readOnly?: boolean;
  canTrim?: boolean;
  description?: string;
  /** Initial contents (copied; zero-filled past its end). */
  data?: Buffer;
}

interface Volume {
  readonly bytes: Buffer;
  readonly readOnly: boolean;
  readonly canTrim: boolean;
  readonly description: string | undefined;
}

/** Counts of calls that reached exports, so tests can prove a request never did. */
export interface MemoryProviderStats {
  opens: number;
  closes: number;
  reads: number;
  writes: number;
  writeZeroes: number;
  trims: number;
  flushes: number;
}

export class MemoryExportProvider implements ExportProvider {
  private readonly volumes = new Map<string, Volume>();
  readonly stats: MemoryProviderStats = { opens: 0, closes: 0, reads: 0, writes: 0, writeZeroes: 0, trims: 0, flushes: 0 };

  constructor(specs: Record<string, MemoryExportSpec> = {}) {
    for (const [name, spec] of Object.entries(specs)) this.add(name, spec);
  }

  add(name: string, spec: MemoryExportSpec): void {
    if (!Number.isSafeInteger(spec.size) || spec.size < 0) throw badArgument(`export "${name}": size ${spec.size} is not a byte count`);
    const bytes = Buffer.alloc(spec.size);
    spec.data?.copy(bytes, 0, 0, Math.min(spec.data.length, spec.size));
    this.volumes.set(name, {
      bytes,
      readOnly: spec.readOnly ?? false,
      canTrim: spec.canTrim ?? true,
      description: spec.description,
    });
  }

  /** The live bytes of an export (tests compare against them). */
  bytes(name: string): Buffer {
    const v = this.volumes.get(name);
    if (!v) throw unknownExport(name, [...this.volumes.keys()]);
    return v.bytes;
  }

  list(): { name: string; description?: string }[] {
    return [...this.volumes].map(([name, v]) => (v.description === undefined ? { name } : { name, description: v.description }));
  }

  open(name: string): NbdExport {
    const v = this.volumes.get(name);
    if (!v) throw unknownExport(name, [...this.volumes.keys()]);
    this.stats.opens++;
    const stats = this.stats;
    const { bytes } = v;
    let closed = false;
    const live = () => assert(!closed, `the server calls export "${name}" only before closing it`);
    return {
      name,
      size: bytes.length,
      readOnly: v.readOnly,
      canTrim: v.canTrim,
      canMultiConn: true,
      read(offset, length) {
        live();
        stats.reads++;
        // A copy: later writes must not change a reply already handed to the socket.
        return Buffer.from(bytes.subarray(offset, offset + length));
      },
      write(offset, data) {
        live();
        stats.writes++;
        data.copy(bytes, offset);
      },
      writeZeroes(offset, length) {
        live();
        stats.writeZeroes++;
        bytes.fill(0, offset, offset + length);
      },
      trim(offset, length) {
        live();
        stats.trims++;
        // Trimmed bytes read back as zero: simplest valid choice.
        bytes.fill(0, offset, offset + length);
      },
      flush() {
        live();
        stats.flushes++;
      },
      close() {
        assert(!closed, `the server closes export "${name}" once`);
        closed = true;
        stats.closes++;
      },
    };
  }
}
