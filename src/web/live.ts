/**
 * The live topology for the page: `info()` polled about once a second, and sent to subscribers
 * only when it changed (a node stopped, started or failed, a link got an impairment).
 */
import type { TopologyInfo } from '../runner/runner.js';
import type { Logger } from '../util/log.js';
import { webView, type WebView } from './view.js';

export class LiveView {
  private readonly subscribers = new Set<(json: string, view: WebView) => void>();
  private latestJson: string | undefined;
  private latestView: WebView | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly info: () => Promise<TopologyInfo>,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
    /** Called after every successful poll, changed or not. */
    private readonly onPoll?: (view: WebView) => void,
  ) {}

  /** The latest view as JSON, polling once if there is none yet. */
  async current(): Promise<{ json: string; view: WebView }> {
    if (!this.latestJson || !this.latestView) await this.poll();
    return { json: this.latestJson!, view: this.latestView! };
  }

  /** Called with the view (as JSON) now and on every change; returns the unsubscribe function. */
  subscribe(fn: (json: string, view: WebView) => void): () => void {
    this.subscribers.add(fn);
    if (this.latestJson && this.latestView) fn(this.latestJson, this.latestView);
    return () => this.subscribers.delete(fn);
  }

  start(): void {
    if (this.timer) return;
    const tick = () => {
      this.timer = setTimeout(() => void this.poll().finally(() => this.timer && tick()), this.intervalMs);
    };
    tick();
  }

  /**
   * Poll now (after an action that changes the topology); resolves once a poll that began after
   * the call has finished. One poll runs at a time.
   */
  poll(): Promise<void> {
    if (this.polling) return this.polling.then(() => this.poll());
    this.polling = this.once().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private async once(): Promise<void> {
    let view: WebView;
    try {
      view = webView(await this.info());
      this.lastError = undefined;
    } catch (e) {
      const msg = (e as Error).message;
      // Logged once per distinct error, not every second.
      if (msg !== this.lastError) this.log.log({ kind: 'warn', msg: `web: reading the topology failed: ${msg}` });
      this.lastError = msg;
      if (!this.latestJson) throw e;
      return;
    }
    this.onPoll?.(view);
    const json = JSON.stringify(view);
    if (json === this.latestJson) return;
    this.latestJson = json;
    this.latestView = view;
    for (const s of this.subscribers) s(json, view);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.subscribers.clear();
  }
}
