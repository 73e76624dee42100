/**
 * The falcon-tapsock helper (host-helpers/falcon-tapsock.c): joins an existing tap to a switch
 * port's unix stream socket (QEMU `-netdev stream` framing). In a Kubernetes pod it is the
 * switch's peer on a port whose link is a VXLAN tunnel: the tunnel's tap `swp<N>` on one side,
 * the port socket the switch serves on the other.
 *
 * The pure argument builder is exported for unit tests; the pod's image ships a prebuilt copy
 * (src/k8s/node-image.ts), so only hosts with a compiler build it here.
 */
import { fileURLToPath } from 'node:url';
import { buildStatic } from './cbuild.js';
import type { ProcessRunner } from './process.js';
import type { Logger } from '../util/log.js';
import { FalconError } from '../util/errors.js';

/**
 * The helper's C source. Resolved from this module, so it is right both from src/host/ (tests,
 * tsx) and from dist/host/ (the installed package, which ships host-helpers/).
 */
export const TAPSOCK_SOURCE: string = fileURLToPath(new URL('../../host-helpers/falcon-tapsock.c', import.meta.url));

/** What one helper joins. */
export interface TapsockOptions {
  /** The existing tap, e.g. `swp3`; the helper attaches to it and never creates it. */
  tap: string;
  /** The switch port's unix socket; the helper connects to it (and again after the switch restarts). */
  socket: string;
  /** Written (atomically) with the helper's pid once the tap is attached. */
  pidFile?: string;
}

/** Linux's limits (IFNAMSIZ, sun_path), checked here so a bad name fails before a spawn. */
const MAX_IFNAME = 15;
const MAX_SOCKET_PATH = 107;

/**
 * The helper's argv (without the binary). Throws INVALID_ARGUMENT for a tap name or socket path
 * the kernel would refuse.
 *
 * ```ts
 * tapsockArgs({ tap: 'swp3', socket: '/run/falcon/npu0/port3.sock' });
 * // ['--tap', 'swp3', '--socket', '/run/falcon/npu0/port3.sock']
 * ```
 */
export function tapsockArgs(o: TapsockOptions): string[] {
  if (!o.tap || Buffer.byteLength(o.tap) > MAX_IFNAME || /[/:\s]/.test(o.tap) || o.tap === '.' || o.tap === '..') {
    throw new FalconError('INVALID_ARGUMENT', `"${o.tap}" is not a tap name: use 1 to ${MAX_IFNAME} characters without "/", ":" or spaces, e.g. swp3`);
  }
  if (!o.socket || Buffer.byteLength(o.socket) > MAX_SOCKET_PATH || o.socket.includes('\0')) {
    throw new FalconError('INVALID_ARGUMENT', `the socket path "${o.socket}" of tap ${o.tap} is empty or longer than ${MAX_SOCKET_PATH} bytes (a unix socket's limit): use a shorter path`);
  }
  const args = ['--tap', o.tap, '--socket', o.socket];
  if (o.pidFile !== undefined) args.push('--pid-file', o.pidFile);
  return args;
}

/** Builds (or reuses) the static helper binary in `cacheDir` and returns its path. */
export function buildTapsock(o: { cacheDir: string; runner: ProcessRunner; log: Logger; signal?: AbortSignal }): Promise<string> {
  return buildStatic({ ...o, source: TAPSOCK_SOURCE, name: 'falcon-tapsock', what: 'the tap-to-switch helper', code: 'NPU_SWITCH_FAILED' });
}
