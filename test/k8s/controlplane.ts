/**
 * The control plane, in its own network namespace (`<name>-cp`, 10.254.0.254 on the underlay):
 * etcd on its loopback, kube-apiserver on :6443 (TLS from our CA, token auth), the scheduler
 * and the controller-manager beside them. A relay (two socats through a Unix socket in the state
 * dir: Unix sockets are not bound to a network namespace) makes the API server reachable from
 * the root namespace at 127.0.0.1:<apiPort> without an address of ours there.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { apiRequest, type ApiTarget } from './api.js';
import type { K8sBinaries } from './build.js';
import { exited, startDaemon, type Daemon } from './daemons.js';
import type { Layout } from './network.js';
import type { Pki } from './pki.js';
import { waitFor } from './run.js';

export const SERVICE_CIDR = '10.96.0.0/16';
export const SERVICE_IP = '10.96.0.1';

export interface ControlPlaneFiles {
  dir: string;
  logsDir: string;
  /** kubeconfig for the scheduler and controller-manager (https://127.0.0.1:6443 inside cp). */
  cpKubeconfig: string;
  schedulerKubeconfig: string;
}

export async function startEtcd(l: Layout, f: ControlPlaneFiles, bin: string, timeoutMs: number): Promise<Daemon> {
  const d = startDaemon('etcd', f.logsDir, {
    netns: l.cpNetns,
    cmd: bin,
    args: [
      '--name', 'cp',
      '--data-dir', path.join(f.dir, 'etcd'),
      '--listen-client-urls', 'http://127.0.0.1:2379',
      '--advertise-client-urls', 'http://127.0.0.1:2379',
      '--listen-peer-urls', 'http://127.0.0.1:2380',
      '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
      '--initial-cluster', 'cp=http://127.0.0.1:2380',
      '--logger', 'zap',
      '--log-outputs', 'stderr',
    ],
    // Debian's etcd reads ETCD_* from the environment: none of the caller's.
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_'))),
  });
  await waitFor('etcd to serve clients', timeoutMs, () => /serving client traffic|ready to serve client requests/.test(readFileSync(d.log, 'utf8')), { alive: exited(d) });
  return d;
}

export function startApiserver(l: Layout, f: ControlPlaneFiles, pki: Pki, b: K8sBinaries): Daemon {
  return startDaemon('kube-apiserver', f.logsDir, {
    netns: l.cpNetns,
    cmd: b.bin['kube-apiserver'],
    args: [
      '--etcd-servers=http://127.0.0.1:2379',
      '--bind-address=0.0.0.0',
      '--secure-port=6443',
      `--advertise-address=${l.cpIP}`,
      `--cert-dir=${path.join(f.dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.apiserverCert}`,
      `--tls-private-key-file=${pki.apiserverKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--token-auth-file=${pki.tokenFile}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      // Else privileged pods are "disallowed by cluster policy".
      '--allow-privileged=true',
      // Else exec looks the node's name up in DNS.
      '--kubelet-preferred-address-types=InternalIP,Hostname',
      `--kubelet-client-certificate=${pki.kubeletClientCert}`,
      `--kubelet-client-key=${pki.kubeletClientKey}`,
      '--profiling=false',
      '--v=1',
    ],
  });
}

export async function waitApiserverReady(t: ApiTarget, d: Daemon, timeoutMs: number): Promise<void> {
  await waitFor(
    'kube-apiserver /readyz',
    timeoutMs,
    async (note) => {
      const r = await apiRequest(t, 'GET', '/readyz', { timeoutMs: 5_000 });
      note(`${r.status} ${r.body.slice(0, 200)}`);
      return r.status === 200;
    },
    { alive: exited(d), intervalMs: 300 },
  );
}

export function startScheduler(l: Layout, f: ControlPlaneFiles, b: K8sBinaries): Daemon {
  const kc = f.schedulerKubeconfig;
  return startDaemon('kube-scheduler', f.logsDir, {
    netns: l.cpNetns,
    cmd: b.bin['kube-scheduler'],
    args: [`--kubeconfig=${kc}`, `--authentication-kubeconfig=${kc}`, `--authorization-kubeconfig=${kc}`, '--leader-elect=false', '--port=0', '--bind-address=127.0.0.1', '--v=1'],
  });
}

export function startControllerManager(l: Layout, f: ControlPlaneFiles, pki: Pki, b: K8sBinaries): Daemon {
  const kc = f.cpKubeconfig;
  return startDaemon('kube-controller-manager', f.logsDir, {
    netns: l.cpNetns,
    cmd: b.bin['kube-controller-manager'],
    args: [
      `--kubeconfig=${kc}`,
      `--authentication-kubeconfig=${kc}`,
      `--authorization-kubeconfig=${kc}`,
      `--service-account-private-key-file=${pki.saKey}`,
      `--root-ca-file=${pki.caCert}`,
      `--cluster-name=${l.name}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--leader-elect=false',
      '--port=0',
      '--bind-address=127.0.0.1',
      '--v=1',
    ],
  });
}

/** The relay: 127.0.0.1:apiPort (root namespace) → Unix socket → 127.0.0.1:6443 (cp). */
export function startRelay(l: Layout, f: ControlPlaneFiles, apiPort: number): Daemon[] {
  const sock = path.join(f.dir, 'apiserver.sock');
  const inner = startDaemon('relay-cp', f.logsDir, {
    netns: l.cpNetns,
    cmd: 'socat',
    args: [`UNIX-LISTEN:${sock},fork,mode=600,unlink-early`, 'TCP:127.0.0.1:6443'],
  });
  const outer = startDaemon('relay-root', f.logsDir, {
    cmd: 'socat',
    args: [`TCP-LISTEN:${apiPort},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${sock}`],
  });
  return [inner, outer];
}

/** `preferred` when nothing listens on it in the root namespace, else a free port. */
export async function freePort(preferred: number): Promise<number> {
  const tryPort = (p: number) =>
    new Promise<number | undefined>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(undefined));
      s.listen(p, '127.0.0.1', () => {
        const got = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(got));
      });
    });
  return (await tryPort(preferred)) ?? (await tryPort(0))!;
}
