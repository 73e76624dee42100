import { promises as fs } from 'node:fs';
import { pidAlive } from './fs.js';

export class LockHeldError extends Error {
  override name = 'LockHeldError';
  constructor(
    readonly file: string,
    readonly holder: { pid: number; what: string; since: string },
  ) {
    super(
      `${file} is held by another falcon command ("${holder.what}", pid ${holder.pid}, since ${holder.since}); ` +
        `wait for it to finish, or stop it (kill ${holder.pid}) and run your command again`,
    );
  }
}

/**
 * An exclusive lock file (O_EXCL) recording the holder's pid and purpose. A lock whose holder is
 * dead (a crashed or killed CLI) is taken over, so a crash never wedges a topology.
 */
export async function acquireLock(file: string, what: string): Promise<{ release(): Promise<void> } & AsyncDisposable> {
  const body = JSON.stringify({ pid: process.pid, what, since: new Date().toISOString() });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, body, { flag: 'wx', mode: 0o600 });
      const release = async () => {
        // Only remove our own lock: a taken-over stale lock belongs to someone else now.
        const cur = await fs.readFile(file, 'utf8').catch(() => '');
        if (cur === body) await fs.rm(file, { force: true });
      };
      return { release, [Symbol.asyncDispose]: release };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder: { pid: number; what: string; since: string } | undefined;
      try {
        holder = JSON.parse(await fs.readFile(file, 'utf8'));
      } catch {
        holder = undefined; // half-written or vanished: treat as stale
      }
      if (holder && typeof holder.pid === 'number' && pidAlive(holder.pid)) {
        throw new LockHeldError(file, holder);
      }
      await fs.rm(file, { force: true });
    }
  }
  throw new Error(`could not take the lock ${file}: it keeps reappearing; another falcon command is starting`);
}
