/**
 * Link impairment on a cluster. Settings are saved in `.falcon/impair.json` as locally; the
 * pod of each link's `a` end runs the link's falcon-impair helper (src/pod/impair.ts), which
 * impairs both directions there. Applied at launch (the declared ones) and when a setting
 * changes; a pod made again by hyperstart gets its links' settings again.
 */
import { helperConfigText } from '../../host/impair.js';
import { impairHelperTaps, type PodStatus } from '../../k8s/index.js';
import { effectiveImpairments, impairableLinks, type ImpairableLink } from '../../model/impair.js';
import type { Impairment } from '../../model/impair.js';
import { currentImpairments, linkImpairStatus, readOverrides, saveImpairment, type ImpairStatus } from '../impairments.js';
import type { K8sSession } from './session.js';

/** Why a cluster impairs with the helper, for `impair --show`. */
const CLUSTER_REASON = "on a cluster: falcon-impair in the pod of each link's first node";

/**
 * Give every impairable link (or those of `only`) whose `a` end is in `nodes` (default: all)
 * its setting in force; `force` also sends "none" to links without one (a changed setting).
 */
export async function k8sApplyImpairments(s: K8sSession, o: { only?: readonly number[]; nodes?: readonly string[]; force?: boolean } = {}): Promise<void> {
  const want = await currentImpairments(s.spec, s.c.paths);
  const links = impairableLinks(s.spec).filter((l) => (!o.only || o.only.includes(l.link)) && (!o.nodes || o.nodes.includes(l.aNode)));
  await Promise.all(
    links
      .filter((l) => o.force || want.has(l.link))
      .map(async (l) => {
        const w = want.get(l.link);
        await s.ctl(l.aNode, { op: 'impair', link: l.link, config: w ? helperConfigText(w) : null });
      }),
  );
}

/** `impair` / `impair --clear` on a cluster: saved, then sent to the link's pod. */
export async function k8sSetImpairment(s: K8sSession, target: string, imp: Impairment | null): Promise<ImpairStatus> {
  const saved = await saveImpairment(s.c, s.spec, target, imp);
  await s.requirePod(impairableLinks(s.spec).find((l) => l.link === saved.link)!.aNode);
  await k8sApplyImpairments(s, { only: [saved.link], force: true });
  s.c.log.log({ kind: 'step', msg: saved.message });
  return (await k8sImpairStatus(s, [saved.link]))[0]!;
}

/** `impair --show` on a cluster: the settings, and each helper's pid and counters from its pod. */
export async function k8sImpairStatus(s: K8sSession, only?: readonly number[]): Promise<ImpairStatus[]> {
  const overrides = await readOverrides(s.c.paths);
  const eff = effectiveImpairments(s.spec, overrides);
  const links = impairableLinks(s.spec).filter((l) => !only || only.includes(l.link));
  const asked = [...new Set(links.filter((l) => eff.has(l.link)).map((l) => l.aNode))];
  const states = new Map<string, PodStatus | undefined>(await Promise.all(asked.map(async (n) => [n, await s.ctl(n, { op: 'status' }).catch(() => undefined)] as const)));
  return links.map((l: ImpairableLink) => {
    const h = states.get(l.aNode)?.impair?.[String(l.link)];
    const taps = impairHelperTaps(l.link);
    const where = `${s.namespace}/${s.pod(l.aNode)}`;
    return linkImpairStatus(s.spec, l, overrides, eff, {
      path: 'userspace',
      reason: CLUSTER_REASON,
      ...(h?.pid ? { helperPid: h.pid, helperTaps: { ab: `${where}:${taps.ab}`, ba: `${where}:${taps.ba}` } } : {}),
      ...(h?.stats ? { stats: h.stats as NonNullable<Parameters<typeof linkImpairStatus>[4]['stats']> } : {}),
    });
  });
}
