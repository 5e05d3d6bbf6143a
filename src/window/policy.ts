// Window policies: when a transaction window closes. A spec is one or more comma-separated terms;
// a window closes as soon as any term says so, and always at the hard limits.
//   time:1s        fixed period, measured from the window's first write
//   count:1000     after that many writes
//   bytes:64M      once it holds that many bytes of writes
//   adaptive       period follows the write rate: about `adaptive:<bytes>` per window (default 16M),
//                  never shorter than 50ms, never longer than 2s
//   marker         variable period: the window ends at each flush (and at every markWindow())
// markWindow() always closes the open window, whatever the policy.
import { badArgument } from '../errors.js';
import { LIMITS } from '../limits.js';
import { parseDuration, parseSize } from '../units.js';

export interface WindowPolicy {
  periodMs?: number;
  writes?: number;
  bytes?: number;
  adaptive?: { targetBytes: number; minMs: number; maxMs: number };
  marker: boolean;
}

export const ADAPTIVE_DEFAULTS = { targetBytes: 16 * 2 ** 20, minMs: 50, maxMs: 2000 };

export function parseWindowSpec(spec: string): WindowPolicy {
  if (typeof spec !== 'string' || spec.trim() === '') throw badArgument('window policy is empty (examples: time:1s, count:1000, bytes:64M, adaptive, marker)');
  const policy: WindowPolicy = { marker: false };
  for (const term of spec.split(',').map((t) => t.trim())) {
    const [kind, arg, extra] = term.split(':');
    const need = () => {
      if (arg === undefined || arg === '' || extra !== undefined) throw badArgument(`window policy "${term}" needs one value, e.g. ${kind}:${kind === 'time' ? '1s' : kind === 'count' ? '1000' : '64M'}`);
      return arg;
    };
    switch (kind) {
      case 'time':
        policy.periodMs = parseDuration(need(), `window period "${term}"`);
        break;
      case 'count': {
        const n = Number(need());
        if (!Number.isInteger(n) || n < 1 || n > LIMITS.windowWritesMax) throw badArgument(`window count "${term}" must be a whole number from 1 to ${LIMITS.windowWritesMax}`);
        policy.writes = n;
        break;
      }
      case 'bytes': {
        const n = parseSize(need(), `window bytes "${term}"`);
        if (n < 1 || n > LIMITS.windowBytesMax) throw badArgument(`window bytes "${term}" must be from 1 byte to ${LIMITS.windowBytesMax}`);
        policy.bytes = n;
        break;
      }
      case 'adaptive': {
        const targetBytes = arg === undefined ? ADAPTIVE_DEFAULTS.targetBytes : parseSize(arg, `adaptive target "${term}"`);
        if (extra !== undefined || targetBytes < 1 || targetBytes > LIMITS.windowBytesMax) throw badArgument(`adaptive target "${term}" must be from 1 byte to ${LIMITS.windowBytesMax}`);
        policy.adaptive = { ...ADAPTIVE_DEFAULTS, targetBytes };
        break;
      }
      case 'marker':
        if (arg !== undefined) throw badArgument(`window policy "marker" takes no value`);
        policy.marker = true;
        break;
      default:
        throw badArgument(`unknown window policy "${term}" (use time:1s, count:1000, bytes:64M, adaptive or marker)`);
    }
  }
  return policy;
}
