/**
 * Link impairment in a pod. The pod of a link's `a` end runs the link's falcon-impair helper (the
 * image's static build) with two taps, `iab<link>` and `iba<link>`, and routes the link through
 * them with the same tc filters as on a host: the NIC's tap → iab → the VXLAN device for what
 * `a` sends, the VXLAN device → iba → the tap for what `b` sends. The runner sends the config;
 * `null` wires the link straight again and stops the helper.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { helperWireCommands, plainWireCommands, startImpairHelper, type HelperFiles, type LinkTaps } from '../host/impair.js';
import type { ProcessRunner } from '../host/process.js';
import { terminate } from '../host/procs.js';
import { impairHelperTaps, type PodImpairState, type PodWiring } from '../k8s/index.js';
import type { FalconPaths } from '../runner/paths.js';
import { FalconError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Logger } from '../util/log.js';

const TC_TIMEOUT_MS = 10_000;

/** The image's falcon-impair (libexec/, beside falcon-tapsock). */
export function impairBinary(): string {
  const p = fileURLToPath(new URL('../../libexec/falcon-impair', import.meta.url));
  if (!existsSync(p)) throw new FalconError('IMPAIR_FAILED', `the impairment helper ${p} is missing: this falcon-node image is incomplete; rebuild it (falcon image build-node --force)`);
  return p;
}

interface Running {
  pid: number;
  config: string;
  files: HelperFiles;
}

export class PodImpairs {
  private readonly running = new Map<number, Running>();

  constructor(
    private readonly w: PodWiring,
    private readonly paths: FalconPaths,
    private readonly proc: ProcessRunner,
    private readonly log: Logger,
  ) {}

  /** The devices link `link` joins in this pod; refused unless this pod holds its `a` end. */
  private taps(link: number): LinkTaps {
    const t = this.w.tunnels.find((x) => x.link === link);
    if (!t || t.attach.kind !== 'nic') throw new FalconError('INVALID_ARGUMENT', `node "${this.w.node}" has no node-to-node link ${link}; its links are ${this.w.tunnels.map((x) => x.link).join(', ') || '(none)'}`);
    return { a: t.tap, b: t.vxlan };
  }

  private files(link: number): HelperFiles {
    const base = path.join(this.paths.dir, 'impair', `link${link}`);
    return { config: `${base}.conf`, stats: `${base}.stats.json`, pidFile: `${base}.pid`, log: `${base}.log` };
  }

  private async tc(cmds: string[][]): Promise<void> {
    for (const c of cmds) await this.proc.run('tc', c, { timeoutMs: TC_TIMEOUT_MS });
  }

  /** Route `link` through a helper with `config` (a running one re-reads it), or straight again for null. */
  async apply(link: number, config: string | null): Promise<void> {
    const taps = this.taps(link);
    const r = this.running.get(link);
    if (config === null) {
      if (!r) return;
      await this.tc(plainWireCommands(taps));
      await terminate(r.pid, 2000);
      this.running.delete(link);
      this.log.log({ kind: 'step', msg: `impairment of link ${link}: cleared; wired straight again` });
      return;
    }
    const f = r?.files ?? this.files(link);
    await fs.mkdir(path.dirname(f.config), { recursive: true, mode: 0o700 });
    await writeFileAtomic(f.config, config);
    if (r) {
      process.kill(r.pid, 'SIGHUP');
      r.config = config;
      return;
    }
    const helper = impairHelperTaps(link);
    const d = await startImpairHelper({ bin: impairBinary(), helper, files: f, what: `the impairment helper of link ${link}`, runner: this.proc });
    this.running.set(link, { pid: d.pid, config, files: f });
    void d.exited.then(() => {
      if (this.running.get(link)?.pid === d.pid) this.log.log({ kind: 'warn', msg: `the impairment helper of link ${link} ended` });
    });
    await this.tc(helperWireCommands(taps, helper));
    this.log.log({ kind: 'step', msg: `impairment of link ${link}: through falcon-impair (${helper.ab}, ${helper.ba})` });
  }

  /** The helpers and their counters, by link index. */
  async state(): Promise<Record<string, PodImpairState>> {
    const out: Record<string, PodImpairState> = {};
    for (const [link, r] of this.running) {
      const stats = JSON.parse(await fs.readFile(r.files.stats, 'utf8').catch(() => '{}')) as PodImpairState['stats'];
      out[String(link)] = { config: r.config, pid: r.pid, ...(stats && Object.keys(stats).length ? { stats } : {}) };
    }
    return out;
  }

  /** The pod ends: every helper stops (their taps go with them). */
  async stop(): Promise<void> {
    await Promise.all([...this.running.values()].map((r) => terminate(r.pid, 2000).catch(() => {})));
    this.running.clear();
  }
}
