import { HOST_PACKAGES, missingPackages } from '../host/packages.js';
import { createProcessRunner, type ProcessRunner } from '../host/process.js';
import type { Logger } from '../util/log.js';
import { FalconError } from '../util/errors.js';

/**
 * `falcon setup`: install the Debian packages Falcon needs that are missing, streaming apt's
 * progress. Nothing is installed when everything is there.
 */
export async function setupHost(o: { log: Logger; proc?: ProcessRunner; dryRun?: boolean; signal?: AbortSignal }): Promise<string[]> {
  const proc = o.proc ?? createProcessRunner(o.log);
  const missing = await missingPackages(proc, Object.keys(HOST_PACKAGES));
  if (missing.length === 0) {
    o.log.log({ kind: 'step', level: 'debug', msg: 'all host packages Falcon needs are installed' });
    return [];
  }
  o.log.log({ kind: 'step', msg: `missing host packages: ${missing.map((p) => `${p} (${HOST_PACKAGES[p]})`).join(', ')}` });
  if (o.dryRun) return missing;
  if (process.getuid?.() !== 0) throw new FalconError('PREFLIGHT', `installing ${missing.join(' ')} needs root; run \`sudo falcon setup\` or install them with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const stream = (c: Buffer) => {
    for (const line of c.toString().split('\n')) if (line.trim()) o.log.log({ kind: 'step', msg: `apt: ${line.trim()}` });
  };
  o.log.log({ kind: 'step', msg: 'apt-get update' });
  await proc.run('apt-get', ['update', '-q'], { env, timeoutMs: 10 * 60_000, signal: o.signal });
  o.log.log({ kind: 'step', msg: `apt-get install ${missing.join(' ')}` });
  await proc.run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], {
    env,
    timeoutMs: 30 * 60_000,
    signal: o.signal,
    onStdout: stream,
  });
  const still = await missingPackages(proc, missing);
  if (still.length) throw new FalconError('HOST_COMMAND_FAILED', `apt-get finished but these packages are still missing: ${still.join(', ')}`);
  o.log.log({ kind: 'step', msg: `installed ${missing.length} package${missing.length === 1 ? '' : 's'}` });
  return missing;
}
