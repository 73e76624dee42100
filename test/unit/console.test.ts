import { linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConsoleBusyError,
  ConsoleConnection,
  ConsoleNotRunningError,
  ConsoleWaitError,
  tailFile,
  visibleControlChars,
} from '../../src/guest/console.js';
import { attachSerial, DETACH_KEY } from '../../src/cli/serial-attach.js';

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'falcon-console-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

/** A console server; `clients` holds accepted sockets, newest last. */
async function server(path = join(dir, 'n1.sock')) {
  const clients: net.Socket[] = [];
  const received: Buffer[] = [];
  const srv = net.createServer((s) => {
    clients.push(s);
    s.on('error', () => {});
    s.on('data', (d) => received.push(d));
  });
  await new Promise<void>((r) => srv.listen(path, r));
  const close = () =>
    new Promise<void>((r) => {
      for (const c of clients) c.destroy();
      srv.close(() => r());
    });
  cleanups.push(close);
  const connected = async () => {
    while (clients.length === 0) await new Promise((r) => setTimeout(r, 5));
    return clients.at(-1)!;
  };
  return { path, clients, received: () => Buffer.concat(received).toString(), connected, close };
}

async function connect(path: string, opts = {}) {
  const c = await ConsoleConnection.connect(path, opts);
  cleanups.push(() => c.close());
  return c;
}

describe('ConsoleConnection.connect', () => {
  it('says the node is not running when the socket does not exist', async () => {
    const err = await ConsoleConnection.connect(join(dir, 'web.sock')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConsoleNotRunningError);
    expect((err as Error).message).toBe(`node web is not running (no console at ${join(dir, 'web.sock')}); start it with \`hyperstart web\``);
  });

  it('says the node is not running when nobody listens on a left-over socket', async () => {
    const s = await server();
    const stale = join(dir, 'stale.sock');
    linkSync(s.path, stale);
    await s.close();
    await expect(ConsoleConnection.connect(stale, { nodeName: 'db' })).rejects.toThrow(/^node db is not running \(no console at .*stale\.sock\)/);
  });

  it('refuses, naming the node, when another client holds the console; queues on request', async () => {
    const s = await server();
    await connect(s.path);
    await s.connected();
    const err = await ConsoleConnection.connect(s.path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConsoleBusyError);
    expect((err as Error).message).toMatch(/^node n1's console \(.*n1\.sock\) is in use by another client, and QEMU serves one at a time; leave the other session first/);
    const queued = await connect(s.path, { ifBusy: 'wait' });
    expect(queued.queued).toBe(true);
  });

  it('connects to a socket whose path is longer than a Unix socket address allows', async () => {
    const deep = join(dir, 'd'.repeat(60), 'e'.repeat(60));
    mkdirSync(deep, { recursive: true });
    const path = join(deep, 'n1.sock');
    expect(Buffer.byteLength(path)).toBeGreaterThan(107);
    // The server binds through a short relative path.
    const cwd = process.cwd();
    process.chdir(deep);
    let s;
    try {
      s = await server('n1.sock');
    } finally {
      process.chdir(cwd);
    }
    const c = await connect(path);
    (await s.connected()).write('hi there');
    expect((await c.waitForOutput('there', { timeoutMs: 2000 })).before).toBe('hi ');
  });

  it('honours its timeout and AbortSignal', async () => {
    const s = await server();
    const ac = new AbortController();
    ac.abort(new Error('user gave up'));
    await expect(ConsoleConnection.connect(s.path, { signal: ac.signal })).rejects.toThrow('user gave up');
  });
});

describe('ConsoleConnection.waitForOutput', () => {
  it('matches a string literally across chunks and consumes up to the match', async () => {
    const s = await server();
    const c = await connect(s.path);
    const peer = await s.connected();
    const p = c.waitForOutput('a.b(1)', { timeoutMs: 2000 });
    peer.write('xxa.b');
    await new Promise((r) => setTimeout(r, 20));
    peer.write('(1)yy');
    expect(await p).toEqual({ text: 'a.b(1)', groups: [], before: 'xx' });
    expect(c.unconsumed).toBe('yy');
    // The consumed text does not match again.
    peer.write('zz');
    const m = await c.waitForOutput(/(y+)(z+)/, { timeoutMs: 2000 });
    expect(m.groups).toEqual(['yy', 'zz']);
  });

  it('decodes UTF-8 split across chunks', async () => {
    const s = await server();
    const c = await connect(s.path);
    const peer = await s.connected();
    const bytes = Buffer.from('→ok');
    peer.write(bytes.subarray(0, 1));
    await new Promise((r) => setTimeout(r, 20));
    peer.write(bytes.subarray(1));
    expect((await c.waitForOutput('ok', { timeoutMs: 2000 })).before).toBe('→');
  });

  it('times out with the tail of what it did receive, control characters visible', async () => {
    const s = await server();
    const c = await connect(s.path, { nodeName: 'r1' });
    const peer = await s.connected();
    peer.write('x'.repeat(5000) + 'boot ok\r\n\x1b[6n# ');
    await new Promise((r) => setTimeout(r, 50));
    const err = (await c.waitForOutput(/login: $/, { timeoutMs: 200 }).catch((e: unknown) => e)) as ConsoleWaitError;
    expect(err).toBeInstanceOf(ConsoleWaitError);
    expect(err.reason).toBe('timeout');
    expect(err.message).toMatch(/^timed out after 200 ms waiting for \/login: \$\/ on node r1's console\n--- last output received ---\n/);
    expect(err.message).toContain('xxxboot ok\\r\n\\x1b[6n# \n--- end ---');
    expect(err.tail).toHaveLength(2000 + 1 + 3); // \r and \x1b grow when made visible
  });

  it('says when nothing was received', async () => {
    const s = await server();
    const c = await connect(s.path, { nodeName: 'r1' });
    await expect(c.waitForOutput('x', { timeoutMs: 100, what: 'a prompt' })).rejects.toThrow(
      /^timed out after 100 ms waiting for a prompt on node r1's console \(nothing was received\)$/,
    );
  });

  it('rejects when aborted and when the console closes', async () => {
    const s = await server();
    const c = await connect(s.path, { nodeName: 'r1' });
    const peer = await s.connected();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await expect(c.waitForOutput('never', { signal: ac.signal })).rejects.toMatchObject({ reason: 'aborted' });
    peer.write('last words');
    setTimeout(() => peer.destroy(), 50);
    const err = (await c.waitForOutput('never').catch((e: unknown) => e)) as ConsoleWaitError;
    expect(err.reason).toBe('closed');
    expect(err.message).toMatch(/^node r1's console closed \(did its QEMU exit\?\), while waiting for never\n[^]*last words/);
    await expect(c.write('x')).rejects.toThrow(/cannot write: node r1's console closed/);
  });

  it('with settleMs, only takes a match that is followed by silence', async () => {
    const s = await server();
    const c = await connect(s.path);
    const peer = await s.connected();
    const p = c.waitForOutput(/# $/, { timeoutMs: 3000, settleMs: 150 });
    peer.write('Run # ');
    await new Promise((r) => setTimeout(r, 50));
    peer.write('this, not a prompt\r\n/ # ');
    const m = await p;
    expect(m.before).toBe('Run # this, not a prompt\r\n/ ');
  });

  it('allows one wait at a time', async () => {
    const s = await server();
    const c = await connect(s.path);
    const p = c.waitForOutput('a', { timeoutMs: 100 }).catch(() => {});
    expect(() => c.waitForOutput('b')).toThrow(/one waitForOutput at a time/);
    await p;
  });
});

describe('tailFile and visibleControlChars', () => {
  it('reads the end of a console log, control characters visible', async () => {
    const log = join(dir, 'n1.console.log');
    writeFileSync(log, 'early boot\r\n' + 'y'.repeat(100) + 'Kernel panic\x07\r\n');
    expect(await tailFile(log, 20)).toBe('yyyyyKernel panic\\x07\\r\n');
    expect(await tailFile(log)).toMatch(/^early boot\\r\n/);
    expect(await tailFile(join(dir, 'missing.log'))).toBe('');
  });

  it('does not start with half a UTF-8 character', async () => {
    const log = join(dir, 'u.log');
    writeFileSync(log, 'a→b');
    expect(await tailFile(log, 3)).toBe('b');
  });

  it('keeps newlines and tabs readable', () => {
    expect(visibleControlChars('a\tb\r\n\x1b[0m\x7f')).toBe('a\\tb\\r\n\\x1b[0m\\x7f');
  });
});

/** A stdin stand-in with TTY raw-mode bookkeeping. */
function fakeTty() {
  const stdin = new PassThrough() as PassThrough & { isTTY: boolean; isRaw: boolean; setRawMode: (m: boolean) => void; modes: boolean[] };
  stdin.isTTY = true;
  stdin.isRaw = false;
  stdin.modes = [];
  stdin.setRawMode = (m: boolean) => {
    stdin.isRaw = m;
    stdin.modes.push(m);
  };
  return stdin;
}

function collect() {
  const s = new PassThrough();
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString()));
  return { stream: s, text: () => text };
}

describe('attachSerial', () => {
  it('pipes both ways in raw mode, leaves on ctrl-q and restores the terminal; again and again', async () => {
    const s = await server(join(dir, 'web.sock'));
    for (let round = 1; round <= 2; round++) {
      const stdin = fakeTty();
      const stdout = collect();
      const stderr = collect();
      const done = attachSerial(s.path, { stdin, stdout: stdout.stream, stderr: stderr.stream, handleSignals: false });
      const peer = await s.connected();
      s.clients.length = 0;
      peer.write(`/ # round ${round}`);
      stdin.write('ls\r');
      await new Promise((r) => setTimeout(r, 50));
      stdin.write(Buffer.from([0x61, DETACH_KEY, 0x62]));
      expect(await done).toEqual({ reason: 'detach-key' });
      expect(stdin.modes).toEqual([true, false]);
      expect(stdout.text()).toBe(`/ # round ${round}`);
      expect(stderr.text()).toBe("attached to web's console; ctrl-q leaves (press Enter for a prompt)\n\r\ndetached from web's console\n");
      await new Promise((r) => setTimeout(r, 50));
    }
    // What was typed before ctrl-q went through; what came after it did not.
    expect(s.received()).toBe('ls\rals\ra');
  });

  it('leaves when the console closes, restoring the terminal', async () => {
    const s = await server(join(dir, 'web.sock'));
    const stdin = fakeTty();
    const stderr = collect();
    const done = attachSerial(s.path, { stdin, stdout: collect().stream, stderr: stderr.stream, handleSignals: false });
    (await s.connected()).destroy();
    expect(await done).toEqual({ reason: 'console-closed' });
    expect(stdin.modes).toEqual([true, false]);
    expect(stderr.text()).toMatch(/web's console closed \(did its VM stop\?\)\n$/);
  });

  it('leaves on SIGTERM and on abort', async () => {
    const s = await server(join(dir, 'web.sock'));
    const stdin = fakeTty();
    const done = attachSerial(s.path, { stdin, stdout: collect().stream, stderr: collect().stream });
    await s.connected();
    process.emit('SIGTERM', 'SIGTERM');
    expect(await done).toEqual({ reason: 'signal' });
    expect(stdin.modes).toEqual([true, false]);
    expect(process.listenerCount('SIGTERM')).toBe(0);

    const ac = new AbortController();
    const again = attachSerial(s.path, { stdin: fakeTty(), stdout: collect().stream, stderr: collect().stream, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    expect(await again).toEqual({ reason: 'aborted' });
  });

  it('does not touch raw mode when stdin is not a TTY, and leaves after stdin ends', async () => {
    const s = await server(join(dir, 'web.sock'));
    const stdin = new PassThrough();
    const done = attachSerial(s.path, { stdin, stdout: collect().stream, stderr: collect().stream, handleSignals: false, lingerMs: 50 });
    await s.connected();
    stdin.end('uname\r');
    expect(await done).toEqual({ reason: 'stdin-closed' });
    expect(s.received()).toBe('uname\r');
  });

  it('fails clearly when the node is not running', async () => {
    await expect(attachSerial(join(dir, 'db.sock'), { stdin: fakeTty(), stderr: collect().stream })).rejects.toThrow(
      /^node db is not running \(no console at .*db\.sock\); start it with `hyperstart db`$/,
    );
  });
});
