/**
 * The cluster's credentials, made with openssl: a CA, the API server's serving certificate (for
 * 127.0.0.1, the underlay address and the service IP), its client certificate toward the
 * kubelets, the service-account key pair, and a token file for everyone else (kubectl users,
 * the scheduler, the controller-manager, each kubelet as system:node:<name>).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run } from './run.js';

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  kubeletClientCert: string;
  kubeletClientKey: string;
  saKey: string;
  saPub: string;
  tokenFile: string;
  tokens: { admin: string; scheduler: string; controllerManager: string; nodes: Record<string, string> };
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function makePki(dir: string, o: { serverIPs: string[]; nodes: string[] }): Promise<Pki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (n: string) => path.join(dir, n);
  await run('openssl', ['req', '-x509', ...EC, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '3650', '-subj', '/CN=falcon-k8s-ca']);
  const sans = [
    ...o.serverIPs.map((i) => `IP:${i}`),
    'DNS:localhost',
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
  ];
  const signed = (name: string, subj: string, ext: string[]) =>
    run('openssl', [
      'req', '-x509', ...EC, '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`), '-days', '3650', '-subj', subj,
      '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-addext', 'basicConstraints=critical,CA:FALSE', ...ext.flatMap((e) => ['-addext', e]),
    ]);
  await signed('apiserver', '/CN=kube-apiserver', [`subjectAltName=${sans.join(',')}`, 'extendedKeyUsage=serverAuth', 'keyUsage=critical,digitalSignature,keyEncipherment']);
  await signed('apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', ['extendedKeyUsage=clientAuth', 'keyUsage=critical,digitalSignature,keyEncipherment']);
  await run('openssl', ['genrsa', '-out', f('sa.key'), '2048']);
  await run('openssl', ['rsa', '-in', f('sa.key'), '-pubout', '-out', f('sa.pub')]);

  const token = () => randomBytes(24).toString('hex');
  const tokens = { admin: token(), scheduler: token(), controllerManager: token(), nodes: Object.fromEntries(o.nodes.map((n) => [n, token()])) };
  const lines = [
    `${tokens.admin},admin,admin,"system:masters"`,
    `${tokens.scheduler},system:kube-scheduler,system:kube-scheduler`,
    `${tokens.controllerManager},system:kube-controller-manager,system:kube-controller-manager,"system:masters"`,
    ...o.nodes.map((n) => `${tokens.nodes[n]},system:node:${n},system:node:${n},"system:nodes"`),
  ];
  writeFileSync(f('tokens.csv'), lines.join('\n') + '\n', { mode: 0o600 });
  for (const k of ['ca.key', 'apiserver.key', 'apiserver-kubelet-client.key', 'sa.key']) chmodSync(f(k), 0o600);
  return {
    dir,
    caCert: f('ca.crt'),
    caKey: f('ca.key'),
    apiserverCert: f('apiserver.crt'),
    apiserverKey: f('apiserver.key'),
    kubeletClientCert: f('apiserver-kubelet-client.crt'),
    kubeletClientKey: f('apiserver-kubelet-client.key'),
    saKey: f('sa.key'),
    saPub: f('sa.pub'),
    tokenFile: f('tokens.csv'),
    tokens,
  };
}

/** A kubeconfig with the CA's data and a bearer token (JSON, which is YAML). */
export function writeKubeconfig(file: string, o: { server: string; caCert: string; token: string; user: string; cluster: string }): void {
  const ca = readFileSync(o.caCert).toString('base64');
  const cfg = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: o.cluster, cluster: { server: o.server, 'certificate-authority-data': ca } }],
    users: [{ name: o.user, user: { token: o.token } }],
    contexts: [{ name: o.cluster, context: { cluster: o.cluster, user: o.user, namespace: 'default' } }],
    'current-context': o.cluster,
  };
  writeFileSync(file, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
}
