/**
 * One containerd per host (Debian's 1.6), in the host's network and mount namespaces, with its
 * own root, state, socket and CNI configuration. One kubelet per containerd: two kubelets on one
 * containerd would garbage-collect each other's pods.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exited, startDaemon, type Daemon } from './daemons.js';
import { LINKS, type HostLayout } from './network.js';
import { run, waitFor } from './run.js';

export const CNI_BIN_DIR = '/usr/lib/cni';

export interface ContainerdFiles {
  root: string;
  state: string;
  socket: string;
  config: string;
  cniConfDir: string;
}

export function containerdFiles(h: HostLayout): ContainerdFiles {
  const d = path.join(h.dir, 'containerd');
  return {
    root: path.join(d, 'root'),
    state: path.join(d, 'state'),
    socket: path.join(d, 'containerd.sock'),
    config: path.join(d, 'config.toml'),
    cniConfDir: path.join(h.dir, 'cni'),
  };
}

const q = (s: string) => JSON.stringify(s); // a TOML basic string

/** config.toml: only what differs from `containerd config default`; the rest keeps its defaults. */
export function containerdConfig(h: HostLayout, f: ContainerdFiles, pauseRef: string): string {
  return `version = 2
root = ${q(f.root)}
state = ${q(f.state)}
# The other snapshotters only log that they can't work here.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = ${q(f.socket)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(path.join(h.dir, 'containerd', 'opt'))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(pauseRef)}
  # Without it every pod sandbox fails with "can't get final child's PID from pipe: EOF"
  # (runc: failed to update /proc/self/oom_score_adj: Permission denied).
  restrict_oom_score_adj = true
  # Pod network namespaces under the state dir, not /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(CNI_BIN_DIR)}
    conf_dir = ${q(f.cniConfDir)}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
`;
}

/** The host's pod network: the CNI bridge with host-local addresses from its pod CIDR. */
export function cniConfig(h: HostLayout): object {
  return {
    cniVersion: '0.4.0',
    name: h.name,
    plugins: [
      {
        type: 'bridge',
        bridge: LINKS.podBridge,
        isGateway: true,
        // Pod to pod across hosts without NAT: the underlay routes the pod CIDRs.
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: h.podCIDR, gateway: h.podGateway }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: path.join(h.dir, 'cni-ipam'),
        },
      },
    ],
  };
}

export async function startContainerd(h: HostLayout, logsDir: string, pauseRef: string, timeoutMs: number): Promise<{ daemon: Daemon; files: ContainerdFiles }> {
  const f = containerdFiles(h);
  for (const d of [f.root, f.state, f.cniConfDir]) mkdirSync(d, { recursive: true, mode: 0o711 });
  writeFileSync(f.config, containerdConfig(h, f, pauseRef), { mode: 0o600 });
  writeFileSync(path.join(f.cniConfDir, '10-falcon.conflist'), JSON.stringify(cniConfig(h), null, 2) + '\n', { mode: 0o644 });
  const daemon = startDaemon(`containerd-${h.name}`, logsDir, { netns: h.netns, mountNs: h.mountNs, cmd: 'containerd', args: ['--config', f.config] });
  await waitFor(`containerd of ${h.name}`, timeoutMs, async () => (await run('ctr', ['--address', f.socket, 'version'], { timeoutMs: 5_000 }), true), { alive: exited(daemon) });
  return { daemon, files: f };
}
