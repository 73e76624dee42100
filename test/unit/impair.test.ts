import { describe, expect, it } from 'vitest';
import { Topology } from '../../src/model/topology.js';
import { TopologyValidationError } from '../../src/model/errors.js';
import {
  directedImpairment,
  effectiveImpairments,
  formatImpairment,
  impairmentProblems,
  linkImpairmentProblems,
  parseDuration,
  parsePercent,
  parseRate,
  resolveImpairTarget,
} from '../../src/model/impair.js';
import { impairTapName, tapName } from '../../src/model/naming.js';
import { topologySpecSchema, type TopologySpec } from '../../src/model/spec.js';
import { validateSpec } from '../../src/model/topology.js';
import {
  helperArgs,
  hostHelperTaps,
  helperConfigText,
  helperWireCommands,
  linkFileKey,
  netemClearCommand,
  netemCommand,
  netemCommands,
  parseNetemRoots,
  plainWireCommands,
} from '../../src/host/impair.js';
import { networkActions, planNetwork, wireCommand, type PlannedTap } from '../../src/host/net.js';
import { netemReason, type KernelFeatures } from '../../src/host/net-kernel.js';
import { impairmentLabels } from '../../src/graph/model.js';
import { impairmentFromOptions } from '../../src/cli/commands/impair.js';
import { formatImpairments } from '../../src/cli/format.js';
import type { LinkInfo } from '../../src/runner/runner.js';

function trio(): TopologySpec {
  const t = new Topology('lab');
  const a = t.node('a', 'tiny', 1, 512);
  const b = t.node('b', 'tiny', 1, 512);
  const c = t.node('c', 'tiny', 1, 512);
  t.link(a, b, { impair: { delayMs: 100, lossPct: 10 } });
  t.link(a, b);
  t.link(b, c, { impair: { rateMbit: 10, bToA: { delayMs: 20 } } });
  t.extLink('eth0', c);
  return t.toSpec();
}

describe('impairment values', () => {
  it('parses durations, percentages and rates as the CLI takes them', () => {
    expect([parseDuration('20ms'), parseDuration('1.5s'), parseDuration('500us'), parseDuration('7')]).toEqual([20, 1500, 0.5, 7]);
    expect([parsePercent('1%'), parsePercent('0.5'), parsePercent(' 20 % ')]).toEqual([1, 0.5, 20]);
    expect([parseRate('10mbit'), parseRate('500kbit'), parseRate('1gbit'), parseRate('2Mbit/s'), parseRate('3')]).toEqual([10, 0.5, 1000, 2, 3]);
  });

  it('refuses values it cannot read, naming the option and an example', () => {
    expect(() => parseDuration('soon', '--jitter')).toThrow('--jitter "soon" is not valid: give a duration such as 20ms, 1.5s or 500us');
    expect(() => parsePercent('-3%')).toThrow(/--loss "-3%" is not valid/);
    expect(() => parseRate('fast')).toThrow(/--rate "fast" is not valid: give a rate such as 10mbit/);
  });

  it('reports every out-of-range field with its path, and fields that need another', () => {
    const problems = impairmentProblems({ delayMs: 'x', lossPct: 150, rateMbit: 0, jitterMs: 5, reorderPct: 10, bogus: 1 }, 'x');
    expect(problems.map((p) => p.path)).toEqual(['x.bogus', 'x.delayMs', 'x.lossPct', 'x.rateMbit', 'x.jitterMs', 'x.reorderPct']);
    expect(problems[2]!.message).toBe('is 150; it must be a number from 0 to 100 (%)');
    expect(problems[4]!.message).toMatch(/more than the delay/);
    expect(problems[5]!.fix).toMatch(/set delayMs too/);
    expect(impairmentProblems({ delayMs: 10, jitterMs: 5, reorderPct: 25 }, 'x')).toEqual([]);
  });

  it('checks a link form per merged direction: a shared jitter with a per-direction delay is fine', () => {
    expect(linkImpairmentProblems({ jitterMs: 5, aToB: { delayMs: 10 }, bToA: { delayMs: 10 } }, 'l')).toEqual([]);
    expect(linkImpairmentProblems({ jitterMs: 5, aToB: { delayMs: 10 } }, 'l').map((p) => p.path)).toEqual(['l.bToA.jitterMs']);
    expect(linkImpairmentProblems({ aToB: { loss: 3 } }, 'l').map((p) => p.path)).toEqual(['l.aToB.loss']);
  });

  it('normalizes the declared form into directions, per-direction fields winning', () => {
    expect(directedImpairment({ delayMs: 10, lossPct: 0, bToA: { delayMs: 30, rateMbit: 5 } })).toEqual({ ab: { delayMs: 10 }, ba: { delayMs: 30, rateMbit: 5 } });
    expect(directedImpairment({ aToB: { lossPct: 2 } })).toEqual({ ab: { lossPct: 2 } });
    expect(directedImpairment({ delayMs: 0 })).toEqual({});
  });

  it('formats as short text', () => {
    expect(formatImpairment({ delayMs: 100, jitterMs: 5, lossPct: 20, rateMbit: 10 })).toBe('delay 100ms ±5ms, loss 20%, rate 10Mbit/s');
    expect(formatImpairment({ rateMbit: 0.5, duplicatePct: 1, corruptPct: 0.1, reorderPct: 25, delayMs: 1 })).toBe(
      'delay 1ms, duplicate 1%, corrupt 0.1%, reorder 25%, rate 500kbit/s',
    );
    expect(formatImpairment(undefined)).toBe('none');
  });
});

describe('declaring impairment', () => {
  it('saves it per direction in the topology file', () => {
    const spec = trio();
    expect(spec.links[0]).toMatchObject({ kind: 'link', impair: { ab: { delayMs: 100, lossPct: 10 }, ba: { delayMs: 100, lossPct: 10 } } });
    expect(spec.links[1]).not.toHaveProperty('impair');
    expect(spec.links[2]).toMatchObject({ impair: { ab: { rateMbit: 10 }, ba: { rateMbit: 10, delayMs: 20 } } });
    expect(topologySpecSchema.parse(JSON.parse(JSON.stringify(spec)))).toEqual(spec);
  });

  it('throws at link() with every problem of the value, before anything is created', () => {
    const t = new Topology('lab');
    const a = t.node('a', 'tiny', 1, 512);
    const b = t.node('b', 'tiny', 1, 512);
    let err: unknown;
    try {
      t.link(a, b, { impair: { lossPct: 101, jitterMs: 3 } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TopologyValidationError);
    expect((err as TopologyValidationError).problems.map((p) => p.path)).toEqual(['links[0].impair.lossPct']);
    expect(String((err as Error).message)).toMatch(/links\[0\]\.impair\.lossPct: is 101; it must be a number from 0 to 100/);
  });

  it('validates a hand-edited topology file too', () => {
    const spec = trio();
    (spec.links[0] as { impair: { ab: { delayMs: number } } }).impair.ab.delayMs = 1e9;
    expect(validateSpec(spec).map((p) => p.path)).toEqual(['links[0].impair.ab.delayMs']);
  });
});

describe('impair targets', () => {
  const spec = trio();
  it('names links both ways and endpoints one way', () => {
    expect(resolveImpairTarget(spec, 'b--c')).toEqual({ link: 2, directions: ['ab', 'ba'], label: 'b:2--c:0' });
    expect(resolveImpairTarget(spec, 'c--b').link).toBe(2);
    expect(resolveImpairTarget(spec, 'a:1--b:1')).toMatchObject({ link: 1, directions: ['ab', 'ba'] });
    expect(resolveImpairTarget(spec, 'links[0]')).toMatchObject({ link: 0, label: 'a:0--b:0' });
    expect(resolveImpairTarget(spec, 'b:0')).toEqual({ link: 0, directions: ['ba'], label: 'b:0 -> a:0' });
    expect(resolveImpairTarget(spec, 'lab_a_vn_sim1')).toMatchObject({ link: 1, directions: ['ab'] });
  });

  it('refuses ambiguous, unknown and unimpairable targets, listing the links', () => {
    expect(() => resolveImpairTarget(spec, 'a--b')).toThrow(/"a--b" matches 2 links \(a:0--b:0, a:1--b:1\); name one by its endpoints/);
    expect(() => resolveImpairTarget(spec, 'a--c')).toThrow(/no link joins a and c; the links that can be impaired are: a:0--b:0, a:1--b:1, b:2--c:0/);
    expect(() => resolveImpairTarget(spec, 'c:1')).toThrow(/c:1 is on a external link, which cannot be impaired/);
    expect(() => resolveImpairTarget(spec, 'links[3]')).toThrow(/links\[3\] is no node-to-node link/);
    expect(() => resolveImpairTarget(spec, 'what')).toThrow(expect.objectContaining({ code: 'IMPAIR_TARGET' }));
  });

  it('runtime settings replace the declared one of their link only', () => {
    const eff = effectiveImpairments(spec, { 'a:0--b:0': {}, 'a:1--b:1': { ab: { delayMs: 5 } } });
    expect([...eff.keys()]).toEqual([1, 2]);
    expect(eff.get(1)).toEqual({ ab: { delayMs: 5 } });
  });
});

describe('host commands for impairment', () => {
  it('builds netem arguments in microseconds and kbit', () => {
    expect(netemCommand('tapB', { delayMs: 100, jitterMs: 5, lossPct: 20, duplicatePct: 1, corruptPct: 0.5, reorderPct: 25, rateMbit: 10 })).toEqual([
      'qdisc', 'replace', 'dev', 'tapB', 'root', 'handle', '1:', 'netem', 'limit', '1000',
      'delay', '100000us', '5000us', 'loss', '20%', 'duplicate', '1%', 'corrupt', '0.5%', 'reorder', '25%', 'rate', '10000kbit',
    ]);
    expect(netemCommand('t', { delayMs: 0.25 })).toEqual(['qdisc', 'replace', 'dev', 't', 'root', 'handle', '1:', 'netem', 'limit', '1000', 'delay', '250us']);
    expect(netemClearCommand('t')).toEqual(['qdisc', 'del', 'dev', 't', 'root', 'handle', '1:']);
  });

  it('shapes direction ab on b\'s tap, and clears only netem roots that exist', () => {
    const taps = { a: 'ta', b: 'tb' };
    expect(netemCommands(taps, { ab: { lossPct: 1 } }, new Set(['ta']))).toEqual([netemCommand('tb', { lossPct: 1 }), netemClearCommand('ta')]);
    expect(netemCommands(taps, undefined, new Set())).toEqual([]);
  });

  it('reads netem roots from tc -j qdisc show', () => {
    const json = JSON.stringify([
      { kind: 'netem', handle: '1:', dev: 'ta', root: true, options: {} },
      { kind: 'ingress', handle: 'ffff:', dev: 'ta', parent: 'ffff:fff1' },
      { kind: 'fq_codel', handle: '0:', dev: 'eth0', root: true },
    ]);
    expect([...parseNetemRoots(json)]).toEqual(['ta']);
  });

  it('routes a link through the helper taps last, and straight back with two filters', () => {
    const a = tapName('lab', 'a', 0);
    const b = tapName('lab', 'b', 0);
    const [ha, hb] = [impairTapName(a), impairTapName(b)];
    expect(ha).toMatch(/^fn[0-9a-f]{9}i0$/);
    expect(helperWireCommands({ a, b })).toEqual([
      ['qdisc', 'replace', 'dev', ha, 'handle', 'ffff:', 'ingress'],
      ['qdisc', 'replace', 'dev', hb, 'handle', 'ffff:', 'ingress'],
      wireCommand(ha, b),
      wireCommand(hb, a),
      wireCommand(a, ha),
      wireCommand(b, hb),
    ]);
    expect(plainWireCommands({ a, b })).toEqual([wireCommand(a, b), wireCommand(b, a)]);
  });

  it('writes the helper config one line per impaired direction, and its command line', () => {
    expect(helperConfigText({ ab: { delayMs: 100, jitterMs: 5, lossPct: 20 }, ba: { rateMbit: 0.5, duplicatePct: 1, corruptPct: 2, reorderPct: 0 } })).toBe(
      'ab delay_ms=100 jitter_ms=5 loss_pct=20 limit=1000\nba duplicate_pct=1 corrupt_pct=2 rate_mbit=0.5 limit=1000\n',
    );
    const files = { config: '/f/x.conf', stats: '/f/x.stats.json', pidFile: '/f/x.pid', log: '/f/x.log' };
    expect(helperArgs(hostHelperTaps({ a: 'fn1e0', b: 'fn2e3' }), files)).toEqual([
      '--tap-ab', 'fn1i0', '--tap-ba', 'fn2i3', '--config', '/f/x.conf', '--stats', '/f/x.stats.json', '--pid-file', '/f/x.pid',
    ]);
    expect(linkFileKey('a:0--b:1')).toBe('a.0--b.1');
    expect(linkFileKey('x'.repeat(200))).toMatch(/^[0-9a-f]{32}$/);
  });

  it('keeps a tap wired to its helper tap on relaunch (does not rewire it straight)', () => {
    const t = new Topology('duo');
    t.link(t.node('violin', 'tiny', 1, 512), t.node('piano', 'tiny', 1, 512));
    const plan = planNetwork(t.toSpec(), { falconDir: '/srv/.falcon' });
    const [v, p] = plan.interfaces as PlannedTap[];
    const link = (ifname: string, alias?: string, altnames: string[] = []) => ({
      ifindex: 1, ifname, altnames, alias, address: '', operstate: 'UP', flags: ['UP'], kind: 'tun', tunType: 'tap',
    });
    const links = [link(v!.ifname, plan.alias, [v!.altname]), link(p!.ifname, plan.alias, [p!.altname]), link(impairTapName(v!.ifname)), link(impairTapName(p!.ifname))];
    const ingress = new Set([v!.ifname, p!.ifname]);
    const viaHelper = new Map([[v!.ifname, impairTapName(v!.ifname)], [p!.ifname, impairTapName(p!.ifname)]]);
    const a = networkActions(plan, { links, ingress, redirects: viaHelper });
    expect([a.ip, a.tc, a.removed]).toEqual([[], [], []]);
    // The helper gone (its taps vanish with it): wired straight again.
    const b = networkActions(plan, { links: links.slice(0, 2), ingress, redirects: viaHelper });
    expect(b.tc).toEqual([wireCommand(v!.ifname, p!.ifname), wireCommand(p!.ifname, v!.ifname)]);
  });

  it('says why the userspace path is taken', () => {
    const f = { netem: false, errors: { netem: 'Error: Specified qdisc kind is unknown.\nmore' } } as unknown as KernelFeatures;
    expect(netemReason(f)).toBe(
      'the host kernel has no netem qdisc (tc: Error: Specified qdisc kind is unknown.); "modprobe sch_netem" or a kernel with CONFIG_NET_SCH_NETEM would let Falcon use it',
    );
    expect(netemReason({ ...f, netem: true })).toBe('the host kernel has the netem qdisc');
  });
});

describe('impairment in the CLI and the graph', () => {
  it('turns options into an impairment, none when no value is given', () => {
    expect(impairmentFromOptions({ delay: 20, loss: 1, rate: 10 })).toEqual({ delayMs: 20, lossPct: 1, rateMbit: 10 });
    expect(impairmentFromOptions({ clear: true })).toBeUndefined();
  });

  it('labels a link once when both directions match, else per direction', () => {
    const end = (node: string, index: number) => ({ node, index, ifname: 'x', altname: 'y', mac: 'm' });
    const l = (impairment?: LinkInfo['impairment']): LinkInfo => ({ kind: 'link', a: end('a', 0), b: end('b', 0), impairment });
    expect(impairmentLabels(l({ ab: { delayMs: 5 }, ba: { delayMs: 5 } }))).toEqual(['delay 5ms']);
    expect(impairmentLabels(l({ ab: { lossPct: 3 } }))).toEqual(['a:0→b:0: loss 3%']);
    expect(impairmentLabels(l())).toEqual([]);
  });

  it('--show lists each direction with its source, counters and the path with its reason', () => {
    const text = formatImpairments([
      {
        link: 'a:0--b:0',
        index: 0,
        source: 'runtime',
        path: 'userspace',
        reason: 'no netem',
        helperPid: 42,
        directions: [
          { direction: 'a:0 -> b:0', impairment: { lossPct: 20 }, text: 'loss 20%', stats: { rx: 10, tx: 8, lost: 2, queueDrops: 0, duplicated: 0, corrupted: 0, reordered: 0, writeErrors: 0, queued: 0 } },
          { direction: 'b:0 -> a:0', impairment: null, text: 'none' },
        ],
      },
    ]);
    expect(text.split('\n')).toEqual([
      'LINK      SOURCE   DIRECTION   IMPAIRMENT  SENT/RECEIVED  DROPPED',
      'a:0--b:0  runtime  a:0 -> b:0  loss 20%    8/10           2',
      '                   b:0 -> a:0  none        -              -',
      'path userspace: no netem (helper pid 42)',
    ]);
    const idle = formatImpairments([{ link: 'a:0--b:0', index: 0, source: 'declared', path: 'userspace', reason: 'no netem', directions: [] }]);
    expect(idle).toMatch(/no helper runs for a:0--b:0: it starts at launch and hyperstart/);
  });
});
