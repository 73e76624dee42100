/**
 * Guest set-up at launch: hostname, /etc/hosts, read-only 9p mounts. A fixed script; the
 * topology's values travel as environment variables, never spliced into the script.
 */
import type { NodeSpec } from '../model/spec.js';
import { mountTag } from '../host/qemu.js';

export const SETUP_SCRIPT = `set -e
h="$FALCON_HOSTNAME"
hostname "$h"
echo "$h" > /etc/hostname
printf '127.0.0.1\\tlocalhost\\n127.0.1.1\\t%s\\n::1\\tlocalhost ip6-localhost ip6-loopback\\n' "$h" > /etc/hosts
i=0
while [ "$i" -lt "$FALCON_MOUNTS" ]; do
  eval "tag=\\$FALCON_MOUNT_\${i}_TAG dst=\\$FALCON_MOUNT_\${i}_DST"
  mkdir -p "$dst"
  if ! grep -q " $dst 9p " /proc/mounts; then
    mount -t 9p -o trans=virtio,version=9p2000.L,ro "$tag" "$dst"
  fi
  i=$((i+1))
done
`;

export function setupEnv(node: NodeSpec): Record<string, string> {
  const env: Record<string, string> = { FALCON_HOSTNAME: node.name, FALCON_MOUNTS: String(node.mounts.length) };
  node.mounts.forEach((m, i) => {
    env[`FALCON_MOUNT_${i}_TAG`] = mountTag(i);
    env[`FALCON_MOUNT_${i}_DST`] = m.destination;
  });
  return env;
}

/** POSIX single-quoting, for the serial-login fallback that has no environment channel. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The set-up as one shell command line (environment assignments + the script). */
export function setupCommandLine(node: NodeSpec): string {
  const assigns = Object.entries(setupEnv(node)).map(([k, v]) => `${k}=${shellQuote(v)}`);
  return `${assigns.join(' ')} sh -c ${shellQuote(SETUP_SCRIPT)}`;
}
