/**
 * The `wire` program: ports 1 and 2 joined, everything else dropped. No tables. It measures
 * what the switch itself costs (stream netdevs + the Node hop) with no lookups.
 */
import type { PacketOut, Pipeline } from '../pipeline.js';

export function createPipeline(radix: number): Pipeline {
  const joined = radix > 2;
  return {
    processPacket(port: number, frame: Buffer): PacketOut[] {
      if (!joined) return [];
      if (port === 1) return [[frame, 2]];
      if (port === 2) return [[frame, 1]];
      return [];
    },
    tableAdd() {},
    tableRemove() {},
    tableIds: () => [],
    tableEntries: () => undefined,
  };
}
