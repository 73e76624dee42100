/**
 * The switch process: `node --import tsx src/switch/main.ts CONFIG` (or, compiled,
 * `node dist/switch/main.js CONFIG`). {@link switchCommand} gives the exact argv to spawn
 * it detached. It reads the config (config.ts), takes the pid-file lock, runs until SIGTERM
 * or SIGINT, then closes its sockets, saves the tables, releases the lock and exits 0.
 *
 * It is ready (tables restored, ports connecting) once its control socket accepts a
 * connection; poll that (e.g. `SwitchClient.connect` + `radix()`) after spawning.
 *
 * Logs are JSON lines on stderr: `{"ts","level","kind","msg",...}` (FALCON_LOG sets the level).
 * Exit status: 0 after a clean stop, 1 when it could not start (the reason is the last log
 * line, with the error's `code`: LOCK_BUSY when another switch holds the node, NPU_CONFIG,
 * NPU_PROGRAM...).
 */
import { pathToFileURL } from 'node:url';
import { isFalconError } from '../util/errors.js';
import { levelFromEnv, levelOf, formatEvent, type Level, type LogEvent, type Logger } from '../util/log.js';
import { readSwitchConfig } from './config.js';
import { Switch } from './switch.js';

const ORDER: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

/** A Logger writing one JSON object per event. */
export function jsonLogger(level: Level = levelFromEnv(), write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return {
    level,
    enabled: (l) => ORDER[l] <= ORDER[level],
    log(e: LogEvent) {
      const l = levelOf(e);
      if (ORDER[l] > ORDER[level]) return;
      write(JSON.stringify({ ts: new Date().toISOString(), level: l, ...e, text: formatEvent(e) }) + '\n');
    },
  };
}

/** Runs a switch from a config file until a signal; resolves with the exit status. */
export async function runSwitchProcess(configFile: string, log: Logger = jsonLogger()): Promise<number> {
  let sw: Switch;
  try {
    const config = await readSwitchConfig(configFile);
    sw = new Switch(config, { log });
    await sw.start();
  } catch (e) {
    log.log({ kind: 'step', level: 'error', msg: `switch could not start: ${isFalconError(e) ? `[${e.code}] ` : ''}${(e as Error).message}` });
    return 1;
  }
  await new Promise<void>((resolve) => {
    const done = (sig: string) => {
      log.log({ kind: 'step', msg: `${sw.config.name}: ${sig}; stopping` });
      resolve();
    };
    process.once('SIGTERM', () => done('SIGTERM'));
    process.once('SIGINT', () => done('SIGINT'));
  });
  await sw.stop();
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2];
  if (!file || process.argv.length > 3) {
    process.stderr.write('usage: node --import tsx src/switch/main.ts CONFIG.json\n');
    process.exitCode = 2;
  } else {
    // Sockets and files this process creates are owner-only from the start.
    process.umask(0o077);
    process.exitCode = await runSwitchProcess(file);
  }
}
