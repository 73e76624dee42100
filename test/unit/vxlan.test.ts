/** The VXLAN link end: exact ip/tc commands, and refusals before anything is created. */
import { describe, expect, it } from 'vitest';
import { peerCommands, tunnelCommands, tunnelProblems, vxlanAddCommand } from '../../src/host/vxlan.js';

describe('VXLAN tunnel commands', () => {
  it('creates the device toward the peer with learning off and wires it back to back with the tap', () => {
    const t = { ifname: 'fvx3', vni: 70003, remote: '10.244.2.7', local: '10.244.1.5', dev: 'eth0', mtu: 1450 };
    expect(vxlanAddCommand(t)).toEqual([
      'link', 'add', 'fvx3', 'type', 'vxlan', 'id', '70003', 'remote', '10.244.2.7', 'local', '10.244.1.5', 'dev', 'eth0', 'dstport', '4789', 'nolearning',
    ]);
    const { ip, tc } = tunnelCommands(t, 'tap3');
    expect(ip[1]).toEqual(['link', 'set', 'dev', 'fvx3', 'mtu', '1450', 'addrgenmode', 'none', 'up']);
    expect(tc).toEqual([
      ['qdisc', 'replace', 'dev', 'tap3', 'handle', 'ffff:', 'ingress'],
      ['qdisc', 'replace', 'dev', 'fvx3', 'handle', 'ffff:', 'ingress'],
      ['filter', 'replace', 'dev', 'tap3', 'parent', 'ffff:', 'protocol', 'all', 'pref', '1', 'handle', expect.any(String), 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', 'fvx3'],
      ['filter', 'replace', 'dev', 'fvx3', 'parent', 'ffff:', 'protocol', 'all', 'pref', '1', 'handle', expect.any(String), 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', 'tap3'],
    ]);
  });

  it('points a tunnel without a fixed remote at its peer through the default FDB entry, deleting an old one first', () => {
    expect(vxlanAddCommand({ ifname: 'vxl0', vni: 7, port: 4789 })).toEqual(['link', 'add', 'vxl0', 'type', 'vxlan', 'id', '7', 'dstport', '4789', 'nolearning']);
    expect(peerCommands('vxl0', '10.244.2.9')).toEqual([['fdb', 'append', '00:00:00:00:00:00', 'dev', 'vxl0', 'dst', '10.244.2.9']]);
    expect(peerCommands('vxl0', '10.244.2.9', '10.244.1.7')[0]).toEqual(['fdb', 'del', '00:00:00:00:00:00', 'dev', 'vxl0', 'dst', '10.244.1.7']);
    expect(peerCommands('vxl0', '10.244.2.9', '10.244.2.9')).toEqual([]);
  });

  it('takes another UDP port and leaves out what is not given', () => {
    expect(vxlanAddCommand({ ifname: 'v', vni: 1, remote: 'fd00::2', port: 14789 })).toEqual(['link', 'add', 'v', 'type', 'vxlan', 'id', '1', 'remote', 'fd00::2', 'dstport', '14789', 'nolearning']);
  });

  it('refuses every bad value at once, naming the tunnel, before any command is built', () => {
    const bad = { ifname: 'a-name-far-too-long', vni: 0, remote: 'peer;rm', port: 70000, mtu: 20 };
    expect(tunnelProblems(bad)).toHaveLength(5);
    expect(() => tunnelCommands(bad, 'tap0')).toThrow(/VXLAN tunnel a-name-far-too-long to peer;rm: .*VNI 0 is out of range.*UDP port 70000.*not an IP address.*MTU 20/);
  });
});
