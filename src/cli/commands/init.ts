/** `falcon init [DIR]`: scaffold a topology project and npm install it. */
import { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { initProject } from '../init.js';

export function initCommand(ctx: CommandContext): Command {
  return new Command('init')
    .description('scaffold a topology project (package.json, tsconfig.json, a duo in topo.ts) and npm install it')
    .argument('[dir]', 'the project folder, new or empty', '.')
    .option('--name <topology>', 'topology name in topo.ts (default: from the folder name)')
    .option('--falcon-spec <spec>', 'npm spec of the falcon dependency (default: file: this falcon package)')
    .option('--no-install', 'write the files only; skip npm install')
    .action(async (dir: string, o: { name?: string; falconSpec?: string; install: boolean }) => {
      const name = await initProject({ dir, name: o.name, falconSpec: o.falconSpec, install: o.install, log: ctx.runner().log });
      const cd = dir === '.' ? '' : `cd ${dir} && `;
      ctx.print(`project ready (topology "${name}"); next: ${cd}${o.install ? '' : 'npm install && '}npx tsx topo.ts launch`);
    });
}
