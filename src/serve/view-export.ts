// A read-only NBD export of one volume's past: a point-in-time view (leased while open) behind the
// export interface. `rewind serve`'s `<volume>@seq=`/`@time=` exports and bisect's private server
// both serve views through it.
import { readOnly } from '../errors.js';
import type { NbdExport } from '../nbd/export.js';
import type { History } from '../restore/history.js';

/** Exports `volume` as it was after write `seq`, under the export name `name`. */
export function viewExport(history: History, name: string, volume: string, seq: number): NbdExport {
  const view = history.view(volume, seq);
  const refuse = () => {
    throw readOnly(`export "${name}" is a read-only view of seq ${seq}`);
  };
  return {
    name,
    size: view.size,
    readOnly: true,
    canTrim: false,
    canMultiConn: true,
    read: (offset, length) => view.read(offset, length),
    write: refuse,
    writeZeroes: refuse,
    trim: refuse,
    flush() {},
    close: () => view.close(),
  };
}
