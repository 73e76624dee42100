/**
 * Validation of generated objects against two sets of official Kubernetes schemas:
 *
 * - kubernetes-models (npm, 4.x: Node >= 14; 5.x needs Node 22): the OpenAPI schemas of a recent
 *   Kubernetes compiled to ajv validators: types, formats (quantities), enums, required fields.
 *   Its schemas allow unknown fields, and they are newer than our 1.20 test cluster.
 * - the core/v1 definitions of Kubernetes 1.20.2's own api/openapi-spec/swagger.json, vendored
 *   trimmed in golden/k8s/k8s-1.20-core-schema.json, walked strictly here: every field must
 *   exist in 1.20 (a typo, or a field newer than the cluster, is an error), and required fields,
 *   types and int-or-string are checked.
 *
 * Regenerate the vendored file from a kubernetes source tree (Debian: `apt-get source kubernetes`):
 *   npx tsx test/unit/k8s-schema.ts TREE/api/openapi-spec/swagger.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigMap, Namespace, Pod } from 'kubernetes-models/v1';

interface Schema {
  type?: string;
  $ref?: string;
  format?: string;
  items?: Schema;
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const SCHEMA_FILE = path.join(here, 'golden/k8s/k8s-1.20-core-schema.json');
const ROOTS = { Pod: 'io.k8s.api.core.v1.Pod', Namespace: 'io.k8s.api.core.v1.Namespace', ConfigMap: 'io.k8s.api.core.v1.ConfigMap' } as const;
const COMMENT =
  "The definitions reachable from core/v1 Pod, Namespace and ConfigMap in Kubernetes 1.20.2's api/openapi-spec/swagger.json (Debian's kubernetes source package 1.20.5+really1.20.2-1.1+deb12u1, the version of the two-host test cluster), descriptions and x-kubernetes-* extensions removed. Regenerate with the script in test/unit/k8s-schema.ts.";

let defs: Record<string, Schema> | undefined;

function definitions(): Record<string, Schema> {
  defs ??= (JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as { definitions: Record<string, Schema> }).definitions;
  return defs;
}

function refName(ref: string): string {
  return ref.replace('#/definitions/', '');
}

function typeOk(v: unknown, type: string): boolean {
  if (type === 'object') return typeof v === 'object' && v !== null && !Array.isArray(v);
  if (type === 'array') return Array.isArray(v);
  if (type === 'integer') return Number.isInteger(v);
  return typeof v === type;
}

function walk(v: unknown, s: Schema, at: string, out: string[]): void {
  if (s.$ref) {
    const d = definitions()[refName(s.$ref)];
    if (!d) out.push(`${at}: schema ${s.$ref} is not vendored`);
    else walk(v, d, at, out);
    return;
  }
  if (s.format === 'int-or-string') {
    if (typeof v !== 'string' && !Number.isInteger(v)) out.push(`${at}: must be an integer or a string`);
    return;
  }
  if (!s.type) return;
  if (!typeOk(v, s.type)) {
    out.push(`${at}: must be ${s.type}, is ${JSON.stringify(v)}`);
    return;
  }
  if (s.type === 'array') (v as unknown[]).forEach((x, i) => s.items && walk(x, s.items, `${at}[${i}]`, out));
  if (s.type !== 'object') return;
  const o = v as Record<string, unknown>;
  for (const r of s.required ?? []) if (!(r in o)) out.push(`${at}: the required field ${r} is missing`);
  for (const [k, x] of Object.entries(o)) {
    const p = s.properties?.[k];
    if (p) walk(x, p, `${at}.${k}`, out);
    else if (typeof s.additionalProperties === 'object') walk(x, s.additionalProperties, `${at}.${k}`, out);
    else if (s.properties) out.push(`${at}.${k}: Kubernetes 1.20 has no such field`);
  }
}

/** Problems of an object against Kubernetes 1.20.2's schema, strictly (unknown fields are problems). */
export function k8s120Problems(obj: { kind: string }): string[] {
  const root = ROOTS[obj.kind as keyof typeof ROOTS];
  if (!root) return [`kind ${obj.kind} has no vendored 1.20 schema`];
  const out: string[] = [];
  walk(obj, { $ref: `#/definitions/${root}` }, obj.kind, out);
  return out;
}

/** Problems of an object against kubernetes-models' schemas (empty when valid). */
export function kubernetesModelsProblems(obj: { kind: string }): string[] {
  const make = { Pod: (o: unknown) => new Pod(o as never), Namespace: (o: unknown) => new Namespace(o as never), ConfigMap: (o: unknown) => new ConfigMap(o as never) }[obj.kind];
  if (!make) return [`kind ${obj.kind} is not checked`];
  try {
    make(obj).validate();
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

function reachable(all: Record<string, Schema>, roots: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name) || !all[name]) return;
    seen.add(name);
    const rec = (x: unknown): void => {
      if (Array.isArray(x)) x.forEach(rec);
      else if (x && typeof x === 'object')
        for (const [k, v] of Object.entries(x)) {
          if (k === '$ref' && typeof v === 'string') visit(refName(v));
          else rec(v);
        }
    };
    rec(all[name]);
  };
  roots.forEach(visit);
  return seen;
}

function strip(x: unknown, isProperties = false): unknown {
  if (Array.isArray(x)) return x.map((v) => strip(v));
  if (!x || typeof x !== 'object') return x;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(x).sort()) {
    if (!isProperties && (k === 'description' || k.startsWith('x-kubernetes-'))) continue;
    out[k] = strip((x as Record<string, unknown>)[k], !isProperties && k === 'properties');
  }
  return out;
}

/** The vendored file's text from a full swagger.json. */
export function trimSwagger(swagger: { definitions: Record<string, Schema> }): string {
  const names = [...reachable(swagger.definitions, Object.values(ROOTS))].sort();
  const trimmed = { $comment: COMMENT, definitions: Object.fromEntries(names.map((n) => [n, strip(swagger.definitions[n])])) };
  return `${JSON.stringify(trimmed, null, 1)}\n`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const src = process.argv[2];
  if (!src) {
    console.error('usage: npx tsx test/unit/k8s-schema.ts KUBERNETES_TREE/api/openapi-spec/swagger.json');
    process.exit(2);
  }
  writeFileSync(SCHEMA_FILE, trimSwagger(JSON.parse(readFileSync(src, 'utf8')) as { definitions: Record<string, Schema> }));
  console.log(`wrote ${SCHEMA_FILE}`);
}
