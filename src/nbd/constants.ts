// NBD wire constants (NetworkBlockDevice/nbd doc/proto.md) and the limits this server enforces.
// All multi-byte values are big-endian on the wire.

const KiB = 1024;
const MiB = 1024 * KiB;

// Handshake magics. The 64-bit ones are split into two 32-bit halves so they can be read
// and written without BigInt.
export const NBDMAGIC_HI = 0x4e42444d; // 'NBDM'
export const NBDMAGIC_LO = 0x41474943; // 'AGIC'
export const IHAVEOPT_HI = 0x49484156; // 'IHAV'
export const IHAVEOPT_LO = 0x454f5054; // 'EOPT'
export const OPTION_REPLY_MAGIC_HI = 0x0003e889;
export const OPTION_REPLY_MAGIC_LO = 0x045565a9;

export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

// Handshake flags (server, 16 bits) and client flags (32 bits).
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_C_NO_ZEROES = 1 << 1;
export const CLIENT_FLAGS_KNOWN = FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES;

// Transmission flags (16 bits).
export const TFLAG_HAS_FLAGS = 1 << 0;
export const TFLAG_READ_ONLY = 1 << 1;
export const TFLAG_SEND_FLUSH = 1 << 2;
export const TFLAG_SEND_FUA = 1 << 3;
export const TFLAG_ROTATIONAL = 1 << 4;
export const TFLAG_SEND_TRIM = 1 << 5;
export const TFLAG_SEND_WRITE_ZEROES = 1 << 6;
export const TFLAG_SEND_DF = 1 << 7;
export const TFLAG_CAN_MULTI_CONN = 1 << 8;

// Options.
export const OPT_EXPORT_NAME = 1;
export const OPT_ABORT = 2;
export const OPT_LIST = 3;
export const OPT_STARTTLS = 5;
export const OPT_INFO = 6;
export const OPT_GO = 7;
export const OPT_STRUCTURED_REPLY = 8;
export const OPT_LIST_META_CONTEXT = 9;
export const OPT_SET_META_CONTEXT = 10;

// Option replies.
export const REP_ACK = 1;
export const REP_SERVER = 2;
export const REP_INFO = 3;
export const REP_META_CONTEXT = 4;
const REP_ERR = 0x80000000;
export const REP_ERR_UNSUP = REP_ERR + 1;
export const REP_ERR_POLICY = REP_ERR + 2;
export const REP_ERR_INVALID = REP_ERR + 3;
export const REP_ERR_PLATFORM = REP_ERR + 4;
export const REP_ERR_TLS_REQD = REP_ERR + 5;
export const REP_ERR_UNKNOWN = REP_ERR + 6;
export const REP_ERR_SHUTDOWN = REP_ERR + 7;
export const REP_ERR_BLOCK_SIZE_REQD = REP_ERR + 8;
export const REP_ERR_TOO_BIG = REP_ERR + 9;

// NBD_REP_INFO types.
export const INFO_EXPORT = 0;
export const INFO_NAME = 1;
export const INFO_DESCRIPTION = 2;
export const INFO_BLOCK_SIZE = 3;

// Commands.
export const CMD_READ = 0;
export const CMD_WRITE = 1;
export const CMD_DISC = 2;
export const CMD_FLUSH = 3;
export const CMD_TRIM = 4;
export const CMD_CACHE = 5;
export const CMD_WRITE_ZEROES = 6;
export const CMD_BLOCK_STATUS = 7;

// Command flags.
export const CMD_FLAG_FUA = 1 << 0;
export const CMD_FLAG_NO_HOLE = 1 << 1;
export const CMD_FLAG_DF = 1 << 2;
export const CMD_FLAG_REQ_ONE = 1 << 3;
export const CMD_FLAG_FAST_ZERO = 1 << 4;

// Structured replies: the flag of a reply's last chunk, and chunk types.
export const REPLY_FLAG_DONE = 1 << 0;
export const REPLY_TYPE_NONE = 0;
export const REPLY_TYPE_OFFSET_DATA = 1;
export const REPLY_TYPE_BLOCK_STATUS = 5;
export const REPLY_TYPE_ERROR = (1 << 15) + 1;

// base:allocation flags (proto.md "Metadata querying").
export const STATE_HOLE = 1 << 0;
export const STATE_ZERO = 1 << 1;

// Error values sent in replies.
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

// Sizes of fixed wire structures.
export const REQUEST_HEADER_BYTES = 28;
export const SIMPLE_REPLY_HEADER_BYTES = 16;
export const STRUCTURED_REPLY_HEADER_BYTES = 20;
export const OPTION_HEADER_BYTES = 16;
export const OPTION_REPLY_HEADER_BYTES = 20;
export const EXPORT_NAME_ZEROES_BYTES = 124;

// Limits this server enforces (checked where input arrives).
export const NBD_LIMITS = {
  /**
   * Largest READ or WRITE payload accepted, however the client negotiated. A client that agreed no
   * block sizes (NBD_OPT_EXPORT_NAME, or GO without NBD_INFO_BLOCK_SIZE) may send requests up to
   * the export size (proto.md "Block size constraints"); like nbdkit, this server takes 64 MiB.
   */
  payloadBytesMaxDefault: 64 * MiB,
  /** maxPayloadBytes must lie in this range: at least the preferred block size, at most 2^31. */
  payloadBytesMaxLowest: 4 * KiB,
  payloadBytesMaxHighest: 2048 * MiB,
  /**
   * Advertised block sizes (NBD_INFO_BLOCK_SIZE): any byte offset works, 4 KiB requests are the
   * efficient ones, and the maximum advertised is the smaller of this and maxPayloadBytes.
   */
  blockSizeMin: 1,
  blockSizePreferred: 4 * KiB,
  blockSizeMaxAdvertised: 32 * MiB,
  /** Strings (export names, descriptions, messages) are at most this long (proto.md). */
  stringBytesMax: 4096,
  /** An option's data beyond this is a denial of service: hard disconnect. */
  optionBytesMax: 64 * KiB,
  /** Options one connection may send before it must pick an export. */
  optionsPerConnectionMax: 1024,
  /** A connection must finish the handshake within this time. */
  handshakeTimeoutMsDefault: 10_000,
  /** Connections admitted at once (handshake plus transmission). */
  connectionsMaxDefault: 128,
  /** Over-limit connections kept open only to be told so; beyond this they are dropped at once. */
  refusedConnectionsMax: 16,
  /** Requests in flight on one connection before the server stops reading from its socket. */
  requestsInFlightMax: 128,
  /** After the server ends a connection, it waits this long for the client to close before dropping it. */
  lingerMs: 2_000,
  /** Each plain connection reads into one buffer of this size, reused for every read (socket-reads.ts). */
  readBufferBytes: 128 * KiB,
  /**
   * Reply bytes owed on one connection (reads in flight plus replies queued on the socket) before
   * the server stops reading requests from it. Checked between requests, so it is exceeded by at
   * most one reply (a 64 MiB read is answered, not refused).
   */
  replyQueueBytesMax: 64 * MiB,
  /**
   * Reply bytes owed across every connection of a server: each admitted connection may owe an equal
   * share of this (and at most replyQueueBytesMax), so the memory replies take is bounded however many
   * connections read at once. nbdcopy's four connections of 64 requests of 256 KiB each raised serve's
   * peak RSS by 63 MB with a per-connection bound alone.
   */
  serverReplyBytesMax: 16 * MiB,
  /** Queries in one NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT (more: NBD_REP_ERR_TOO_BIG). */
  metaContextQueriesMax: 64,
  /** Metadata contexts one connection may select (more: NBD_REP_ERR_TOO_BIG). */
  metaContextsSelectedMax: 8,
  /**
   * Extents in one block-status chunk. proto.md caps it at 2^20; this keeps a reply at 512 KiB, and
   * a client asks again from where the reply stopped.
   */
  blockStatusExtentsMax: 64 * KiB,
} as const;
