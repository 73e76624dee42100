import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** This package's version: package.json is two folders up from src/<layer> and dist/<layer> alike. */
export function falconVersion(): string {
  if (cached) return cached;
  try {
    cached = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    cached = 'unknown';
  }
  return cached;
}
