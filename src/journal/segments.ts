// Journal segment files: `<firstSeq>-open.seg` while appended to, renamed `<firstSeq>-<lastSeq>.seg`
// when sealed, so `ls journal/` shows which writes each file holds.
import { seqName } from '../encoding/fields.js';
import { joinPath, type Storage } from '../storage/storage.js';

export interface SegmentFile {
  firstSeq: number;
  /** Last sequence number for a sealed segment; null for the open one. */
  lastSeq: number | null;
  name: string;
  path: string;
}

const NAME = /^(\d{16})-(\d{16}|open)\.seg$/;

export const openSegmentName = (firstSeq: number) => `${seqName(firstSeq)}-open.seg`;
export const sealedSegmentName = (firstSeq: number, lastSeq: number) => `${seqName(firstSeq)}-${seqName(lastSeq)}.seg`;

export function listSegments(storage: Storage, dir: string): SegmentFile[] {
  const out: SegmentFile[] = [];
  for (const name of storage.list(dir)) {
    const m = NAME.exec(name);
    if (!m) continue;
    out.push({ firstSeq: Number(m[1]), lastSeq: m[2] === 'open' ? null : Number(m[2]), name, path: joinPath(dir, name) });
  }
  out.sort((a, b) => a.firstSeq - b.firstSeq);
  return out;
}
