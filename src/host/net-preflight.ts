/**
 * What would stop a topology's network from being created, found without creating anything:
 * missing kernel features, unusable host interfaces of external links, and names taken by
 * another topology or a foreign interface. createNetwork runs the same inspection first.
 */
import type { TopologySpec } from '../model/spec.js';
import { indexLinks, queryDefaultRouteIfx, queryLinks, type HostLink } from './net-ip.js';
import { detectKernelFeatures, featureProblems, type NetworkProblem } from './net-kernel.js';
import { describeLink, isOurs, ownershipOf } from './net-ownership.js';
import { planNetwork, type NetworkOptions, type NetworkPlan, type PlannedMacvtap } from './net-plan.js';

/** The kernel limits an interface alias to 255 bytes. */
const MAX_ALIAS_BYTES = 255;

export interface Inspection {
  plan: NetworkPlan;
  links: HostLink[];
  problems: NetworkProblem[];
}

/** Everything preflight and create need to know about the host, in a few `ip` calls. */
export async function inspectNetwork(spec: TopologySpec, o: NetworkOptions): Promise<Inspection> {
  const needMacvtap = spec.links.some((l) => l.kind === 'ext');
  const features = await detectKernelFeatures(o.runner, o.signal);
  const problems = featureProblems(features, needMacvtap);
  if (!features.tools || features.permission === false) {
    return { plan: planNetwork(spec, { falconDir: o.falconDir }), links: [], problems };
  }
  const links = await queryLinks(o);
  const byName = indexLinks(links);
  const needDefault = spec.links.some((l) => l.kind === 'ext' && l.hostIfx === null);
  const defaultIfx = needDefault ? await queryDefaultRouteIfx(o) : undefined;
  const plan = planNetwork(spec, {
    falconDir: o.falconDir,
    hostIfxResolver: (h) => (h === null ? defaultIfx : (byName.get(h)?.ifname ?? h)),
  });

  if (Buffer.byteLength(plan.alias) > MAX_ALIAS_BYTES) {
    problems.push({
      path: 'falconDir',
      message: `the falcon dir path ${plan.falconDir} is too long to record as the owner of the topology's interfaces (their alias is limited to ${MAX_ALIAS_BYTES} bytes)`,
      fix: 'run the topology from a directory with a shorter path',
    });
  }

  const planned = new Set(plan.interfaces.map((i) => i.ifname));
  for (const p of plan.interfaces) {
    if (p.kind === 'macvtap') problems.push(...extLinkProblems(p, byName, links, plan, planned));
    const seen = new Set<HostLink>();
    for (const name of [p.ifname, p.altname]) {
      const l = byName.get(name);
      if (!l || seen.has(l)) continue;
      seen.add(l);
      const own = ownershipOf(l, plan);
      const what = `host interface ${describeLink(l)}, which node "${p.node}" interface ${p.index} needs as ${name === p.ifname ? 'its name' : 'its altname'}`;
      if (own.owner === 'other') {
        problems.push({
          path: p.path,
          message: `${what}, belongs to topology "${own.topology}" of falcon dir ${own.falconDir}`,
          fix:
            own.topology === plan.topology
              ? `two topologies named "${plan.topology}" cannot run at once: destroy the one in ${own.falconDir} (falcon destroy there) or rename this one`
              : `destroy topology "${own.topology}" in ${own.falconDir}, or rename node "${p.node}" or this topology`,
        });
      } else if (own.owner === 'foreign') {
        problems.push({
          path: p.path,
          message: `${what}, already exists and was not made by Falcon${l.alias ? ` (alias "${l.alias}")` : ''}`,
          fix: `rename node "${p.node}" or topology "${plan.topology}", or delete the interface if it is stale: ip link del ${l.ifname}`,
        });
      }
    }
  }
  return { plan, links, problems };
}

function extLinkProblems(
  p: PlannedMacvtap,
  byName: Map<string, HostLink>,
  links: readonly HostLink[],
  plan: NetworkPlan,
  planned: Set<string>,
): NetworkProblem[] {
  const at = `${p.path.replace(/\.a$/, '')}.hostIfx`;
  const fn = p.hostIfx === null ? 'defaultExtLink' : p.mode === 'passthru' ? 'extLinkExclusive' : 'extLink';
  const names = links.filter((l) => l.linkType === 'ether' && !planned.has(l.ifname)).map((l) => l.ifname);
  const choose = `name one of the host's Ethernet interfaces (${names.join(', ') || 'none found'}; see "ip -br link")`;
  if (p.lower === undefined) {
    return [
      {
        path: at,
        message: `${fn} of node "${p.node}" uses the interface of the host's default route, but the host has no default route`,
        fix: `add a default route, or use extLink(<interface>, "${p.node}") and ${choose}`,
      },
    ];
  }
  const lower = byName.get(p.lower);
  const declared = p.hostIfx === null ? `${p.lower} (the default route's interface)` : p.hostIfx;
  if (!lower) {
    return [{ path: at, message: `${fn} of node "${p.node}" names host interface ${declared}, which does not exist`, fix: choose }];
  }
  if (planned.has(lower.ifname) || lower.linkType !== 'ether') {
    return [
      {
        path: at,
        message: `${fn} of node "${p.node}" names host interface ${declared}, which ${planned.has(lower.ifname) ? 'is one of this topology\'s own interfaces' : `is not an Ethernet device (link type ${lower.linkType ?? 'unknown'})`}`,
        fix: choose,
      },
    ];
  }
  // A passthru macvtap must be the only macvlan/macvtap on its lower device.
  const others = links.filter((l) => l.lower === lower.ifname && (l.kind === 'macvtap' || l.kind === 'macvlan') && !isOurs(l, plan));
  if (p.mode === 'passthru' && others.length) {
    return [
      {
        path: at,
        message: `extLinkExclusive of node "${p.node}" needs host interface ${lower.ifname} to itself, but it already carries ${others.map((l) => `${l.kind} ${l.ifname}`).join(', ')}`,
        fix: `use extLink (shared) instead, or remove ${others.map((l) => l.ifname).join(', ')}`,
      },
    ];
  }
  const passthru = others.find((l) => l.macvMode === 'passthru');
  if (passthru) {
    return [
      {
        path: at,
        message: `${fn} of node "${p.node}" cannot share host interface ${lower.ifname}: ${passthru.ifname} holds it exclusively (macvtap passthru)`,
        fix: `use another host interface, or stop whatever owns ${passthru.ifname}`,
      },
    ];
  }
  return [];
}

/**
 * Everything that would stop the topology's network from being created, without creating
 * anything: missing kernel features, missing or unusable host interfaces of external links, no
 * default route for `defaultExtLink`, and names taken by another topology or by a foreign
 * interface. Interfaces owned by this topology and falcon dir are fine (a relaunch).
 */
export async function checkNetworkPreflight(spec: TopologySpec, o: NetworkOptions): Promise<NetworkProblem[]> {
  return (await inspectNetwork(spec, o)).problems;
}
