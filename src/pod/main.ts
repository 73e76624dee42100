/**
 * `falcon-node`, the program of a topology's pods (the falcon-node image's entrypoint):
 *
 *   falcon-node run --topology FILE --node NAME         the node: tunnels, QEMU, agent, set-up; then serves its control socket
 *   falcon-node switch --topology FILE --switch NAME    a SoftNPU switch or sidemux of this pod
 *   falcon-node ready [--switch NAME]                   the readiness probe: exit 0 once the guest (the switch) answers
 *   falcon-node ctl OP [--body JSON]                    a request to the supervisor: status, peers, stop, start, reboot, impair
 *   falcon-node exec --node NAME [--timeout-ms N] [--stdin-bytes N] [--env-json J] -- COMMAND
 *   falcon-node serial --node NAME                      the serial console on stdin/stdout
 *   falcon-node capture --tap TAP [--count N] [-- FILTER...]   pcap of a tunnel tap on stdout
 *
 * The runner reaches every command but `run` and `switch` through `pods/exec`.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Command } from 'commander';
import type { PodRequest } from '../k8s/index.js';
import { SwitchClient } from '../switch/index.js';
import { isFalconError } from '../util/errors.js';
import { askSupervisor } from './client.js';
import { controlSocket, podEnv, podRunContext, readPodTopology } from './context.js';
import { podExec } from './exec.js';
import { Supervisor } from './supervisor.js';
import { runPodSwitch } from './switch.js';

const CTL_TIMEOUT_MS = 15 * 60_000;

function context() {
  return podRunContext(podEnv());
}

async function run(o: { topology: string; node: string }): Promise<void> {
  const c = context();
  const spec = await readPodTopology(o.topology);
  const s = new Supervisor(c, spec, o.node, podEnv());
  const stop = async (sig: string) => {
    c.log.log({ kind: 'step', msg: `${sig}: stopping node "${o.node}"` });
    await s.shutdown();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  // A failed boot keeps the pod (and its logs) for info and hyperstart; the probe reports it.
  await s.start().catch((e) => c.log.log({ kind: 'step', level: 'error', msg: `node "${o.node}" did not come up: ${(e as Error).message}` }));
  await new Promise(() => {});
}

async function ready(o: { switch?: string }): Promise<void> {
  const c = context();
  if (o.switch) {
    const cl = await SwitchClient.connect(c.paths.npuSockets(o.switch).control, { timeoutMs: 3000 });
    try {
      await cl.radix({ timeoutMs: 3000 });
    } finally {
      cl.close();
    }
    return;
  }
  const r = await askSupervisor(controlSocket(c.paths), { op: 'status' }, 4000);
  if (!r.ok || r.status.phase !== 'ready') {
    process.stderr.write(`node ${r.ok ? r.status.phase : r.error}\n`);
    process.exitCode = 1;
  }
}

async function ctl(op: string, o: { body?: string; timeoutMs?: string }): Promise<void> {
  const req = { ...(JSON.parse(o.body ?? '{}') as object), op } as PodRequest;
  const r = await askSupervisor(controlSocket(context().paths), req, Number(o.timeoutMs ?? CTL_TIMEOUT_MS));
  process.stdout.write(JSON.stringify(r) + '\n');
  if (!r.ok) process.exitCode = 1;
}

function serial(o: { node: string }): Promise<void> {
  const sock = net.connect(context().paths.sockets(o.node).console);
  return new Promise((resolve, reject) => {
    sock.on('connect', () => {
      process.stdin.pipe(sock);
      sock.pipe(process.stdout);
    });
    sock.on('error', reject);
    sock.on('close', () => resolve());
    process.stdin.on('end', () => sock.end());
  });
}

function capture(o: { tap: string; count?: string }, filter: string[]): Promise<void> {
  const args = ['-i', o.tap, '-U', '-n', '-w', '-', ...(o.count ? ['-c', o.count] : []), ...filter];
  const child = spawn('tcpdump', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  // The runner ends a capture by closing the exec: stdin's end stops tcpdump.
  process.stdin.on('end', () => child.kill('SIGINT'));
  process.stdin.resume();
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      process.exitCode = code ?? 0;
      // tcpdump ended by itself (--count): an open stdin must not keep us running.
      process.stdin.destroy();
      resolve();
    }),
  );
}

function program(): Command {
  const p = new Command('falcon-node').description("Falcon's program in a topology's pod").showHelpAfterError();
  p.command('run').requiredOption('--topology <file>').requiredOption('--node <name>').action(run);
  p.command('switch')
    .requiredOption('--topology <file>')
    .requiredOption('--switch <name>')
    .action(async (o: { topology: string; switch: string }) => {
      process.umask(0o077);
      process.exitCode = await runPodSwitch(await readPodTopology(o.topology), o.topology, o.switch, context().paths);
    });
  p.command('ready').option('--switch <name>').action(ready);
  p.command('ctl').argument('<op>').option('--body <json>', "the request's fields").option('--timeout-ms <ms>').action(ctl);
  p.command('exec')
    .requiredOption('--node <name>')
    .option('--timeout-ms <ms>')
    .option('--stdin-bytes <n>')
    .option('--env-json <json>')
    .argument('<command...>')
    .action(async (words: string[], o: { node: string; timeoutMs?: string; stdinBytes?: string; envJson?: string }) => {
      await podExec(
        context(),
        {
          node: o.node,
          command: words.join(' '),
          ...(o.timeoutMs ? { timeoutMs: Number(o.timeoutMs) } : {}),
          ...(o.stdinBytes ? { stdinBytes: Number(o.stdinBytes) } : {}),
          ...(o.envJson ? { env: JSON.parse(o.envJson) as Record<string, string> } : {}),
        },
        (b) => process.stdout.write(b),
      );
    });
  p.command('serial').requiredOption('--node <name>').action(serial);
  p.command('capture').requiredOption('--tap <tap>').option('--count <n>').argument('[filter...]').action((filter: string[], o: { tap: string; count?: string }) => capture(o, filter));
  return p;
}

try {
  await program().parseAsync(process.argv);
} catch (e) {
  process.stderr.write(`falcon-node: ${isFalconError(e) ? `[${e.code}] ` : ''}${(e as Error).message}\n`);
  process.exitCode = 1;
}
