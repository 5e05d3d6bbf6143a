// The rules a transmission-phase request must pass before an export sees it: which flags each
// command takes, lengths, ranges, read-only exports. Pure, so they can be read (and tested) in one
// place. Mirrors nbdkit's answers (see server.ts for the table).
import {
  CMD_BLOCK_STATUS,
  CMD_DISC,
  CMD_FLAG_FUA,
  CMD_FLAG_NO_HOLE,
  CMD_FLAG_REQ_ONE,
  CMD_FLUSH,
  CMD_READ,
  CMD_TRIM,
  CMD_WRITE,
  CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_EPERM,
} from './constants.js';
import type { NbdExport } from './export.js';
import type { RequestHeader } from './request-parser.js';

/** Command flags each known command accepts (FUA is valid on every command, proto.md). */
const FLAGS_ALLOWED: Record<number, number> = {
  [CMD_READ]: CMD_FLAG_FUA,
  [CMD_WRITE]: CMD_FLAG_FUA,
  [CMD_DISC]: CMD_FLAG_FUA,
  [CMD_FLUSH]: CMD_FLAG_FUA,
  [CMD_TRIM]: CMD_FLAG_FUA,
  [CMD_WRITE_ZEROES]: CMD_FLAG_FUA | CMD_FLAG_NO_HOLE,
  [CMD_BLOCK_STATUS]: CMD_FLAG_FUA | CMD_FLAG_REQ_ONE,
};

/**
 * Checks one request header against the export; 0 if it may go to the export, else the NBD error.
 * `metaContexts`: how many metadata contexts the connection selected (BLOCK_STATUS needs one).
 */
export function checkRequest(req: RequestHeader, exp: NbdExport, maxPayloadBytes: number, metaContexts = 0): number {
  const allowed = FLAGS_ALLOWED[req.type];
  if (allowed === undefined) return NBD_EINVAL; // unknown command (also CACHE: not offered)
  if (req.type === CMD_DISC) return 0; // there is no reply to DISC, so nothing to reject
  if ((req.flags & ~allowed) !== 0) return NBD_EINVAL;
  const end = req.offset + req.length;
  switch (req.type) {
    case CMD_READ:
      if (req.length === 0 || req.length > maxPayloadBytes || end > exp.size) return NBD_EINVAL;
      return 0;
    case CMD_WRITE:
      if (exp.readOnly) return NBD_EPERM;
      if (req.length === 0 || req.length > maxPayloadBytes) return NBD_EINVAL;
      if (end > exp.size) return NBD_ENOSPC;
      return 0;
    case CMD_WRITE_ZEROES:
      if (exp.readOnly) return NBD_EPERM;
      if (req.length === 0) return NBD_EINVAL;
      if (end > exp.size) return NBD_ENOSPC;
      return 0;
    case CMD_TRIM:
      if (exp.readOnly) return NBD_EPERM;
      if (!exp.canTrim || req.length === 0 || end > exp.size) return NBD_EINVAL;
      return 0;
    case CMD_FLUSH:
      return req.offset === 0 && req.length === 0 ? 0 : NBD_EINVAL;
    case CMD_BLOCK_STATUS:
      // proto.md: SHOULD be EINVAL without a selected context, and past the end.
      if (metaContexts === 0 || req.length === 0 || end > exp.size) return NBD_EINVAL;
      return 0;
    default:
      return NBD_EINVAL;
  }
}
