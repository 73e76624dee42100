/**
 * The `sidemux` program (issue 11, `sidecarLink(sidecar, driver, radix)`): it multiplexes a
 * driver's `radix` NICs onto the sidecar node's one NIC with the sidecar header.
 *
 * Ports: 0 is the sidecar node's NIC; 1..radix are the driver's NICs in order, so the
 * driver's NIC p (0-based) is switch port p + 1 and header port p.
 *
 * - A frame the driver sends on NIC p goes to port 0 with a header: code 0 (forward from
 *   userspace), ingress 0, egress p, the frame's ethertype inside.
 * - A frame from the sidecar node reaches the driver's NIC `ingress`, header removed, only
 *   when it carries a header with code 1 (forward to userspace) and `ingress` < radix.
 *   Anything else (no header, another code, a port out of range, too short) is counted and
 *   dropped.
 * - A VLAN tag after the Ethernet header is carried inside, unchanged, both ways.
 */
import { Counters, type PacketOut, type Pipeline } from '../pipeline.js';
import { SIDECAR_ETHERTYPE, SIDECAR_MIN_FRAME, SidecarCode, decapsulate, encapsulate } from '../sidecar-header.js';

export function createPipeline(radix: number): Pipeline {
  const nics = radix - 1;
  const c = new Counters();
  const drop = (reason: string): PacketOut[] => {
    c.inc(reason);
    return [];
  };
  return {
    processPacket(port: number, frame: Buffer): PacketOut[] {
      if (port > 0) {
        if (port > nics) return drop('drop_bad_port');
        if (frame.length < 14) return drop('drop_short');
        c.inc('to_sidecar');
        return [[encapsulate(frame, { code: SidecarCode.ForwardFromUserspace, ingress: 0, egress: port - 1 }), 0]];
      }
      if (frame.length < SIDECAR_MIN_FRAME) return drop('drop_short');
      if (((frame[12]! << 8) | frame[13]!) !== SIDECAR_ETHERTYPE) return drop('drop_no_header');
      if (frame[14] !== SidecarCode.ForwardToUserspace) return drop('drop_bad_code');
      const ingress = (frame[16]! << 8) | frame[17]!;
      if (ingress >= nics) return drop('drop_bad_port');
      c.inc('to_driver');
      return [[decapsulate(frame), ingress + 1]];
    },
    tableAdd() {},
    tableRemove() {},
    tableIds: () => [],
    tableEntries: () => undefined,
    counters: () => c.snapshot(),
  };
}
