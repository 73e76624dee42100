/**
 * `falcon p4 check FILE` and `falcon p4 tables FILE [--json]`: help writing a P4 program for
 * SoftNPU (docs/p4.md). `check` compiles it as a switch would and prints every problem with its
 * position; `tables` prints each table's key and action parameter bytes, what a TableAdd needs.
 */
import { Command } from 'commander';
import type { TableLayout } from '../../p4/table-layout.js';
import type { CommandContext } from '../context.js';
import { table } from '../format.js';

async function compile(file: string, radix: number) {
  // The P4 compiler is loaded by these commands only.
  const { compileP4Pipeline } = await import('../../switch/p4-program.js');
  return compileP4Pipeline(file, radix);
}

function radixOf(v: string | undefined): number {
  const n = Number(v ?? 8);
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : 8;
}

function keyText(t: TableLayout): string {
  return t.keys.map((k) => `${k.name}: ${k.matchKind} ${k.width} bit → bytes ${k.offset}..${k.offset + k.length - 1}`).join('; ') || '(no key)';
}

function actionsText(t: TableLayout): string {
  return t.actions.map((a) => `${a.name}(${a.params.map((p) => `${p.name}: ${p.width} bit @${p.offset}`).join(', ')}) ${a.paramBytes} B`).join('; ');
}

export function p4Command(ctx: CommandContext): Command {
  const p4 = new Command('p4').description('check a SoftNPU P4 program and show its table layouts (docs/p4.md)');
  p4.command('check')
    .description('compile FILE as the switch would; print every problem with file:line:col, exit 1 if there is one')
    .argument('<file>', 'the P4 program')
    .option('--radix <n>', 'ports, port 0 included, to compile for', '8')
    .action(async (file: string, o: { radix?: string }) => {
      const p = await compile(file, radixOf(o.radix));
      const layouts = p.tableLayouts();
      ctx.print(`${file}: ok, ${layouts.length} table${layouts.length === 1 ? '' : 's'}`);
    });
  p4.command('tables')
    .description("each table's name, key layout and action parameter bytes: what a TableAdd needs")
    .argument('<file>', 'the P4 program')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const layouts = (await compile(file, 8)).tableLayouts();
      if (o.json) return ctx.print(JSON.stringify(layouts, null, 2));
      ctx.print(
        table(
          ['TABLE', 'KEY BYTES', 'KEY', 'ACTIONS (PARAMETER BYTES)', 'DEFAULT'],
          layouts.map((t) => [t.name, String(t.keyBytes), keyText(t), actionsText(t), t.defaultAction]),
        ),
      );
    });
  return p4;
}
