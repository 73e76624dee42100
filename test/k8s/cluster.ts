/**
 * A real Kubernetes cluster of N hosts (default two) on this machine, for Falcon's tests:
 * Debian's packages plus the binaries built from Debian's `kubernetes` source (build.ts), each
 * host a network + mount namespace with its own containerd and kubelet (containerd.ts,
 * kubelet.ts), joined by an underlay, the control plane beside them (controlplane.ts,
 * network.ts). See test/k8s/README.md.
 *
 *   const c = await startCluster();       // { kubeconfig, hosts: [{ name, netns, nodeIP, podCIDR }], stop() }
 *   ...
 *   await c.stop();                       // everything gone; leftovers() lists what is not
 *
 * CLI: npx tsx test/k8s/cluster.ts up|down|status|build [--json] [--hosts N] [--name N] ...
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { apiGet, nodeReadiness, type ApiTarget } from './api.js';
import { ensureBinaries, type K8sBinaries } from './build.js';
import { startContainerd, containerdFiles } from './containerd.js';
import { freePort, SERVICE_IP, startApiserver, startControllerManager, startEtcd, startRelay, startScheduler, waitApiserverReady, type ControlPlaneFiles } from './controlplane.js';
import { exited, type Daemon } from './daemons.js';
import { loadFalconImages } from './falcon-images.js';
import { importImage } from './images.js';
import { startKubelet } from './kubelet.js';
import { createCgroupRoot, createMountNamespace, createNetwork, createPinDir, layout, type Layout } from './network.js';
import { ensurePackages, kubectlPath, RUNTIME_PACKAGES } from './packages.js';
import { makePki, writeKubeconfig } from './pki.js';
import { pidAlive, stderrLog, tryRun, waitFor, type Log } from './run.js';
import { readState, writeState, type ClusterState } from './state.js';
import { holdSysctls } from './sysctls.js';
import { leftovers as leftoversOf, teardown, type Who } from './teardown.js';

export { HOST_LABEL } from './kubelet.js';
export { BUSYBOX_REF, buildBusyboxImage } from './images.js';

export const DEFAULT_NAME = 'falcon-k8s';

export interface ClusterOptions {
  /** Prefix of every namespace, node and cgroup name. Default falcon-k8s. */
  name?: string;
  /** Default 2. */
  hosts?: number;
  /** Default /var/tmp/<name> (kept short: containerd's sockets live in it). */
  stateDir?: string;
  /** The API server's port on 127.0.0.1 in the root namespace; another free one if taken. Default 16443. */
  apiPort?: number;
  /** Tear down a cluster of the same name first (a crashed run's) instead of refusing. */
  replace?: boolean;
  /** OCI layout tars to import into every host's containerd, each as its ref. */
  images?: { tar: string; ref: string }[];
  /** Progress lines. Default: stderr. */
  log?: Log;
  /** For the start, after the binaries are there. Default 240 s. */
  timeoutMs?: number;
}

export interface ClusterHost {
  name: string;
  netns: string;
  nodeIP: string;
  podCIDR: string;
}

export interface Cluster {
  name: string;
  stateDir: string;
  logsDir: string;
  /** The admin kubeconfig (root namespace: https://127.0.0.1:<apiPort>, our CA, a token). */
  kubeconfig: string;
  server: string;
  hosts: ClusterHost[];
  controlPlane: { netns: string; ip: string };
  /** The kubectl to use (the machine's, else Debian's kubernetes-client). */
  kubectl: string;
  binaries: { dir: string; version: string; built: boolean; buildSeconds: number };
  /** What this start cost, in ms. */
  timings: { packagesMs: number; binariesMs: number; startMs: number; totalMs: number };
  /** kubectl with this cluster's kubeconfig; never throws on a non-zero exit. */
  kubectlRun(args: string[], o?: { timeoutMs?: number; input?: string }): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Imports an OCI layout tar into every host's containerd as `ref` (imagePullPolicy: Never). */
  importImage(tar: string, ref: string): Promise<void>;
  /** Tears everything down; resolves with what is left (empty) and how long it took. */
  stop(o?: { keepLogs?: boolean }): Promise<{ leftovers: string[]; ms: number }>;
}

function who(o: { name?: string; stateDir?: string }): Who {
  const name = o.name ?? DEFAULT_NAME;
  if (!/^[a-z][a-z0-9-]{0,20}$/.test(name)) throw new Error(`cluster name '${name}': lowercase letters, digits and '-', at most 21 (network namespace and node names derive from it)`);
  return { name, stateDir: path.resolve(o.stateDir ?? `/var/tmp/${name}`) };
}

/** Starts the cluster: builds the binaries when they are not cached, then the hosts and control plane. */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const t0 = Date.now();
  const log = opts.log ?? stderrLog;
  const w = who(opts);
  const timeoutMs = opts.timeoutMs ?? 240_000;
  await ensurePackages(RUNTIME_PACKAGES, log);
  const t1 = Date.now();
  const bins = await ensureBinaries({ log });
  const t2 = Date.now();

  const existing = await leftoversOf(w);
  if (existing.length) {
    if (!opts.replace) throw new Error(`a cluster named '${w.name}' is up or was left behind (${existing.slice(0, 3).join('; ')}${existing.length > 3 ? '; …' : ''}): stop it with \`npx tsx test/k8s/cluster.ts down${w.name !== DEFAULT_NAME ? ` --name ${w.name}` : ''}\`, or pass replace`);
    log(`tearing down what a cluster named '${w.name}' left`);
    const left = await teardown(w, { log });
    if (left.length) throw new Error(`could not clear the old cluster '${w.name}': ${left.join('; ')}`);
  }

  const l = layout({ name: w.name, stateDir: w.stateDir, hosts: opts.hosts ?? 2 });
  const logsDir = path.join(w.stateDir, 'logs');
  mkdirSync(logsDir, { recursive: true, mode: 0o700 });
  const apiPort = await freePort(opts.apiPort ?? 16443);
  const state: ClusterState = {
    name: w.name,
    stateDir: w.stateDir,
    apiPort,
    hosts: l.hosts.map((h) => ({ name: h.name, netns: h.netns, nodeIP: h.nodeIP, podCIDR: h.podCIDR, mountNs: h.mountNs, cgroupRoot: h.cgroupRoot, containerdSocket: containerdFiles(h).socket })),
    cpNetns: l.cpNetns,
    cpIP: l.cpIP,
    daemons: [],
    madeVarLibCni: false,
    binariesDir: bins.dir,
    startedAt: new Date().toISOString(),
  };
  writeState(state);
  const add = (d: Daemon | Daemon[]) => {
    state.daemons.push(...[d].flat());
    writeState(state);
  };
  try {
    log(`starting cluster '${w.name}': ${l.hosts.length} hosts, control plane in ${l.cpNetns}, state in ${w.stateDir}`);
    await holdSysctls(w.stateDir);
    const since = () => `${((Date.now() - t2) / 1000).toFixed(1)} s`;
    await createNetwork(l);
    await createPinDir(l);
    const kc = await credentials(l, apiPort);
    state.kubeconfig = kc.admin;
    state.server = kc.server;
    writeState(state);
    const f: ControlPlaneFiles = { dir: path.join(w.stateDir, 'cp'), logsDir, cpKubeconfig: kc.cp, schedulerKubeconfig: kc.scheduler };
    // The control plane and the hosts' containerds (with their images) come up side by side;
    // the kubelets start once the API server answers, so they register at once.
    const controlPlane = (async () => {
      add(await startEtcd(l, f, '/usr/bin/etcd', timeoutMs));
      const apiserver = startApiserver(l, f, kc.pki, bins);
      add(apiserver);
      add(startRelay(l, f, apiPort));
      await waitApiserverReady(kc.target, apiserver, timeoutMs);
      log(`API server ready at ${kc.server} (${since()})`);
      add(startScheduler(l, f, bins));
      add(startControllerManager(l, f, kc.pki, bins));
    })();
    const runtimes = Promise.allSettled(
      l.hosts.map(async (h) => {
        const { madeVarLibCni } = await createMountNamespace(h);
        if (madeVarLibCni) {
          state.madeVarLibCni = true;
          writeState(state);
        }
        createCgroupRoot(h);
        const cd = await startContainerd(h, logsDir, bins.pauseRef, timeoutMs);
        add(cd.daemon);
        await importImage(cd.files.socket, bins.pauseTar, bins.pauseRef);
        for (const img of opts.images ?? []) await importImage(cd.files.socket, img.tar, img.ref);
        return cd;
      }),
    );
    // All settle before a failure is handled, so the teardown sees everything they started.
    const [cp, rt] = await Promise.allSettled([controlPlane, runtimes]);
    if (cp.status === 'rejected') throw cp.reason;
    const hosts = rt.status === 'fulfilled' ? rt.value : [];
    for (const r of hosts) if (r.status === 'rejected') throw r.reason;
    log(`containerds ready with their images (${since()})`);
    l.hosts.forEach((h, i) => {
      const r = hosts[i]!;
      if (r.status === 'fulfilled') add(startKubelet(h, { logsDir, kubeconfig: kc.nodes[h.name]!, caCert: kc.pki.caCert, socket: r.value.files.socket, binaries: bins }));
    });
    await waitReady(l, kc.target, state, timeoutMs);
    state.readyAt = new Date().toISOString();
    writeState(state);
    const t3 = Date.now();
    log(`cluster '${w.name}' ready in ${((t3 - t2) / 1000).toFixed(1)} s: nodes ${l.hosts.map((h) => h.name).join(', ')}; kubeconfig ${kc.admin}`);
    return handle(state, bins, { packagesMs: t1 - t0, binariesMs: t2 - t1, startMs: t3 - t2, totalMs: t3 - t0 });
  } catch (err) {
    log(`start failed: ${(err as Error).message}`);
    log(`tearing down; the daemons' logs stay in ${logsDir}`);
    const left = await teardown(w, { log, keepLogs: true });
    if (left.length) log(`left after the failed start: ${left.join('; ')}`);
    throw err;
  }
}

async function credentials(l: Layout, apiPort: number) {
  const pki = await makePki(path.join(l.stateDir, 'pki'), { serverIPs: ['127.0.0.1', l.cpIP, SERVICE_IP], nodes: l.hosts.map((h) => h.name) });
  const server = `https://127.0.0.1:${apiPort}`;
  const kdir = path.join(l.stateDir, 'kubeconfig');
  mkdirSync(kdir, { recursive: true, mode: 0o700 });
  const file = (n: string) => path.join(kdir, n);
  const common = { caCert: pki.caCert, cluster: l.name };
  writeKubeconfig(file('admin.kubeconfig'), { ...common, server, token: pki.tokens.admin, user: 'admin' });
  writeKubeconfig(file('controller-manager.kubeconfig'), { ...common, server: 'https://127.0.0.1:6443', token: pki.tokens.controllerManager, user: 'system:kube-controller-manager' });
  writeKubeconfig(file('scheduler.kubeconfig'), { ...common, server: 'https://127.0.0.1:6443', token: pki.tokens.scheduler, user: 'system:kube-scheduler' });
  const nodes: Record<string, string> = {};
  for (const h of l.hosts) {
    nodes[h.name] = file(`${h.name}.kubeconfig`);
    writeKubeconfig(nodes[h.name]!, { ...common, server: `https://${l.cpIP}:6443`, token: pki.tokens.nodes[h.name]!, user: `system:node:${h.name}` });
  }
  const target: ApiTarget = { server, ca: readFileSync(pki.caCert), token: pki.tokens.admin };
  return { pki, server, admin: file('admin.kubeconfig'), cp: file('controller-manager.kubeconfig'), scheduler: file('scheduler.kubeconfig'), nodes, target };
}

/** Every node Ready, and the default service account's token there (pods need it). */
async function waitReady(l: Layout, t: ApiTarget, state: ClusterState, timeoutMs: number): Promise<void> {
  const alive = () => {
    for (const d of state.daemons) {
      const why = exited(d)();
      if (why) return why;
    }
    return undefined;
  };
  await waitFor(
    `nodes ${l.hosts.map((h) => h.name).join(', ')} Ready`,
    timeoutMs,
    async (note) => {
      const r = await nodeReadiness(t);
      note(JSON.stringify(r));
      return l.hosts.every((h) => r[h.name] === 'Ready');
    },
    { alive, intervalMs: 500 },
  );
  await waitFor(
    'the default service account and its token',
    timeoutMs,
    async () => (await apiGet<{ secrets?: unknown[] }>(t, '/api/v1/namespaces/default/serviceaccounts/default')).secrets?.length ?? 0,
    { alive, intervalMs: 300 },
  );
}

function handle(state: ClusterState, bins: K8sBinaries, timings: Cluster['timings']): Cluster {
  const kubectl = kubectlPath();
  const kubeconfig = state.kubeconfig!;
  return {
    name: state.name,
    stateDir: state.stateDir,
    logsDir: path.join(state.stateDir, 'logs'),
    kubeconfig,
    server: state.server!,
    hosts: state.hosts.map((h) => ({ name: h.name, netns: h.netns, nodeIP: h.nodeIP, podCIDR: h.podCIDR })),
    controlPlane: { netns: state.cpNetns, ip: state.cpIP },
    kubectl,
    binaries: { dir: bins.dir, version: bins.manifest.version, built: bins.built, buildSeconds: bins.manifest.buildSeconds },
    timings,
    kubectlRun: (args, o = {}) => tryRun(kubectl, ['--kubeconfig', kubeconfig, ...args], { timeoutMs: o.timeoutMs ?? 60_000, input: o.input }),
    importImage: async (tar, ref) => {
      for (const h of state.hosts) await importImage(h.containerdSocket, tar, ref);
    },
    stop: (o = {}) => stopCluster({ name: state.name, stateDir: state.stateDir, keepLogs: o.keepLogs }),
  };
}

/**
 * A handle on a cluster that is already up (say, one `npx tsx test/k8s/cluster.ts up` started for
 * several test files). Its stop() tears it down like the one startCluster() returns.
 */
export async function attachCluster(o: { name?: string; stateDir?: string } = {}): Promise<Cluster> {
  const w = who(o);
  const state = readState(w.stateDir);
  if (!state?.readyAt || !state.binariesDir) throw new Error(`no cluster named '${w.name}' is up (no ready state in ${w.stateDir}): start one with \`npx tsx test/k8s/cluster.ts up\``);
  const st = await clusterStatus(w);
  if (!st.up) throw new Error(`cluster '${w.name}' is not healthy: ${[...st.hosts.map((h) => `${h.name}: ${h.node}`), ...st.daemons.filter((d) => !d.running).map((d) => `${d.label} exited`)].join('; ')}`);
  const manifest = JSON.parse(readFileSync(path.join(state.binariesDir, 'manifest.json'), 'utf8')) as K8sBinaries['manifest'];
  const bins: K8sBinaries = { dir: state.binariesDir, bin: {} as K8sBinaries['bin'], pauseTar: path.join(state.binariesDir, 'pause.tar'), pauseRef: manifest.pauseRef, manifest, built: false };
  return handle(state, bins, { packagesMs: 0, binariesMs: 0, startMs: 0, totalMs: 0 });
}

/** Tears down the cluster named so (default falcon-k8s), whatever state it is in. */
export async function stopCluster(o: { name?: string; stateDir?: string; keepLogs?: boolean; log?: Log } = {}): Promise<{ leftovers: string[]; ms: number }> {
  const t = Date.now();
  const left = await teardown(who(o), { log: o.log ?? stderrLog, keepLogs: o.keepLogs });
  return { leftovers: left, ms: Date.now() - t };
}

/** What is left of the cluster named so: processes, mounts, namespaces, interfaces, cgroups, its state dir. */
export function leftovers(o: { name?: string; stateDir?: string } = {}): Promise<string[]> {
  return leftoversOf(who(o));
}

export interface ClusterStatus {
  name: string;
  stateDir: string;
  up: boolean;
  kubeconfig?: string;
  server?: string;
  hosts: (ClusterHost & { node?: string })[];
  daemons: { label: string; pid: number; running: boolean; log: string }[];
  leftovers?: string[];
}

export async function clusterStatus(o: { name?: string; stateDir?: string } = {}): Promise<ClusterStatus> {
  const w = who(o);
  const s = readState(w.stateDir);
  if (!s) return { name: w.name, stateDir: w.stateDir, up: false, hosts: [], daemons: [], leftovers: await leftoversOf(w) };
  const daemons = s.daemons.map((d) => ({ label: d.label, pid: d.pid, running: pidAlive(d.pid), log: d.log }));
  let nodes: Record<string, string> = {};
  try {
    const token = JSON.parse(readFileSync(s.kubeconfig!, 'utf8')).users[0].user.token as string;
    const ca = Buffer.from(JSON.parse(readFileSync(s.kubeconfig!, 'utf8')).clusters[0].cluster['certificate-authority-data'] as string, 'base64');
    nodes = await nodeReadiness({ server: s.server!, ca, token });
  } catch (err) {
    nodes = Object.fromEntries(s.hosts.map((h) => [h.name, `API server not answering: ${(err as Error).message}`]));
  }
  const hosts = s.hosts.map((h) => ({ name: h.name, netns: h.netns, nodeIP: h.nodeIP, podCIDR: h.podCIDR, node: nodes[h.name] ?? 'not registered' }));
  const up = daemons.every((d) => d.running) && hosts.every((h) => h.node === 'Ready');
  return { name: s.name, stateDir: s.stateDir, up, kubeconfig: s.kubeconfig, server: s.server, hosts, daemons };
}

// ---- CLI ----------------------------------------------------------------------------------

const USAGE = `usage: npx tsx test/k8s/cluster.ts <command> [options]
  up      build the binaries if needed, start the cluster, print its kubeconfig and hosts
  down    tear it down (every process, mount, namespace, interface, cgroup, the state dir)
  status  daemons, nodes, and what is left when it is not up
  build   build and cache the Kubernetes binaries only (--force: again)
  load    build Falcon's falcon-node image and export base images (default tiny; --image NAME, repeatable), import them into every host
options: --name N (falcon-k8s)  --hosts N (2)  --state-dir D (/var/tmp/<name>)  --api-port P (16443)
         --replace (up: clear a crashed cluster of that name first)  --keep-logs (down)  --json`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      hosts: { type: 'string' },
      'state-dir': { type: 'string' },
      'api-port': { type: 'string' },
      replace: { type: 'boolean' },
      'keep-logs': { type: 'boolean' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
      image: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const cmd = positionals[0];
  if (values.help || !cmd) {
    console.log(USAGE);
    return cmd || values.help ? 0 : 2;
  }
  const base = { name: values.name, stateDir: values['state-dir'] };
  const out = (human: string, json: unknown) => console.log(values.json ? JSON.stringify(json, null, 2) : human);
  switch (cmd) {
    case 'up': {
      const c = await startCluster({ ...base, hosts: values.hosts ? Number(values.hosts) : undefined, apiPort: values['api-port'] ? Number(values['api-port']) : undefined, replace: values.replace });
      const { kubectlRun: _k, importImage: _i, stop: _s, ...plain } = c;
      out(
        [
          `cluster '${c.name}' is up (${(c.timings.totalMs / 1000).toFixed(1)} s${c.binaries.built ? `, binaries built in ${c.binaries.buildSeconds} s` : ', binaries cached'})`,
          `  kubeconfig: ${c.kubeconfig}   (export KUBECONFIG=${c.kubeconfig})`,
          `  API server: ${c.server}`,
          ...c.hosts.map((h) => `  ${h.name}: node IP ${h.nodeIP}, pod CIDR ${h.podCIDR}, netns ${h.netns}`),
          `  logs: ${c.logsDir}`,
          `  down: npx tsx test/k8s/cluster.ts down${c.name !== DEFAULT_NAME ? ` --name ${c.name}` : ''}`,
        ].join('\n'),
        plain,
      );
      return 0;
    }
    case 'down': {
      const r = await stopCluster({ ...base, keepLogs: values['keep-logs'] });
      out(r.leftovers.length ? `left behind:\n${r.leftovers.map((x) => `  ${x}`).join('\n')}` : `torn down in ${(r.ms / 1000).toFixed(1)} s, nothing left`, r);
      return r.leftovers.length ? 1 : 0;
    }
    case 'status': {
      const s = await clusterStatus(base);
      const lines = [`cluster '${s.name}': ${s.up ? 'up' : 'not up'}${s.kubeconfig ? `, kubeconfig ${s.kubeconfig}` : ''}`];
      for (const h of s.hosts) lines.push(`  ${h.name} (${h.nodeIP}, ${h.podCIDR}): ${h.node}`);
      for (const d of s.daemons) lines.push(`  ${d.running ? 'running' : 'EXITED '} ${d.label} pid ${d.pid}`);
      if (s.leftovers?.length) lines.push('left behind:', ...s.leftovers.map((x) => `  ${x}`));
      else if (s.leftovers) lines.push('  nothing of it on this machine');
      out(lines.join('\n'), s);
      return s.up || (s.leftovers && !s.leftovers.length) ? 0 : 1;
    }
    case 'build': {
      const b = await ensureBinaries({ log: stderrLog, force: values.force });
      out(`${b.built ? 'built' : 'cached'}: ${b.dir} (Debian ${b.manifest.debianVersion}, source sha256 ${b.manifest.source.sha256})`, b);
      return 0;
    }
    case 'load': {
      const c = await attachCluster(base);
      const r = await loadFalconImages(c, values.image ?? ['tiny'], (m) => console.error(m));
      out(`imported ${[...r.node, ...Object.values(r.base)].join(', ')} into every host (${(r.ms / 1000).toFixed(1)} s)`, r);
      return 0;
    }
    default:
      console.error(USAGE);
      return 2;
  }
}

if (process.argv[1] && existsSync(process.argv[1]) && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(`error: ${err.message}`);
      process.exit(1);
    },
  );
}
