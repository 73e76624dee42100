/**
 * The Debian packages the test cluster needs, installed by the harness itself when missing
 * (CI starts from a fresh machine).
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { run, tryRun, type Log } from './run.js';

/** A command's path on PATH (and the sbin folders, which root's PATH may lack), or undefined. */
export function which(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];
  for (const d of dirs.filter(Boolean)) {
    const p = path.join(d, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** What running a cluster needs. */
export const RUNTIME_PACKAGES = [
  'etcd-server',
  'containerd',
  'runc',
  'containernetworking-plugins',
  'iptables',
  'iproute2',
  'util-linux', // nsenter, unshare
  'procps', // sysctl
  'socat', // the API server's relay into the root namespace
  'openssl', // the cluster's CA and certificates
  'umoci', // OCI images (pause, busybox)
  'gcc', // the pause binary and the test image's udp tool, static
  'libc6-dev',
  'busybox-static',
];

/** What building the Kubernetes binaries from Debian's source package needs, on top. */
export const BUILD_PACKAGES = ['golang-go', 'rsync', 'dpkg-dev', 'make', 'ca-certificates'];

/** The ones of `pkgs` dpkg has installed (one dpkg-query for all). */
async function installedOf(pkgs: string[]): Promise<Set<string>> {
  const r = await tryRun('dpkg-query', ['-W', '-f=${Package} ${Status}\n', ...pkgs], { timeoutMs: 30_000 });
  const ok = new Set<string>();
  for (const line of r.stdout.split('\n')) {
    const [name, ...status] = line.split(' ');
    if (name && status.join(' ') === 'install ok installed') ok.add(name.split(':')[0]!);
  }
  return ok;
}

/** apt-get install of the packages that are missing (apt-get update first, once). */
export async function ensurePackages(pkgs: string[], log: Log): Promise<void> {
  const want = [...pkgs];
  // kubectl: the machine's own when there is one (any recent kubectl talks to 1.20), else Debian's.
  if (!which('kubectl')) want.push('kubernetes-client');
  const have = await installedOf(want);
  const missing = want.filter((p) => !have.has(p));
  if (!missing.length) return;
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-q'], { timeoutMs: 10 * 60_000, env });
  await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { timeoutMs: 20 * 60_000, env });
}

/** The kubectl the harness and its tests use. */
export function kubectlPath(): string {
  const p = which('kubectl');
  if (p) return p;
  throw new Error('no kubectl on this machine (ensurePackages installs Debian\'s kubernetes-client)');
}
