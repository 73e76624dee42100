/**
 * One kubelet per host, in the host's network and mount namespaces (with its containerd), its
 * own root dir and cgroup root, named after the host, its node IP on the underlay.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { K8sBinaries } from './build.js';
import { startDaemon, type Daemon } from './daemons.js';
import type { HostLayout } from './network.js';

/** The label every node carries, with its host's name as value. */
export const HOST_LABEL = 'falcon.test/host';

export function kubeletRootDir(h: HostLayout): string {
  return path.join(h.dir, 'kubelet');
}

export function kubeletConfig(h: HostLayout, caCert: string): object {
  return {
    kind: 'KubeletConfiguration',
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    address: h.nodeIP,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    // The API server presents its client certificate (O=system:masters) for exec, logs, attach.
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: caCert } },
    authorization: { mode: 'Webhook' },
    cgroupDriver: 'cgroupfs',
    cgroupRoot: h.cgroupRoot,
    cgroupsPerQOS: true,
    failSwapOn: false,
    clusterDomain: 'cluster.local',
    resolvConf: '/etc/resolv.conf',
    // The images are imported, not pulled: image GC would delete the ones no pod uses right now,
    // and the tests' shared disk must not evict their pods.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'nodefs.inodesFree': '1%', 'imagefs.available': '1%' },
    serializeImagePulls: false,
    // Ready is reported at the first status update after registering (default 10 s later).
    nodeStatusUpdateFrequency: '2s',
    runtimeRequestTimeout: '10m',
  };
}

export function startKubelet(h: HostLayout, o: { logsDir: string; kubeconfig: string; caCert: string; socket: string; binaries: K8sBinaries }): Daemon {
  const root = kubeletRootDir(h);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const config = path.join(h.dir, 'kubelet-config.json');
  writeFileSync(config, JSON.stringify(kubeletConfig(h, o.caCert), null, 2) + '\n', { mode: 0o600 });
  return startDaemon(`kubelet-${h.name}`, o.logsDir, {
    netns: h.netns,
    mountNs: h.mountNs,
    cmd: o.binaries.bin.kubelet,
    args: [
      `--config=${config}`,
      `--kubeconfig=${o.kubeconfig}`,
      '--container-runtime=remote',
      `--container-runtime-endpoint=unix://${o.socket}`,
      // cadvisor's own look at containerd (its default is /run/containerd/containerd.sock)
      `--containerd=${o.socket}`,
      `--root-dir=${root}`,
      `--cert-dir=${path.join(root, 'pki')}`,
      `--hostname-override=${h.name}`,
      `--node-ip=${h.nodeIP}`,
      `--node-labels=${HOST_LABEL}=${h.name}`,
      `--pod-infra-container-image=${o.binaries.pauseRef}`,
      `--v=${process.env.FALCON_K8S_KUBELET_V ?? '1'}`,
    ],
  });
}
