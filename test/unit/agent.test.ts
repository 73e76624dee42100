/**
 * The real guest agent, compiled with buildAgent() and run on the host in --unix-listen mode
 * (it plays QEMU's part: a Unix socket server taking one client at a time), driven by the real
 * client. No VM needed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../src/guest/agent-build.js';
import {
  ExecChannelError,
  ExecConnection,
  ExecTimeoutError,
  execOverChannel,
  pingAgent,
  signalName,
  waitForAgent,
} from '../../src/guest/exec-client.js';
import { FrameDecoder, FrameType, encodeExec, encodeFrame, encodeHello, type Frame } from '../../src/guest/exec-protocol.js';
import { createProcessRunner, recordingRunner } from '../../src/host/process.js';
import { sleep } from '../../src/util/abort.js';
import { memoryLogger, silentLogger } from '../../src/util/log.js';

let dir: string;
let agentBin: string;
let sock: string;
const agents: ChildProcess[] = [];

function startAgent(path: string): ChildProcess {
  const child = spawn(agentBin, ['--unix-listen', path], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  agents.push(child);
  return child;
}

/** Running, and not a zombie waiting for whoever inherited it to reap it. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await sleep(50);
  }
  return !alive(pid);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'falcon-agent-test-'));
  const log = memoryLogger();
  const t0 = Date.now();
  agentBin = await buildAgent({ cacheDir: join(dir, 'cache'), runner: createProcessRunner(), log });
  console.log(`agent built in ${Date.now() - t0} ms`);
  expect(log.events.some((e) => e.kind === 'step')).toBe(true);
  sock = join(dir, 'exec.sock');
  startAgent(sock);
  await waitForAgent(sock, { deadlineMs: 5000 });
}, 120_000);

afterAll(async () => {
  for (const a of agents) a.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('buildAgent', () => {
  it('caches by source hash: the second build returns the cached binary and runs no compiler', async () => {
    const runner = recordingRunner();
    const again = await buildAgent({ cacheDir: join(dir, 'cache'), runner, log: silentLogger });
    expect(again).toBe(agentBin);
    expect(runner.calls).toEqual([]);
    expect(agentBin).toMatch(/falcon-agent-[0-9a-f]{16}$/);
    expect((await stat(agentBin)).mode & 0o111).not.toBe(0);
  });

  it('compiles statically with warnings on', async () => {
    const runner = recordingRunner();
    const out = await buildAgent({ cacheDir: join(dir, 'cache2'), runner, log: silentLogger }).catch((e: Error) => e);
    // The recording runner does not create the file, so the rename fails; the arguments are what matter.
    expect(out).toBeInstanceOf(Error);
    expect(runner.calls).toHaveLength(1);
    const { command, args } = runner.calls[0]!;
    expect(command).toBe('gcc');
    expect(args).toEqual(expect.arrayContaining(['-static', '-O2', '-Wall', '-Wextra']));
    expect(args.at(-1)).toMatch(/guest-agent\/falcon-agent\.c$/);
  });

  it('says what to install when the compiler is missing', async () => {
    const e = await buildAgent({ cacheDir: join(dir, 'cache3'), runner: createProcessRunner(), log: silentLogger, cc: 'no-such-cc-xyz' }).catch(
      (x: Error) => x,
    );
    expect(String(e)).toMatch(/C compiler "no-such-cc-xyz" is not installed.*apt-get install/);
  });
});

describe('falcon-agent over a Unix socket', () => {
  it('answers a handshake and a `true` round trip (its time is printed)', async () => {
    const p = await pingAgent(sock, { timeoutMs: 5000 });
    expect(p.version).toBe(1);
    expect(p.agent).toMatch(/^falcon-agent /);
    const t0 = Date.now();
    const r = await execOverChannel(sock, 'true');
    const ms = Date.now() - t0;
    console.log(`exec true: ${ms} ms`);
    expect(r.exitCode).toBe(0);
  });

  it('reports exit codes 0, 1 and 42, stdout and stderr apart', async () => {
    for (const code of [0, 1, 42]) {
      const r = await execOverChannel(sock, `echo out; echo err >&2; exit ${code}`);
      expect(r).toMatchObject({ exitCode: code, signal: null });
      expect(r.stdout.toString()).toBe('out\n');
      expect(r.stderr.toString()).toBe('err\n');
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect((await execOverChannel(sock, 'false')).exitCode).toBe(1);
    expect((await execOverChannel(sock, 'no-such-command-xyz')).exitCode).toBe(127);
  });

  it('reports death by signal as such', async () => {
    const r = await execOverChannel(sock, 'echo before; kill -TERM $$');
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
    expect(r.stdout.toString()).toBe('before\n');
    expect((await execOverChannel(sock, 'kill -9 $$')).signal).toBe('SIGKILL');
    expect(signalName(11)).toBe('SIGSEGV');
  });

  it('carries 4 MB of binary output intact (its time is printed)', async () => {
    const t0 = Date.now();
    const r = await execOverChannel(sock, 'head -c 4194304 /dev/urandom > /tmp/.fa-4m.$$; sha256sum < /tmp/.fa-4m.$$ >&2; cat /tmp/.fa-4m.$$; rm -f /tmp/.fa-4m.$$');
    const ms = Date.now() - t0;
    console.log(`4 MB exec: ${ms} ms`);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.length).toBe(4 * 1024 * 1024);
    expect(r.stderr.toString().split(' ')[0]).toBe(sha(r.stdout));
  });

  it('carries 4 MB on stdout and stderr at once', async () => {
    const r = await execOverChannel(sock, 'head -c 4194304 /dev/zero | tr "\\0" a & head -c 4194304 /dev/zero | tr "\\0" b >&2; wait');
    expect(r.stdout.length).toBe(4 * 1024 * 1024);
    expect(r.stderr.length).toBe(4 * 1024 * 1024);
    expect(r.stdout.every((c) => c === 0x61)).toBe(true);
    expect(r.stderr.every((c) => c === 0x62)).toBe(true);
  });

  it('runs long commands and keeps quotes and newlines', async () => {
    const long = `echo ${'x'.repeat(300)} | wc -c`;
    expect(long.length).toBeGreaterThan(300);
    expect((await execOverChannel(sock, long)).stdout.toString().trim()).toBe('301');
    const cmd = `printf '%s|' "double \\"quoted\\"" 'single '"'"'quoted'"'"'' \`echo back\` \nfor i in 1 2; do\n  echo "line $i"\ndone`;
    const r = await execOverChannel(sock, cmd);
    expect(r.stdout.toString()).toBe(`double "quoted"|single 'quoted'|back|line 1\nline 2\n`);
    expect((await execOverChannel(sock, `echo '${'y'.repeat(100_000)}' | wc -c`)).stdout.toString().trim()).toBe('100001');
  });

  it('sets a sane environment and lets the caller add to it', async () => {
    const r = await execOverChannel(sock, 'echo "$PATH|$HOME|$FOO"; pwd', { env: { FOO: 'a b=c', HOME: '/tmp' } });
    const [line, cwd] = r.stdout.toString().trim().split('\n');
    expect(line).toBe('/usr/sbin:/usr/bin:/sbin:/bin|/tmp|a b=c');
    expect(['/root', '/']).toContain(cwd);
  });

  it('feeds stdin, binary-safe', async () => {
    const input = Buffer.alloc(1024 * 1024 + 17);
    for (let i = 0; i < input.length; i++) input[i] = (i * 7919) & 0xff;
    const r = await execOverChannel(sock, 'cat', { input });
    expect(sha(r.stdout)).toBe(sha(input));
    expect((await execOverChannel(sock, 'tr a-z A-Z', { input: 'hello\n' })).stdout.toString()).toBe('HELLO\n');
    // Without input, stdin is at EOF at once (cat must not hang).
    expect((await execOverChannel(sock, 'cat; echo done', { timeoutMs: 5000 })).stdout.toString()).toBe('done\n');
    // A command that ignores its input still finishes.
    expect((await execOverChannel(sock, 'echo ok', { input: Buffer.alloc(3 * 1024 * 1024) })).stdout.toString()).toBe('ok\n');
  });

  it('does not die of SIGPIPE and gives commands default SIGPIPE', async () => {
    const r = await execOverChannel(sock, 'yes | head -n 3');
    expect(r).toMatchObject({ exitCode: 0 });
    expect(r.stdout.toString()).toBe('y\ny\ny\n');
  });

  it('kills the process group on timeout, with the partial output in the error', async () => {
    const e = await execOverChannel(sock, 'echo started; echo $$ >&2; sleep 30 & echo $!; wait', { timeoutMs: 500 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExecTimeoutError);
    const te = e as ExecTimeoutError;
    expect(te.signal).toBe('SIGTERM');
    expect(te.message).toMatch(/timed out after 500 ms and was killed \(it ended by SIGTERM\)/);
    expect(te.message).toContain('started');
    const [, sleepPid] = te.stdout.toString().trim().split('\n');
    expect(await waitGone(Number(sleepPid), 3000)).toBe(true);
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const e = (await execOverChannel(sock, 'trap "" TERM; echo $$; sleep 30', { timeoutMs: 300, killGraceMs: 300 }).catch((x: unknown) => x)) as ExecTimeoutError;
    expect(e).toBeInstanceOf(ExecTimeoutError);
    expect(e.signal).toBe('SIGKILL');
  });

  it('aborts on an AbortSignal and kills the command', async () => {
    const ac = new AbortController();
    let pid = 0;
    const p = execOverChannel(sock, 'echo $$; exec sleep 30', {
      signal: ac.signal,
      onStdout: (c) => {
        pid = Number(c.toString().trim());
        ac.abort(new Error('user pressed ^C'));
      },
    });
    await expect(p).rejects.toThrow('user pressed ^C');
    expect(pid).toBeGreaterThan(0);
    expect(await waitGone(pid, 4000)).toBe(true);
  });

  it('runs two execs at once on one connection', async () => {
    const conn = await ExecConnection.connect(sock);
    try {
      // Each prints when it started and ended (ns); run one after the other, they could not overlap.
      const [a, b] = await Promise.all([
        conn.exec('s=$(date +%s%N); sleep 1; echo a $s $(date +%s%N)'),
        conn.exec('s=$(date +%s%N); sleep 1; echo b >&2; echo $s $(date +%s%N); exit 3'),
      ]);
      const [, aStart, aEnd] = a.stdout.toString().trim().split(' ').map(Number);
      const [bStart, bEnd] = b.stdout.toString().trim().split(' ').map(Number);
      expect(a.stdout.toString()).toMatch(/^a \d+ \d+\n$/);
      expect(b).toMatchObject({ exitCode: 3 });
      expect(b.stderr.toString()).toBe('b\n');
      expect(aStart!).toBeLessThan(bEnd!);
      expect(bStart!).toBeLessThan(aEnd!);
      // Many small ones.
      const many = await Promise.all(Array.from({ length: 40 }, (_, i) => conn.exec(`echo ${i}`)));
      expect(many.map((r) => r.stdout.toString())).toEqual(Array.from({ length: 40 }, (_, i) => `${i}\n`));
      // The connection still answers a ping after 42 execs on it.
      await expect(conn.ping()).resolves.toEqual(expect.any(Number));
    } finally {
      conn.close();
    }
  });

  it('queues a second client until the first disconnects, and both succeed', async () => {
    const [a, b] = await Promise.all([execOverChannel(sock, 'sleep 0.5; echo a'), execOverChannel(sock, 'echo b')]);
    expect(a.stdout.toString()).toBe('a\n');
    expect(b.stdout.toString()).toBe('b\n');
  });

  it('lets many clients queue at once (QEMU-like backlog of 1: EAGAIN is retried)', async () => {
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => execOverChannel(sock, `sleep 0.1; echo ${i}`)));
    expect(rs.map((r) => r.stdout.toString())).toEqual(Array.from({ length: 6 }, (_, i) => `${i}\n`));
  });

  it('kills a disconnected client`s commands and then serves the next client', async () => {
    const conn = await ExecConnection.connect(sock);
    let pid = 0;
    const got = new Promise<void>((resolve) => {
      void conn
        .exec('echo $$; exec sleep 30', {
          onStdout: (c) => {
            pid = Number(c.toString().trim());
            resolve();
          },
        })
        .catch(() => {});
    });
    await got;
    conn.close();
    expect(await waitGone(pid, 4000)).toBe(true);
    expect((await execOverChannel(sock, 'echo next')).stdout.toString()).toBe('next\n');
  });

  it('survives a client that dies mid-frame, garbage, and frames before HELLO', async () => {
    // Half an EXEC frame, then gone.
    const frame = encodeExec(77n, { command: 'echo never' });
    await rawSession(sock, async (s) => {
      s.write(encodeHello(5n));
      s.write(frame.subarray(0, 25));
    });
    // Garbage only.
    await rawSession(sock, async (s) => {
      s.write(Buffer.from('GET / HTTP/1.0\r\n\r\n'.repeat(100)));
    });
    // An EXEC without HELLO gets an error, not a run.
    await rawSession(sock, async (s, next) => {
      s.write(encodeExec(9n, { command: 'echo x' }));
      const f = await next();
      expect(f.type).toBe(FrameType.Error);
      expect(f.payload.toString()).toMatch(/before HELLO/);
    });
    expect((await execOverChannel(sock, 'echo alive')).stdout.toString()).toBe('alive\n');
  });

  it('resynchronises when a new HELLO lands inside a dead client`s torn frame (virtio-serial case)', async () => {
    // On a virtio port the agent may miss a reconnect, so a new client's bytes can follow a torn
    // frame on the same stream. The agent drops the torn frame after 2 s idle; the resent HELLO
    // then gets through. Here one socket plays both clients.
    await rawSession(sock, async (s, next) => {
      const torn = encodeExec(1n, { command: `echo ${'z'.repeat(500)}` }).subarray(0, 40);
      s.write(torn);
      s.write(encodeHello(0xabcn)); // swallowed into the torn frame's payload
      await sleep(2500);
      s.write(encodeHello(0xabcn));
      const f = await next();
      expect(f.type).toBe(FrameType.HelloAck);
      expect(f.id).toBe(0xabcn);
    });
  }, 10_000);

  it('refuses an unsupported protocol version clearly', async () => {
    await rawSession(sock, async (s, next) => {
      const hello = encodeHello(3n, 99);
      s.write(hello);
      const f = await next();
      expect(f.type).toBe(FrameType.Error);
      expect(f.payload.toString()).toMatch(/protocol version 99 is not supported.*rebuild/);
    });
  });
});

describe('client errors', () => {
  it('says the node is not running when there is no socket', async () => {
    const e = await execOverChannel(join(dir, 'nope.sock'), 'true', { node: 'violin' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExecChannelError);
    expect((e as ExecChannelError).code).toBe('EXEC_NOT_RUNNING');
    expect(String(e)).toMatch(/node violin .*not running.*Launch the topology/);
  });

  it('says the node is not running when nobody listens on the socket', async () => {
    const path = join(dir, 'dead.sock');
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(path, r));
    // Closing a listening Unix socket leaves no file; bind a fresh socket without listening instead.
    srv.close();
    const e = await execOverChannel(path, 'true').catch((x: unknown) => x);
    expect((e as ExecChannelError).code).toBe('EXEC_NOT_RUNNING');
  });

  it('times out the handshake when nothing answers, and honours abort', async () => {
    const path = join(dir, 'silent.sock');
    const srv = createServer((c) => c.resume());
    await new Promise<void>((r) => srv.listen(path, r));
    try {
      const e = await pingAgent(path, { timeoutMs: 300, node: 'viola' }).catch((x: unknown) => x);
      expect((e as ExecChannelError).code).toBe('EXEC_NO_ANSWER');
      expect(String(e)).toMatch(/node viola .*did not answer within 300 ms.*booting/);
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('stop')), 100);
      await expect(pingAgent(path, { timeoutMs: 10_000, signal: ac.signal })).rejects.toThrow('stop');
      const log = memoryLogger();
      await expect(waitForAgent(path, { deadlineMs: 800, log })).rejects.toThrow(/did not answer/);
    } finally {
      srv.close();
    }
  });

  it('skips stale output from an earlier client before its HELLO_ACK', async () => {
    // A fake agent that first replays frames meant for someone else, torn in the middle.
    const path = join(dir, 'fake.sock');
    const srv = createServer((c) => {
      const dec = new FrameDecoder();
      c.on('data', (chunk: Buffer) => {
        for (const f of dec.push(chunk)) {
          if (f.type === FrameType.Hello) {
            const stale = encodeFrame(FrameType.Stdout, 99n, Buffer.alloc(5000, 1));
            c.write(stale.subarray(1234));
            c.write(encodeFrame(FrameType.HelloAck, f.id, Buffer.from([0, 0, 0, 1, 0x66])));
          } else if (f.type === FrameType.Exec) {
            c.write(encodeFrame(FrameType.Stdout, f.id, Buffer.from('fake\n')));
            c.write(encodeFrame(FrameType.Exit, f.id, Buffer.from([0, 0, 0, 0, 0, 0, 0, 7])));
          }
        }
      });
    });
    await new Promise<void>((r) => srv.listen(path, r));
    try {
      const r = await execOverChannel(path, 'anything');
      expect(r).toMatchObject({ exitCode: 7 });
      expect(r.stdout.toString()).toBe('fake\n');
    } finally {
      srv.close();
    }
  });

  it('waitForAgent retries until the agent appears', async () => {
    const path = join(dir, 'late.sock');
    setTimeout(() => startAgent(path), 600);
    const log = memoryLogger();
    const r = await waitForAgent(path, { deadlineMs: 10_000, log, node: 'cello' });
    expect(r.agent).toMatch(/falcon-agent/);
    expect(log.events.some((e) => e.kind === 'retry' && /cello/.test(e.what))).toBe(true);
  });

  it('rejects pending execs with the partial output when the agent dies', async () => {
    const path = join(dir, 'dying.sock');
    const a = startAgent(path);
    await waitForAgent(path, { deadlineMs: 5000 });
    const p = execOverChannel(path, 'echo partial; sleep 30', {
      onStdout: () => a.kill('SIGKILL'),
    });
    const e = await p.catch((x: unknown) => x);
    expect((e as ExecChannelError).code).toBe('EXEC_CONNECTION_LOST');
    expect(String(e)).toMatch(/closed unexpectedly[\s\S]*partial/);
  });
});

/** A hand-driven client: `next()` yields the agent's frames one by one. */
async function rawSession(path: string, body: (s: Socket, next: () => Promise<Frame>) => Promise<void>): Promise<void> {
  const s = createConnection({ path });
  await new Promise<void>((r, j) => {
    s.once('connect', r);
    s.once('error', j);
  });
  const dec = new FrameDecoder();
  const queue: Frame[] = [];
  let wake: (() => void) | undefined;
  s.on('data', (c: Buffer) => {
    queue.push(...dec.push(c));
    wake?.();
  });
  const next = async (): Promise<Frame> => {
    const end = Date.now() + 5000;
    while (queue.length === 0) {
      if (Date.now() > end) throw new Error('no frame from the agent within 5 s');
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    return queue.shift()!;
  };
  try {
    await body(s, next);
  } finally {
    s.destroy();
    await sleep(50);
  }
}
