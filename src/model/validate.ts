import type { TopologyProblem } from './errors.js';

/** Names become parts of host interface altnames (max 127 chars) and file names. */
export const MAX_NAME_LENGTH = 32;
const NAME_RE = /^[A-Za-z][A-Za-z0-9_]*$/;

export function nameProblem(kind: string, name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return `${kind} name must be a non-empty string`;
  if (name.length > MAX_NAME_LENGTH)
    return `${kind} name "${name}" is ${name.length} characters; use at most ${MAX_NAME_LENGTH} so host interface names stay workable`;
  if (!NAME_RE.test(name))
    return `${kind} name "${name}" is invalid; start with a letter and use only letters, digits and "_"`;
  return undefined;
}

export const MIN_CORES = 1;
export const MAX_CORES = 64;
export const MIN_MEMORY_MIB = 64;
export const MAX_MEMORY_MIB = 1024 * 1024;

export function coresProblem(cores: unknown): string | undefined {
  if (!Number.isInteger(cores) || (cores as number) < MIN_CORES || (cores as number) > MAX_CORES)
    return `cores is ${String(cores)}; give a whole number from ${MIN_CORES} to ${MAX_CORES}`;
  return undefined;
}

export function memoryProblem(mib: unknown): string | undefined {
  if (!Number.isInteger(mib) || (mib as number) < MIN_MEMORY_MIB || (mib as number) > MAX_MEMORY_MIB)
    return `memory is ${String(mib)} MiB; give a whole number of MiB from ${MIN_MEMORY_MIB} to ${MAX_MEMORY_MIB} (use gb(n) or mb(n))`;
  return undefined;
}

/** Below 16 MiB the boot's code no longer fits and QEMU spends its time translating again. */
export const MIN_TCG_CACHE_MIB = 16;
/** QEMU's largest translation cache on a 64-bit host. */
export const MAX_TCG_CACHE_MIB = 2048;

export function tcgCacheProblem(mib: unknown): string | undefined {
  if (!Number.isInteger(mib) || (mib as number) < MIN_TCG_CACHE_MIB || (mib as number) > MAX_TCG_CACHE_MIB)
    return `TCG translation cache is ${String(mib)} MiB; give a whole number of MiB from ${MIN_TCG_CACHE_MIB} to ${MAX_TCG_CACHE_MIB} (32 saves ~30 MiB per node; leave it unset for QEMU's default)`;
  return undefined;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function macProblem(mac: string): string | undefined {
  if (!MAC_RE.test(mac)) return `MAC "${mac}" is malformed; write six hex bytes separated by colons, like 02:08:20:aa:bb:01`;
  if (parseInt(mac.slice(0, 2), 16) & 1) return `MAC "${mac}" is a multicast address; the first byte must be even (e.g. 02:...)`;
  return undefined;
}

/** Linux interface names: 1-15 chars, no "/", no whitespace, not "." or "..". */
export function hostIfxProblem(name: string): string | undefined {
  if (!name || name.length > 15 || /[\s/:]/.test(name) || name === '.' || name === '..')
    return `host interface "${name}" is not a valid Linux interface name (1-15 characters, no spaces, "/" or ":")`;
  return undefined;
}

export function push(problems: TopologyProblem[], path: string, message: string | undefined): void {
  if (message) problems.push({ path, message });
}

/** PCI slots a node has for NICs and for 9p mounts: the plan is in pci.ts. */
export { MAX_MOUNTS, MAX_NICS } from './pci.js';
