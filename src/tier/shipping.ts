// The tier in `rewind serve`: read the store's tier.json, hold what is not shipped from the moment
// the store opens (tier-shipped.json until the uploader has read the manifest), then ship in the
// background. The engine sees only the hold function and the metrics figures.
import type { TierFigures } from '../serve/metrics.js';
import { nodeStorage } from '../storage/node-storage.js';
import type { HistoryHold } from '../store/open.js';
import type { Store } from '../store/store.js';
import { parseRetention } from '../lifecycle/retention.js';
import { S3ObjectStore } from './s3-store.js';
import { storeShipSource } from './ship-source.js';
import { readShipMarks, readTierConfig, type TierConfig } from './tier-config.js';
import { TierUploader } from './uploader.js';
import { parseTierUrl, storeLocation, tierUrl } from './url.js';

export class TierShipping {
  private uploader: TierUploader | null = null;
  private s3: S3ObjectStore | null = null;

  private constructor(private readonly dir: string, readonly config: TierConfig, private readonly onWarning: (m: string) => void) {}

  /** The shipping of the store at `dir`, or null when it has no tier set up. */
  static prepare(dir: string, onWarning: (m: string) => void): TierShipping | null {
    const c = readTierConfig(nodeStorage, dir);
    return c ? new TierShipping(dir, c, onWarning) : null;
  }

  /** Where this store's history goes: s3://BUCKET/PREFIX/<store-id>. */
  get location(): string {
    return tierUrl(storeLocation(parseTierUrl(this.config.url), this.config.storeId));
  }

  /** What the lifecycle keeps (pass as Store.open's historyHold). */
  readonly hold = (): HistoryHold => {
    if (this.uploader) return this.uploader.hold();
    const m = readShipMarks(nodeStorage, this.dir);
    return { packsFrom: m.packsThrough + 1, segmentsFrom: m.segmentsThrough + 1 };
  };

  start(store: Store, opts: { backlogWarnBytes?: number } = {}): void {
    this.s3 = new S3ObjectStore(storeLocation(parseTierUrl(this.config.url), this.config.storeId), { endpoint: this.config.endpoint, region: this.config.region });
    this.uploader = new TierUploader(this.s3, storeShipSource(store), {
      storeId: this.config.storeId,
      dir: this.dir,
      retain: this.config.retain ? parseRetention(this.config.retain) : null,
      backlogWarnBytes: opts.backlogWarnBytes,
      onWarning: this.onWarning,
    });
    this.uploader.start();
  }

  figures(): TierFigures | null {
    if (!this.uploader) return null;
    const b = this.uploader.backlog();
    const t = this.uploader.totals;
    return { backlogBytes: b.bytes, oldestUnshippedSeq: b.oldestUnshippedSeq, packsThrough: b.packsThrough, uploadedBytes: t.uploadedBytes, failedPasses: t.failedPasses };
  }

  /** Ships what is left and a base at the last point, then stops (what fails, the next serve ships). */
  async stop(): Promise<void> {
    await this.uploader?.stop({ final: true });
    this.s3?.close();
  }
}
