// Metadata contexts in the handshake (proto.md "Metadata querying"): NBD_OPT_LIST_META_CONTEXT and
// NBD_OPT_SET_META_CONTEXT. Both carry an export name and queries ("namespace:leaf"). The server
// answers the `base:` namespace itself (`base:allocation`, which any export can answer); every
// other namespace is the provider's (ExportProvider.metaContexts), and unknown ones are ignored as
// proto.md requires. Both options need structured replies first (NBD_REP_ERR_INVALID otherwise).
// A SET replaces the selection, also when it fails; the selection holds for the export named, if
// the client then opens that export.
import {
  NBD_LIMITS,
  OPT_SET_META_CONTEXT,
  REP_ERR_INVALID,
  REP_ERR_POLICY,
  REP_ERR_TOO_BIG,
  REP_ERR_UNKNOWN,
} from './constants.js';
import { EXPORT_POLICY_CODE, type ExportProvider } from './export.js';
import { decodeString } from './handshake-wire.js';

export const BASE_ALLOCATION = 'base:allocation';

export interface MetaContextRequest {
  readonly exportName: string;
  readonly queries: string[];
}

/** Parses the data of NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT; a string says why it is invalid. */
export function parseMetaContextRequest(data: Buffer): MetaContextRequest | string {
  let at = 0;
  const str = (what: string): string => {
    if (at + 4 > data.length) throw new SyntaxError(`option data ends before the length of ${what}`);
    const n = data.readUInt32BE(at);
    if (n > data.length - at - 4) throw new SyntaxError(`${what} of ${n} bytes overruns the option data (${data.length} bytes)`);
    const s = decodeString(data.subarray(at + 4, at + 4 + n));
    if (s === null) throw new SyntaxError(`${what} is not a valid NBD string (UTF-8, no NUL, at most ${NBD_LIMITS.stringBytesMax} bytes)`);
    at += 4 + n;
    return s;
  };
  try {
    const exportName = str('the export name');
    if (at + 4 > data.length) return 'option data ends before the number of queries';
    const count = data.readUInt32BE(at);
    at += 4;
    // Each query takes at least its 4-byte length: a count past that is a lie, not a big request.
    if (count > (data.length - at) / 4) return `${count} queries cannot fit in the option data (${data.length} bytes)`;
    const queries: string[] = [];
    for (let i = 0; i < count; i++) queries.push(str(`query ${i}`));
    if (at !== data.length) return `${data.length - at} bytes after the last query`;
    return { exportName, queries };
  } catch (err) {
    if (err instanceof SyntaxError) return err.message;
    throw err;
  }
}

export type MetaContextAnswer =
  /** The contexts to report, in order (their ids for SET: index + 1). */
  | { readonly kind: 'contexts'; readonly exportName: string; readonly names: string[] }
  | { readonly kind: 'error'; readonly reply: number; readonly message: string };

const fail = (reply: number, message: string): MetaContextAnswer => ({ kind: 'error', reply, message });

/** Answers one LIST or SET option (its data already received): the contexts, or the error reply. */
export function answerMetaContext(provider: ExportProvider, option: number, data: Buffer, structuredReplies: boolean): MetaContextAnswer {
  const what = option === OPT_SET_META_CONTEXT ? 'NBD_OPT_SET_META_CONTEXT' : 'NBD_OPT_LIST_META_CONTEXT';
  const mode = option === OPT_SET_META_CONTEXT ? 'set' : 'list';
  if (!structuredReplies) return fail(REP_ERR_INVALID, `${what} needs structured replies: send NBD_OPT_STRUCTURED_REPLY first`);
  const request = parseMetaContextRequest(data);
  if (typeof request === 'string') return fail(REP_ERR_INVALID, request);
  const { exportName, queries } = request;
  if (queries.length > NBD_LIMITS.metaContextQueriesMax) return fail(REP_ERR_TOO_BIG, `${queries.length} queries; at most ${NBD_LIMITS.metaContextQueriesMax} at once`);

  const names: string[] = [];
  const others: string[] = [];
  for (const q of queries) {
    const colon = q.indexOf(':');
    if (colon <= 0) return fail(REP_ERR_INVALID, `query "${q}" must be a namespace, a colon and a leaf name (e.g. ${BASE_ALLOCATION})`);
    if (q.slice(0, colon) !== 'base') others.push(q);
    // "base:" is the namespace's wildcard when listing; other base leaves are ignored (proto.md).
    else if (q === BASE_ALLOCATION || (mode === 'list' && q === 'base:')) names.push(BASE_ALLOCATION);
  }
  if (queries.length === 0 && mode === 'list') names.push(BASE_ALLOCATION);
  // Asked even with only base: queries, so a name that is no export is told so. Zero queries: SET
  // selects nothing, LIST lists everything.
  if (provider.metaContexts) {
    let found: string[] | null;
    try {
      found = provider.metaContexts(exportName, mode === 'list' && queries.length === 0 ? null : others, mode);
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      return fail(code === EXPORT_POLICY_CODE ? REP_ERR_POLICY : REP_ERR_INVALID, err instanceof Error ? err.message : String(err));
    }
    if (found === null) return fail(REP_ERR_UNKNOWN, `no export "${exportName}"`);
    names.push(...found);
  }
  const unique = [...new Set(names)];
  if (mode === 'set' && unique.length > NBD_LIMITS.metaContextsSelectedMax) {
    return fail(REP_ERR_TOO_BIG, `${unique.length} metadata contexts selected; at most ${NBD_LIMITS.metaContextsSelectedMax}`);
  }
  return { kind: 'contexts', exportName, names: unique };
}

/** NBD_REP_META_CONTEXT data: the context id (0 when listing) and its name. */
export function metaContextReplyData(id: number, name: string): Buffer {
  const text = Buffer.from(name, 'utf8');
  const buf = Buffer.allocUnsafe(4 + text.length);
  buf.writeUInt32BE(id, 0);
  text.copy(buf, 4);
  return buf;
}
