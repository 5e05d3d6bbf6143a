// Verify's reading of the packs: every pack of the chain read whole (header, section and body
// checksums, encodings), checked against the transaction windows it covers (src/verify/pack-layout.ts).
// A pack of one window matches its index entry (header CRC, counts); a merged pack matches the sums
// of the windows it covers (writes, bytes written) and their first t1 and last t2, as the merge
// writes them (src/lifecycle/merge.ts).
import { readPack, type Pack, type PackFileName } from '../increment/pack.js';
import { joinPath, type Storage } from '../storage/storage.js';
import { entryPosition, type TxEntry } from '../transactions/transactions.js';
import { alignPacks, layOutPacks } from './pack-layout.js';
import type { Findings } from './report.js';

export interface ReplicaPack {
  pack: Pack;
  /** Its windows are in the index (the replica stands after it). */
  applied: boolean;
}

export interface PackCheckContext {
  storage: Storage;
  /** The increments directory. */
  dir: string;
  indexPath: string;
  /** A writer is running: a pack may be consolidated or dropped while verify reads the others. */
  writerActive: boolean;
  progress?: (phase: string, done: number, total: number) => void;
}

export interface PackCheck {
  /** The chain packs read, in seq order, for the replica check. */
  packs: ReplicaPack[];
  /** A listed pack that is gone (the running writer consolidated or dropped it): the listing is stale. */
  vanished: string | null;
}

/** Checks the listed packs against the index entries; stops at the first pack found gone with a writer running. */
export function checkPacks(ctx: PackCheckContext, files: readonly PackFileName[], entries: readonly TxEntry[], found: Findings): PackCheck {
  const layout = layOutPacks(files);
  const align = alignPacks(layout.chain, entries);
  const path = (f: PackFileName) => joinPath(ctx.dir, f.name);
  if (layout.superseded.length > 0) {
    const names = layout.superseded.map((f) => f.name);
    const shown = names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more` : names.join(', ');
    const one = names.length === 1;
    found.note(`${names.length} pack${one ? '' : 's'} covered by a merged pack (${shown}): left by an interrupted consolidation; the writer removes ${one ? 'it' : 'them'} on open`);
  }
  for (const f of layout.backwards) found.damage(path(f), 0, `pack name says seq ${f.firstSeq}..${f.lastSeq}, which ends before it starts`);
  for (const { pack, other } of layout.overlapping) {
    found.damage(path(pack), 0, `pack for seq ${pack.firstSeq}..${pack.lastSeq} partly overlaps ${other.name} (packs hold whole windows or whole runs of them)`);
  }
  if (align.retired > 0) {
    const from = layout.chain.length > 0 ? `before seq ${layout.chain[0].firstSeq}, where the oldest pack starts` : 'no pack is left';
    found.note(`${align.retired} window${align.retired === 1 ? '' : 's'} retired (dropped by the retention policy: ${from})`);
  }
  for (const e of align.missing) {
    found.damage(ctx.indexPath, entryPosition(entries, e), `transaction ${e.id} (seq ${e.firstSeq}..${e.lastSeq}): its pack is missing`);
  }

  const packs: ReplicaPack[] = [];
  for (let k = 0; k < layout.chain.length; k++) {
    const f = layout.chain[k];
    const role = align.roles[k];
    let pack: Pack;
    try {
      pack = readPack(ctx.storage, path(f));
    } catch (err) {
      if (ctx.writerActive && !ctx.storage.exists(path(f))) return { packs, vanished: f.name };
      found.fail(err, path(f));
      continue;
    }
    found.checked.packs++;
    ctx.progress?.('increments', k + 1, layout.chain.length);
    const h = pack.header;
    if (role.kind !== 'windows' || role.from !== role.to) {
      // A window's pack is tied to its entry by the header CRC; any other by its header's range.
      if (h.firstSeq !== f.firstSeq || h.lastSeq !== f.lastSeq) found.damage(pack.path, 0, `pack header says seq ${h.firstSeq}..${h.lastSeq}, its name says ${f.firstSeq}..${f.lastSeq}`);
    }
    switch (role.kind) {
      case 'windows':
        if (role.from === role.to) checkWindowPack(pack, entries[role.from], found);
        else checkMergedPack(pack, entries.slice(role.from, role.to + 1), found);
        packs.push({ pack, applied: true });
        break;
      case 'unapplied':
        packs.push({ pack, applied: false });
        break;
      case 'misaligned':
        found.damage(pack.path, 0, `pack ${f.name} does not line up with the transaction windows`);
        // Still the newest contents of its blocks as far as the replica is concerned.
        if (f.lastSeq <= (entries[entries.length - 1]?.lastSeq ?? 0)) packs.push({ pack, applied: true });
        break;
      case 'orphan':
        found.damage(pack.path, 0, `pack for seq ${f.firstSeq}..${f.lastSeq} has no transaction and does not follow the last one`);
        break;
    }
  }
  return { packs, vanished: null };
}

function checkWindowPack(pack: Pack, e: TxEntry, found: Findings): void {
  if (pack.headerCrc !== e.packCrc) found.damage(pack.path, 0, `pack header does not match transaction ${e.id}'s record of it`);
  if (pack.header.writes !== e.writes || pack.header.changedBlocks !== e.changedBlocks) found.damage(pack.path, 0, `pack counts differ from transaction ${e.id}`);
}

function checkMergedPack(pack: Pack, covered: readonly TxEntry[], found: Findings): void {
  const first = covered[0];
  const last = covered[covered.length - 1];
  const h = pack.header;
  const want = {
    writes: covered.reduce((n, e) => n + e.writes, 0),
    bytesWritten: covered.reduce((n, e) => n + e.bytesWritten, 0),
    t1: first.t1,
    t2: last.t2,
  };
  const differ = (Object.keys(want) as (keyof typeof want)[]).filter((k) => h[k] !== want[k]);
  if (differ.length > 0) {
    const detail = differ.map((k) => `${k} ${h[k]}, the windows say ${want[k]}`).join('; ');
    found.damage(pack.path, 0, `merged pack header does not match transactions ${first.id}..${last.id} it covers (${detail})`);
  }
}
