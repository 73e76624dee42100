/**
 * The exec API's pure parts: result encodings, ExecError, the handshake reader, the connection
 * pool, state.json checks, FALCON_BOOT_TIMEOUT, and node handles given to a Runner.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, createConnection, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { ExecError, encodeResult, tailLines, type ExecResult } from '../../src/guest/exec-types.js';
import { handshake, readHelloReply } from '../../src/guest/exec-handshake.js';
import { ExecConnectionPool, type PooledConnection } from '../../src/guest/exec-pool.js';
import { FrameType, encodeFrame } from '../../src/guest/exec-protocol.js';
import { Runner, bootTimeoutFromEnv } from '../../src/runner/runner.js';
import { parseState, readState } from '../../src/runner/state.js';
import { FalconPaths } from '../../src/runner/paths.js';
import { isFalconError } from '../../src/util/errors.js';
import { sleep } from '../../src/util/abort.js';
import { silentLogger } from '../../src/util/log.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'falcon-exec-api-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const raw = (o: Partial<ExecResult<Buffer>> = {}): ExecResult<Buffer> => ({
  exitCode: 0,
  signal: null,
  stdout: Buffer.alloc(0),
  stderr: Buffer.alloc(0),
  durationMs: 5,
  ...o,
});

describe('exec result encodings', () => {
  it('decodes stdout and stderr as UTF-8 strings by default', () => {
    const r = encodeResult(raw({ stdout: Buffer.from('violin\n'), stderr: Buffer.from('é\n') }));
    expect(r.stdout.trim()).toBe('violin');
    expect(r.stderr).toBe('é\n');
  });

  it("keeps the bytes as they are with encoding 'buffer'", () => {
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a]);
    const r = encodeResult(raw({ stdout: bytes }), 'buffer');
    expect(Buffer.isBuffer(r.stdout)).toBe(true);
    expect(r.stdout.equals(bytes)).toBe(true);
  });
});

describe('result types follow the encoding (checked by tsc)', () => {
  it('exec and succeed give strings by default and Buffers with encoding buffer', () => {
    type D = InstanceType<typeof Runner>;
    expectTypeOf<Awaited<ReturnType<D['exec']>>>().toMatchTypeOf<ExecResult<string> | ExecResult<Buffer>>();
    const typed = async (d: D) => {
      expectTypeOf((await d.exec('n', 'x')).stdout).toEqualTypeOf<string>();
      expectTypeOf((await d.exec('n', 'x', { timeoutMs: 1 })).stderr).toEqualTypeOf<string>();
      expectTypeOf((await d.exec('n', 'x', { encoding: 'buffer' })).stdout).toEqualTypeOf<Buffer>();
      expectTypeOf((await d.succeed('n', 'x')).stdout).toEqualTypeOf<string>();
      expectTypeOf((await d.succeed('n', 'x', { encoding: 'buffer' })).stderr).toEqualTypeOf<Buffer>();
    };
    expect(typeof typed).toBe('function');
  });
});

describe('ExecError', () => {
  it('says command, node and exit status on one line, then the last 20 lines of stderr', () => {
    const stderr = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    const e = new ExecError('violin', 'cat /nope', { exitCode: 2, signal: null, stdout: 'out', stderr, durationMs: 7 });
    const lines = e.message.split('\n');
    expect(lines[0]).toBe('command "cat /nope" failed on node "violin" with exit status 2');
    expect(lines.slice(1)).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 11}`));
    expect(e.code).toBe('EXEC_FAILED');
    expect(isFalconError(e)).toBe(true);
    expect(e).toMatchObject({ node: 'violin', command: 'cat /nope', exitCode: 2, signal: null, stdout: 'out', stderr, durationMs: 7 });
  });

  it('names the signal when the command was killed, and is one line when stderr is empty', () => {
    const e = new ExecError('piano', 'sleep 100', { exitCode: null, signal: 'SIGKILL', stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), durationMs: 1 });
    expect(e.message).toBe('command "sleep 100" on node "piano" was killed by SIGKILL');
    expect(Buffer.isBuffer(e.stderr)).toBe(true);
  });

  it('keeps at most about 2 KiB of stderr, cut at a line boundary, and a multi-line command on one line', () => {
    const stderr = Buffer.from(('x'.repeat(999) + '\n').repeat(10));
    const e = new ExecError('violin', 'echo a\necho b', { exitCode: 1, signal: null, stdout: Buffer.alloc(0), stderr, durationMs: 1 });
    const [head, ...tail] = e.message.split('\n');
    expect(head).toBe('command "echo a echo b" failed on node "violin" with exit status 1');
    expect(Buffer.byteLength(tail.join('\n'))).toBeLessThanOrEqual(2048);
    expect(tail.every((l) => l === 'x'.repeat(999))).toBe(true);
    expect(tail.length).toBe(2);
  });

  it('tailLines leaves short text whole', () => {
    expect(tailLines('a\nb\n')).toBe('a\nb');
  });
});

const NONCE = 0x1122334455667788n;
const ack = (version: number, nonce = NONCE) => {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(version, 0);
  return encodeFrame(FrameType.HelloAck, nonce, Buffer.concat([p, Buffer.from('falcon-agent test')]));
};

describe('readHelloReply', () => {
  it('skips stale bytes, waits for a whole reply, and hands over what follows it', () => {
    const after = encodeFrame(FrameType.Pong, 5n);
    const all = Buffer.concat([Buffer.from('stale output of an earlier client'), ack(1, 99n), ack(1), after]);
    const cut = all.length - after.length - 3;
    const partial = readHelloReply(all.subarray(0, cut), NONCE, 'node t');
    expect(partial.kind).toBe('more');
    const r = readHelloReply(all, NONCE, 'node t');
    expect(r.kind).toBe('ack');
    if (r.kind !== 'ack') return;
    expect(r.ack).toEqual({ version: 1, agent: 'falcon-agent test' });
    expect(r.leftover.equals(after)).toBe(true);
  });

  it('keeps only a possible start of the reply while none is there', () => {
    const r = readHelloReply(Buffer.alloc(100, 0x41), NONCE, 'node t');
    expect(r).toMatchObject({ kind: 'more' });
    if (r.kind === 'more') expect(r.pending.length).toBe(15);
  });

  it('reports another protocol version and a refusal with their codes', () => {
    const v = readHelloReply(ack(7), NONCE, 'node t');
    expect(v.kind === 'error' && v.error.code).toBe('EXEC_VERSION');
    expect(v.kind === 'error' && v.error.message).toMatch(/protocol 7.*rebuild/);
    const refused = readHelloReply(encodeFrame(FrameType.Error, NONCE, Buffer.from('busy')), NONCE, 'node t');
    expect(refused.kind === 'error' && refused.error.code).toBe('EXEC_AGENT_ERROR');
  });
});

describe('handshake', () => {
  let server: Server;
  let sock: string;
  beforeAll(async () => {
    sock = join(dir, 'hs.sock');
    // Answers a HELLO with stale bytes, then the ack in two pieces.
    server = createServer((c) => {
      c.once('data', async (hello) => {
        const nonce = hello.readBigUInt64BE(8);
        const reply = ack(1, nonce);
        c.write(Buffer.from('junk'));
        c.write(reply.subarray(0, 10));
        await sleep(20);
        c.write(reply.subarray(10));
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
  });
  afterAll(() => server.close());

  it('completes against a server that sends stale bytes and a reply in pieces', async () => {
    const s = createConnection({ path: sock });
    const r = await handshake(s, { nonce: NONCE, timeoutMs: 2000, where: 'test' });
    expect(r.ack.version).toBe(1);
    expect(r.leftover.length).toBe(0);
    s.destroy();
  });

  it('says the node is not running when the socket does not exist', async () => {
    const s = createConnection({ path: join(dir, 'none.sock') });
    const e = await handshake(s, { nonce: NONCE, timeoutMs: 2000, where: 'node ghost' }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'EXEC_NOT_RUNNING' });
    expect(String(e)).toMatch(/node ghost.*not running/);
  });

  it('gives up with EXEC_NO_ANSWER when nothing answers', async () => {
    const silent = createServer(() => {});
    const p = join(dir, 'silent.sock');
    await new Promise<void>((r) => silent.listen(p, r));
    const e = await handshake(createConnection({ path: p }), { nonce: NONCE, timeoutMs: 200, where: 'node mute' }).catch((x: unknown) => x);
    silent.close();
    expect(e).toMatchObject({ code: 'EXEC_NO_ANSWER' });
  });
});

class FakeConn implements PooledConnection {
  closed = false;
  alive: boolean[] = [];
  constructor(readonly id: number) {}
  async exec(command: string) {
    await sleep(10);
    return raw({ stdout: Buffer.from(`${this.id}:${command}`) });
  }
  keepProcessAlive(busy: boolean) {
    this.alive.push(busy);
  }
  close() {
    this.closed = true;
  }
}

describe('ExecConnectionPool', () => {
  it('shares one connection among concurrent execs and closes it after the linger time', async () => {
    const made: FakeConn[] = [];
    const pool = new ExecConnectionPool(async () => {
      const c = new FakeConn(made.length);
      made.push(c);
      return c;
    }, 30);
    const rs = await Promise.all(['a', 'b', 'c'].map((c) => pool.exec('/s', c)));
    expect(rs.map((r) => r.stdout.toString())).toEqual(['0:a', '0:b', '0:c']);
    expect(made).toHaveLength(1);
    expect(made[0]!.alive.at(-1)).toBe(false);
    await sleep(80);
    expect(made[0]!.closed).toBe(true);
    expect(pool.size).toBe(0);
    expect((await pool.exec('/s', 'd')).stdout.toString()).toBe('1:d');
    pool.closeAll();
  });

  it('replaces a connection that closed, and drops a failed connect so the next exec tries again', async () => {
    let n = 0;
    const pool = new ExecConnectionPool(async () => {
      if (n++ === 0) throw new Error('refused');
      return new FakeConn(n);
    }, 1000);
    await expect(pool.exec('/s', 'x')).rejects.toThrow('refused');
    const first = await pool.exec('/s', 'y');
    expect(first.stdout.toString()).toBe('2:y');
    pool.closeAll();
    expect((await pool.exec('/s', 'z')).stdout.toString()).toBe('3:z');
    pool.closeAll();
  });
});

describe('state.json', () => {
  const file = '/x/.falcon/state.json';
  const good = { version: 1, topology: 't', accel: 'tcg', imageDir: '/i', nodes: { a: { disk: '/d', image: 'tiny', exec: 'agent', qemuArgs: ['-m'] } } };

  it('parses a valid file', () => {
    expect(parseState(JSON.stringify(good), file).nodes.a?.exec).toBe('agent');
  });

  it('names the file, each bad field and the fix when the content does not match', () => {
    const bad = { ...good, accel: 'hvf', nodes: { a: { ...good.nodes.a, exec: 'ssh', qemuArgs: 'x' } } };
    let e: (Error & { code?: string }) | undefined;
    try {
      parseState(JSON.stringify(bad), file);
    } catch (x) {
      e = x as Error & { code?: string };
    }
    expect(e?.code).toBe('STATE_FILE');
    expect(e?.message).toContain(`${file} is damaged`);
    expect(e?.message).toMatch(/accel:/);
    expect(e?.message).toMatch(/nodes\.a\.exec:/);
    expect(e?.message).toMatch(/nodes\.a\.qemuArgs:/);
    expect(e?.message).toMatch(/destroy the topology.*launch it again/);
  });

  it('says when the file is not JSON or of another version', () => {
    expect(() => parseState('{"version": 1, "topo', file)).toThrow(/state\.json is not valid JSON.*destroy/);
    expect(() => parseState(JSON.stringify({ ...good, version: 2 }), file)).toThrow(/format version 2, this Falcon reads version 1/);
  });

  it('readState: no file is no state; a damaged file is an error', async () => {
    const paths = new FalconPaths(join(dir, 'st'));
    expect(await readState(paths)).toBeUndefined();
    await mkdir(paths.dir, { recursive: true });
    await writeFile(paths.stateFile, '[]');
    await expect(readState(paths)).rejects.toMatchObject({ code: 'STATE_FILE' });
  });
});

describe('FALCON_BOOT_TIMEOUT', () => {
  it('is seconds; unset or empty means the default', () => {
    expect(bootTimeoutFromEnv({ FALCON_BOOT_TIMEOUT: '300' })).toBe(300_000);
    expect(bootTimeoutFromEnv({ FALCON_BOOT_TIMEOUT: '2.5' })).toBe(2500);
    expect(bootTimeoutFromEnv({})).toBeUndefined();
    expect(bootTimeoutFromEnv({ FALCON_BOOT_TIMEOUT: '' })).toBeUndefined();
  });

  it.each(['abc', '0', '-5', '10s', 'Infinity'])('refuses %j with INVALID_ARGUMENT naming the variable and what it takes', (v) => {
    let err: unknown;
    try {
      bootTimeoutFromEnv({ FALCON_BOOT_TIMEOUT: v });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(String(err)).toContain(`FALCON_BOOT_TIMEOUT=${JSON.stringify(v)} is not a positive number of seconds`);
  });
});

describe('Runner and FALCON_BOOT_TIMEOUT', () => {
  it('launch refuses a bad value before it creates anything', async () => {
    const falconDir = join(dir, 'bt', '.falcon');
    const d = new Runner('bt', { falconDir, logger: silentLogger, imageDir: join(dir, 'images'), env: { FALCON_BOOT_TIMEOUT: 'soon' } });
    d.node('n', 'tiny', 1, 256);
    await expect(d.launch()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('FALCON_BOOT_TIMEOUT="soon"') });
    await expect(stat(falconDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('Runner methods take a node handle or its name', () => {
  const make = async (name: string) => {
    const d = new Runner(name, { falconDir: await mkdtemp(join(dir, 'rd-')), logger: silentLogger, imageDir: join(dir, 'images') });
    return { d, a: d.node('alto', 'tiny', 1, 256) };
  };

  it.each(['exec', 'succeed', 'consoleSocket', 'reboot', 'snapshot', 'hyperstop', 'hyperstart'] as const)(
    '%s with a handle finds the node (it is only not launched yet)',
    async (method) => {
      const { d, a } = await make('handles');
      const call = {
        exec: () => d.exec(a, 'true'),
        succeed: () => d.succeed(a, 'true'),
        consoleSocket: () => d.consoleSocket(a),
        reboot: () => d.reboot(a),
        snapshot: () => d.snapshot(a, 'img'),
        hyperstop: () => d.hyperstop(a),
        hyperstart: () => d.hyperstart([a]),
      }[method];
      const e = await call().catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'NODE_NOT_LAUNCHED' });
      expect(String(e)).toContain('node "alto" has not been launched');
    },
  );

  it("refuses another topology's handle and an unknown name, listing the nodes", async () => {
    const { d } = await make('one');
    const other = (await make('two')).a;
    await expect(d.exec(other, 'true')).rejects.toMatchObject({ code: 'NODE_NOT_FOUND', message: expect.stringContaining('belongs to topology "two"') });
    await expect(d.reboot('bass')).rejects.toMatchObject({ code: 'NODE_NOT_FOUND', message: expect.stringContaining('its nodes are: alto') });
  });
});
