/**
 * `$topo exec NODE COMMAND... [--falcon-dir DIR] [-t S] [-i] [--dump]`: run a command in a node
 * and exit with its status. Which words are Falcon's options and which the guest's: the
 * trailing-run rule (../argv.ts).
 */
import { Command } from 'commander';
import { takesTrailingWords } from '../argv.js';
import type { CommandContext } from '../context.js';
import { isSeconds, parseSeconds } from '../options.js';

interface ExecOpts {
  timeout?: number;
  stdin?: boolean;
  dump?: boolean;
}

export function execCommand(ctx: CommandContext): Command {
  const cmd = new Command('exec')
    .description('run a shell command in a node; exits with its status')
    .argument('<node>')
    .argument('<command...>', 'the command (words are joined with spaces and run by /bin/sh -c)')
    .option('-t, --timeout <seconds>', 'give up after this many seconds', parseSeconds('exec --timeout'))
    .option('-i, --stdin', "pass this command's standard input to the guest command")
    .option('--dump', "show the guest's output as it arrives, instead of when the command ends")
    .passThroughOptions()
    .addHelpText(
      'after',
      '\nFalcon\'s options go before NODE, between NODE and COMMAND, or at the end of the line in their long forms\n' +
        '(and -t SECONDS): exec violin nproc --falcon-dir /tmp/x. -- after NODE gives every later word to the guest.\n',
    )
    .action(async (node: string, words: string[], o: ExecOpts) => {
      // Standard input is read only when asked for, so a loop feeding a script never loses it.
      const input = o.stdin ? await readAll(process.stdin) : undefined;
      const timeoutMs = o.timeout !== undefined ? o.timeout * 1000 : undefined;
      const command = words.join(' ');
      const runner = ctx.runner();
      let status: { exitCode: number | null; signal: string | null };
      if (o.dump) {
        const to = { stdout: (b: Buffer) => ctx.stdout(b), stderr: (b: Buffer) => void process.stderr.write(b) };
        status = await runner.execDump(node, command, { timeoutMs, input, to });
      } else {
        // Buffers: the guest's output reaches our stdout byte for byte.
        const res = await runner.exec(node, command, { timeoutMs, input, encoding: 'buffer' });
        if (res.stdout.length) ctx.stdout(res.stdout);
        if (res.stderr.length) process.stderr.write(res.stderr);
        status = res;
      }
      ctx.setExit(status.exitCode ?? 128 + signalNumber(status.signal));
    });
  // `-t 5` at the end of the line is Falcon's; `ls -t` keeps its -t.
  return takesTrailingWords(cmd, { '-t': isSeconds });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };
function signalNumber(name: string | null): number {
  return (name && SIGNALS[name]) || 0;
}
