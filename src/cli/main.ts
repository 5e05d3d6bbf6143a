// The `rewind` command line. Each command opens the store it names, does one thing and exits with
// a code from exit-codes.ts. Read-only commands open the store alongside a running writer.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { EXIT, exitCodeFor } from './exit-codes.js';
import type { Io } from './io.js';
import { initCommand } from './commands/init.js';
import { statusCommand } from './commands/status.js';
import { logCommand } from './commands/log.js';
import { restoreCommand } from './commands/restore.js';
import { verifyCommand } from './commands/verify.js';
import { serveCommand } from './commands/serve.js';
import { configCommand } from './commands/config.js';
import { diffCommand } from './commands/diff.js';
import { rollbackCommand } from './commands/rollback.js';
import { bisectCommand } from './commands/bisect.js';
import { addCloneCommands } from './commands/clone.js';
import { tierCommand } from './commands/tier.js';
import { logFromTier, restoreFromTier, statusFromTier, storeOrTier } from './commands/from-tier.js';

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let code: number = EXIT.OK;
  const run = (fn: (...a: any[]) => Promise<number>) => async (...a: any[]) => {
    code = await fn(...a);
  };
  const program = new Command('rewind')
    .description('Continuous data protection: every block write journaled, any volume back as of any write, time or transaction window.')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride();

  program
    .command('init')
    .description('create a store with its production volumes and empty history')
    .argument('<store>', 'store directory (created)')
    .addOption(new Option('--volume <name:size|name:path>', 'a volume: a new one of that size (K/M/G suffixes), or an existing file or device; repeat for a volume set').argParser((v: string, prev: string[] = []) => [...prev, v]).makeOptionMandatory())
    .option('--block-size <bytes>', 'block size of increments and replica updates', '4096')
    .option('--window <policy>', 'when transaction windows close: time:1s | count:1000 | bytes:64M | adaptive | marker (comma-separated to combine)', 'time:1s')
    .option('--retain <spec>', 'retention policy: granularity:age terms, finest first, e.g. writes:1h,windows:24h,hourly:7d,daily:30d (default: all, keep everything)')
    .option('--capacity <size|N%>', 'bound on history (journal + packs + index): bytes (K/M/G/T suffixes) or a share of the file system (default: none)')
    .option('--json', 'print the created configuration as JSON')
    .action(run((store, opts) => initCommand(io, store, opts)));

  program
    .command('config')
    .description('show or change the retention policy and capacity; works while `rewind serve` runs on the store (it picks the change up within a few seconds); when two run at once the last one wins')
    .argument('<store>', 'store directory')
    .option('--retain <spec>', 'retention policy: granularity:age terms, finest first (writes, windows, minutely, hourly, daily; ages s/m/h/d/w), or "all" to keep everything')
    .option('--capacity <size|N%|none>', 'bound on history (journal + packs + index): bytes (K/M/G/T suffixes), a share of the file system, or "none"')
    .option('--json', 'one JSON document: retain, capacity, capacityBytes')
    .action(run((store, opts) => configCommand(io, store, opts)));

  program
    .command('serve')
    .description('serve the store over NBD: "<volume>" read-write, "<volume>@seq=<N>" and "<volume>@time=<ISO>" read-only views')
    .argument('<store>', 'store directory (created with one 1 GiB volume "disk0" when missing)')
    .option('--listen <host:port>', 'TCP address to listen on', '127.0.0.1:10809')
    .option('--socket <path>', 'also listen on a Unix socket')
    .option('--max-connections <n>', 'connections served at once', '64')
    .option('--threads <n>', 'kernel pool workers (default: one per core)')
    .option('--tls-cert <file>', 'PEM server certificate: TLS (NBD_OPT_STARTTLS) is then required on every listener')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--tls-ca <file>', 'PEM CA certificate(s) that client certificates must be signed by')
    .option('--tls-verify-client', 'require a client certificate signed by --tls-ca')
    .option('--insecure', 'allow plain NBD (no TLS) on a non-loopback --listen address, and metrics on a non-loopback --metrics address')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (a bare PORT: on 127.0.0.1)')
    .action(run((store, opts) => serveCommand(io, store, opts)));

  program
    .command('status')
    .description('latest write, applied point, volumes and protection of a store (with a tier: what is not shipped yet); --from: what a store\'s tier holds')
    .argument('[store]', 'store directory')
    .option('--from <s3-url>', 'read the tier s3://BUCKET/PREFIX/<store-id> instead of a local store')
    .option('--endpoint <url>', 'S3 endpoint for --from (default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL)')
    .option('--json', 'one JSON document: lastSeq, lastTime, appliedSeq, transactions, volumes, retention, capacityBytes, historyBytes, oldestRestorable, protection, replicaLag, consolidationBacklogBytes, tier')
    .action(run((store, opts) => (storeOrTier(store, opts.from), opts.from ? statusFromTier(io, opts) : statusCommand(io, store, opts))));

  program
    .command('log')
    .description('list the retained points, one per window end held (or per consolidated point): id, first/last seq, t1, t2, sizes, granularity')
    .argument('[store]', 'store directory')
    .option('--from <s3-url>', 'read the tier s3://BUCKET/PREFIX/<store-id> instead of a local store')
    .option('--endpoint <url>', 'S3 endpoint for --from (default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL)')
    .option('--json', 'one JSON document: an array of points (id, firstSeq, lastSeq, t1, t2, writes, ..., granularity, windows)')
    .action(run((store, opts) => (storeOrTier(store, opts.from), opts.from ? logFromTier(io, opts) : logCommand(io, store, opts))));

  program
    .command('restore')
    .description('write a volume (or, with --all, every volume at one point) as it was after a write, at a time, or at the end of a transaction window (from a store, or from its tier alone with --from)')
    .argument('[store]', 'store directory')
    .option('--from <s3-url>', 'restore from the tier s3://BUCKET/PREFIX/<store-id> alone (no local store needed; with --volume and --out)')
    .option('--endpoint <url>', 'S3 endpoint for --from (default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL)')
    .option('--volume <name>', 'volume to restore (with --out)')
    .option('--all', 'every volume of the set at the same point, to --out-dir DIR as DIR/<volume>.img')
    .option('--seq <N>', 'state exactly after write N (0: before the first write)')
    .option('--time <ISO>', 'state after every write stamped at or before this ISO 8601 time')
    .option('--tx <ID>', 'state at the end of transaction window ID')
    .option('--out <file>', 'file (or device) to write the volume to; a file appears only once complete')
    .option('--out-dir <dir>', 'with --all: directory for the <volume>.img files (created if missing)')
    .option('--force', 'with --all: replace <volume>.img files that exist already')
    .option('--dry-run', 'print the plan (packs and journal bytes to read, bytes to write, estimated time) and write nothing')
    .option('--nearest', 'when the target is no longer held (retention retired it), restore the nearest held point at or before it')
    .option('--json', 'print the result as JSON: volume, seq, time, requested, nearest, bytes, out, seconds (--all: volumes, outDir; --dry-run: the plan)')
    .action(run((store, opts) => (storeOrTier(store, opts.from), opts.from ? restoreFromTier(io, opts) : restoreCommand(io, store, opts))));

  program
    .command('tier')
    .description('set up the second tier: `rewind serve` ships the store\'s sealed history to s3://BUCKET/PREFIX/<store-id>/ (credentials from the AWS environment variables or profile); without --url, shows it')
    .argument('<store>', 'store directory')
    .option('--url <s3-url>', 's3://BUCKET[/PREFIX]: where the history goes (under <store-id>/)')
    .option('--endpoint <url>', 'S3 endpoint, e.g. http://127.0.0.1:7480 for radosgw (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or AWS)')
    .option('--region <region>', 'S3 region (default: AWS_REGION or us-east-1)')
    .option('--tier-retain <spec>', 'a retention policy for the tier, reaching at least as far as the store\'s (default: the store\'s)')
    .option('--json', 'one JSON document: url, location, storeId, endpoint, retain')
    .action(run((store, opts) => tierCommand(io, store, opts)));

  program
    .command('diff')
    .description('list the extents of a volume written between two points (changed blocks, merged, in order), from the index and packs alone')
    .argument('<store>', 'store directory')
    .requiredOption('--volume <name>', 'volume to compare')
    .option('--from <N>', 'start point: the state after write N (0: before the first write); the extents are of writes after it')
    .option('--from-time <ISO>', 'start point: the state after every write stamped at or before this time')
    .option('--to <N>', 'end point: the state after write N (default: the newest write)')
    .option('--to-time <ISO>', 'end point: the state after every write stamped at or before this time')
    .option('--json', 'one JSON document: {"extents": [{"offset", "length"}, ...], "volume", "fromSeq", "toSeq", "blockSize", "bytes"}')
    .action(run((store, opts) => diffCommand(io, store, opts)));

  program
    .command('rollback')
    .description('set production back in place to a held point, rewriting only the blocks changed since (as new writes: undo by rolling back to the seq before); needs the writer\'s lock (stop `rewind serve` first)')
    .argument('<store>', 'store directory')
    .option('--volume <name>', 'volume to roll back')
    .option('--all', 'roll back every volume of the store to the same point')
    .option('--seq <N>', 'state exactly after write N (0: before the first write)')
    .option('--time <ISO>', 'state after every write stamped at or before this ISO 8601 time')
    .option('--tx <ID>', 'state at the end of transaction window ID')
    .option('--nearest', 'when the target is no longer held (retention retired it), roll back to the nearest held point at or before it')
    .option('--json', 'print the result as JSON: volumes, seq, time, requested, nearest, beforeSeq, firstSeq, lastSeq, bytesWritten, seconds')
    .action(run((store, opts) => rollbackCommand(io, store, opts)));

  program
    .command('bisect')
    .description('find the first write at which a command fails: runs it against read-only views of the volume (NBD URI in $REWIND_URI, {} in the command) and binary-searches between a good and a bad point')
    .usage('<store> --volume <name> [--from SEQ | --from-time ISO] [--to SEQ | --to-time ISO] [--json] -- <command> [args...]')
    .argument('<store>', 'store directory')
    .argument('[command...]', 'the command and its arguments, after --; exit 0 means good, anything else bad')
    .requiredOption('--volume <name>', 'volume to search')
    .option('--from <SEQ>', 'a point where the command succeeds (default: the oldest restorable point)')
    .option('--from-time <ISO>', 'instead of --from: the point after every write stamped at or before this time')
    .option('--to <SEQ>', 'a point where the command fails (default: the newest write)')
    .option('--to-time <ISO>', 'instead of --to: the point after every write stamped at or before this time')
    .option('--json', 'one JSON document: volume, seq, time, tx, offset, length, writeVolume, exact, lastGood, from, to, probes, candidates')
    .action(run((store, command, opts) => bisectCommand(io, store, command, opts)));

  program
    .command('verify')
    .description('check every checksum, the index against the packs and journal, and the replica; exit 1 on damage')
    .argument('<store>', 'store directory')
    .option('--json', 'print the report as JSON')
    .action(run((store, opts) => verifyCommand(io, store, opts)));

  addCloneCommands(program, run, io);

  try {
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT.USAGE;
    }
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    io.err(`rewind: ${(err as Error).message}\n`);
    const c = exitCodeFor(err);
    if (c === EXIT.SOFTWARE && process.env.REWIND_DEBUG) io.err(`${(err as Error).stack}\n`);
    return c;
  }
}

function packageVersion(): string {
  const pkg = new URL('../../../package.json', import.meta.url);
  try {
    return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
