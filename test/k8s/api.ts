/** A few requests to the API server for the harness's own waits (no kubectl needed for them). */
import https from 'node:https';

export interface ApiTarget {
  /** https://127.0.0.1:PORT */
  server: string;
  ca: string | Buffer;
  token: string;
}

export function apiRequest(t: ApiTarget, method: string, path: string, o: { body?: unknown; timeoutMs?: number } = {}): Promise<{ status: number; body: string }> {
  const url = new URL(path, t.server);
  const data = o.body === undefined ? undefined : JSON.stringify(o.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: t.ca,
        headers: { Authorization: `Bearer ${t.token}`, Accept: 'application/json', ...(data ? { 'Content-Type': 'application/json' } : {}) },
        timeout: o.timeoutMs ?? 10_000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in ${o.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

export async function apiGet<T>(t: ApiTarget, path: string): Promise<T> {
  const r = await apiRequest(t, 'GET', path);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body.slice(0, 300)}`);
  return JSON.parse(r.body) as T;
}

interface NodeList {
  items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } }[];
}

/** Node name → "Ready" or why not. */
export async function nodeReadiness(t: ApiTarget): Promise<Record<string, string>> {
  const list = await apiGet<NodeList>(t, '/api/v1/nodes');
  const out: Record<string, string> = {};
  for (const n of list.items) {
    const c = n.status?.conditions?.find((x) => x.type === 'Ready');
    out[n.metadata.name] = c?.status === 'True' ? 'Ready' : `${c?.reason ?? 'no Ready condition'}${c?.message ? `: ${c.message}` : ''}`;
  }
  return out;
}
