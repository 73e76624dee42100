/**
 * `$topo web [--port N] [--open]`: serve the web view of the topology on 127.0.0.1 until ctrl-c
 * or SIGTERM; prints the URL with its token (on stdout, never to the log). See docs/web.md.
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { FalconError } from '../../util/errors.js';
import { startWebServer } from '../../web/index.js';
import type { CommandContext } from '../context.js';

function port(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n > 65535) throw new FalconError('INVALID_ARGUMENT', `web --port takes a port number from 0 to 65535 (0: any free port), not "${v}"`);
  return n;
}

/** The path of `xdg-open` on PATH, if there. */
async function findXdgOpen(): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const f = path.join(dir, 'xdg-open');
    if (await access(f, constants.X_OK).then(() => true, () => false)) return f;
  }
  return undefined;
}

export function webCommand(ctx: CommandContext): Command {
  return new Command('web')
    .description('serve a web page of the running topology on 127.0.0.1 (live graph, consoles, exec, hyperstop/hyperstart, captures); ctrl-c ends it')
    .option('-p, --port <n>', 'the port (default 0: any free port)', port, 0)
    .option('--open', 'open the page in the desktop browser (xdg-open)')
    .action(async (o: { port: number; open?: boolean }) => {
      const runner = ctx.runner();
      const web = await startWebServer(runner, { port: o.port, log: runner.log });
      ctx.stdout(`web view of topology "${runner.name}": ${web.url}\nctrl-c stops it\n`);
      if (o.open) {
        const xdg = await findXdgOpen();
        if (xdg) spawn(xdg, [web.url], { stdio: 'ignore', detached: true }).on('error', () => {}).unref();
        else process.stderr.write('--open: xdg-open is not installed, so the page cannot be opened for you; open the URL above in a browser\n');
      }
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await web.close();
      process.stderr.write('web view stopped\n');
    });
}
