// The shape of the read-only report commands (status, log): open the store alongside any writer,
// take one report from it, print it as one JSON document (--json) or as text, close.
import { openStoreReader, type StoreReader } from '../store/reader.js';
import { EXIT } from './exit-codes.js';
import type { Io } from './io.js';

export async function printReport<R>(io: Io, store: string, opts: { json?: boolean }, take: (reader: StoreReader) => R, asText: (report: R) => string): Promise<number> {
  const reader = await openStoreReader(store);
  try {
    const report = take(reader);
    io.out(opts.json ? JSON.stringify(report) + '\n' : asText(report));
    return EXIT.OK;
  } finally {
    reader.close();
  }
}
