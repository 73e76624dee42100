/**
 * Objects as text, canonically: keys sorted at every level, two-space indents, a final newline,
 * so the same objects always give the same bytes (golden files, diffs, `kubectl apply -f`:
 * JSON is YAML).
 */
import type { K8sObject } from './types.js';

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  return v;
}

/**
 * JSON with every object's keys sorted (undefined fields dropped), 2-space indents, a final newline.
 *
 * ```ts
 * canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }); // '{\n  "a": [\n    {\n      "c": 3,\n      "d": 2\n ...'
 * ```
 */
export function canonicalJson(v: unknown): string {
  return `${JSON.stringify(sortKeys(v), null, 2)}\n`;
}

/** A `v1` List of objects, the shape `kubectl apply -f` and `kubectl get -o json` use for many. */
export interface K8sList {
  apiVersion: 'v1';
  kind: 'List';
  items: K8sObject[];
}

/**
 * Objects as one List, in their order (apply order: the namespace first).
 *
 * ```ts
 * canonicalJson(manifestList(k8sManifests(spec, opts).objects)); // feed to kubectl apply -f -
 * ```
 */
export function manifestList(objects: readonly K8sObject[]): K8sList {
  return { apiVersion: 'v1', kind: 'List', items: [...objects] };
}
