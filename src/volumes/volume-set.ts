// The volume set: the named production volumes and their replicas. One sequence of writes spans the
// whole set, so write order across volumes is kept. This module owns the files and range checks.
import type { StoreConfig, VolumeConfig } from '../config.js';
import { outOfRange, unknownVolume, badArgument, limitExceeded } from '../errors.js';
import { joinPath, type Storage, type StorageFile } from '../storage/storage.js';

export interface Volume {
  index: number;
  name: string;
  size: number;
  productionPath: string;
  replicaPath: string;
  /** Open for writing by the store's writer; null in a read-only store. */
  production: StorageFile | null;
  replica: StorageFile;
}

export const productionPath = (dir: string, v: VolumeConfig) => v.path ?? joinPath(dir, 'volumes', v.name);
export const replicaPath = (dir: string, v: VolumeConfig) => joinPath(dir, 'replica', v.name);

export class VolumeSet {
  readonly volumes: Volume[];

  constructor(storage: Storage, dir: string, config: StoreConfig, writable: boolean) {
    this.volumes = config.volumes.map((v, index) => ({
      index,
      name: v.name,
      size: v.size,
      productionPath: productionPath(dir, v),
      replicaPath: replicaPath(dir, v),
      production: writable ? storage.open(productionPath(dir, v), 'write') : null,
      replica: storage.open(replicaPath(dir, v), writable ? 'write' : 'read'),
    }));
  }

  names(): string[] {
    return this.volumes.map((v) => v.name);
  }

  byName(name: string): Volume {
    const v = this.volumes.find((x) => x.name === name);
    if (!v) throw unknownVolume(name, this.names());
    return v;
  }

  byIndex(index: number): Volume {
    const v = this.volumes[index];
    if (!v) throw badArgument(`no volume with index ${index}`);
    return v;
  }

  /** Checks a request's range against the volume and the write size limit. */
  /** The volume named `name`, once `offset` and `length` are checked against it (checkRange). */
  checkedRange(name: string, offset: number, length: number, lengthMax: number): Volume {
    const v = this.byName(name);
    this.checkRange(v, offset, length, lengthMax);
    return v;
  }

  checkRange(v: Volume, offset: number, length: number, lengthMax: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw badArgument(`volume "${v.name}": offset ${offset} is not a byte offset`);
    if (!Number.isSafeInteger(length) || length <= 0) throw badArgument(`volume "${v.name}": length ${length} must be at least 1 byte`);
    if (length > lengthMax) throw limitExceeded(`volume "${v.name}": length`, length, lengthMax);
    if (offset + length > v.size) throw outOfRange(v.name, offset, length, v.size);
  }

  close(): void {
    for (const v of this.volumes) {
      v.production?.close();
      v.replica.close();
    }
  }
}
