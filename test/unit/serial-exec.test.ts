import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConsoleWaitError } from '../../src/guest/console.js';
import { execOverSerial } from '../../src/guest/serial-exec.js';

interface FakeOptions {
  /** Show a login prompt (otherwise a shell is always there, as in the tiny image). */
  login?: boolean;
  password?: string;
  /** Input is ignored for this long after start. */
  bootMs?: number;
  /** Print the login prompt when boot ends (else stay silent until Enter). */
  promptOnBoot?: boolean;
  /** Appended to the shell prompt, like bash's bracketed-paste switch. */
  promptSuffix?: string;
  /** Echo wraps lines at this width, like a terminal. */
  width?: number;
}

/**
 * A fake serial console: a Unix socket server that behaves like getty + login + a shell on a
 * tty. It echoes input (not passwords), turns LF into CR LF, wraps long echoed lines, and runs
 * shell lines in a persistent host `sh` so variables carry over between lines.
 */
class FakeConsole {
  readonly path: string;
  /** Every line the client typed. */
  readonly lines: string[] = [];
  /** How many ctrl-c were typed. */
  interrupts = 0;
  state: 'booting' | 'login' | 'password' | 'shell' = 'booting';
  private server = net.createServer((s) => this.onClient(s));
  private client: net.Socket | undefined;
  private line = '';
  private col = 0;
  private sh: ChildProcessWithoutNullStreams | undefined;
  private bootTimer: NodeJS.Timeout | undefined;

  constructor(
    dir: string,
    private readonly opts: FakeOptions = {},
  ) {
    this.path = join(dir, 'fake.sock');
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(this.path, r));
    const booted = () => {
      if (this.opts.login) {
        this.state = 'login';
        if (this.opts.promptOnBoot ?? true) this.out('\r\nfake login: ');
      } else {
        this.startShell();
        if (this.opts.promptOnBoot ?? true) this.prompt();
      }
    };
    if (this.opts.bootMs) this.bootTimer = setTimeout(booted, this.opts.bootMs);
    else booted();
  }

  async stop(): Promise<void> {
    clearTimeout(this.bootTimer);
    this.sh?.kill('SIGKILL');
    this.client?.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private out(s: string) {
    this.client?.write(s);
  }

  private prompt() {
    this.out(`fake# ${this.opts.promptSuffix ?? ''}`);
  }

  private startShell() {
    this.sh?.kill('SIGKILL');
    const sh = spawn('sh', [], { stdio: 'pipe' });
    const fwd = (d: Buffer) => this.out(d.toString('utf8').replace(/\n/g, '\r\n'));
    sh.stdout.on('data', fwd);
    sh.stderr.on('data', fwd);
    sh.stdin.on('error', () => {});
    this.sh = sh;
    this.state = 'shell';
  }

  private onClient(s: net.Socket) {
    this.client = s;
    s.on('error', () => {});
    s.on('data', (d) => {
      for (const ch of d.toString('utf8')) this.onChar(ch);
    });
  }

  private onChar(ch: string) {
    if (this.state === 'booting') return;
    const echo = this.state !== 'password';
    if (ch === '\r' || ch === '\n') {
      if (echo) this.out('\r\n');
      this.col = 0;
      const line = this.line;
      this.line = '';
      this.lines.push(line);
      this.onLine(line);
    } else if (ch === '\x15') {
      this.line = '';
    } else if (ch === '\x03') {
      this.interrupts++;
      this.out('^C\r\n');
      this.line = '';
      if (this.state === 'shell') {
        this.startShell();
        this.prompt();
      }
    } else {
      this.line += ch;
      if (echo) {
        this.out(ch);
        if (++this.col >= (this.opts.width ?? 80)) {
          this.out('\r\n');
          this.col = 0;
        }
      }
    }
  }

  private onLine(line: string) {
    switch (this.state) {
      case 'login':
        if (line === '') this.out('fake login: ');
        else if (line !== 'root') this.out('Login incorrect\r\nfake login: ');
        else if (this.opts.password !== undefined) {
          this.state = 'password';
          this.out('Password: ');
        } else this.loggedIn();
        return;
      case 'password':
        this.out('\r\n');
        if (line === this.opts.password) this.loggedIn();
        else {
          this.state = 'login';
          this.out('Login incorrect\r\nfake login: ');
        }
        return;
      case 'shell':
        if (line.trim() === 'exit') {
          if (this.opts.login) {
            this.sh?.kill('SIGKILL');
            this.sh = undefined;
            this.state = 'login';
            this.out('\r\nfake login: ');
          } else {
            this.startShell();
            this.prompt();
          }
          return;
        }
        // The prompt comes back once the line has run.
        this.sh!.stdin.write(`${line}\nprintf '%s' 'fake# ${this.opts.promptSuffix ?? ''}'\n`);
        return;
      default:
    }
  }

  private loggedIn() {
    this.startShell();
    this.out('Last login: Mon Nov 25 13:00:00 on ttyS0\r\nWelcome to the fake console\r\n');
    this.prompt();
  }
}

let dir: string;
let fake: FakeConsole | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'falcon-serial-exec-'));
});
afterEach(async () => {
  await fake?.stop();
  fake = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function startFake(opts: FakeOptions = {}): Promise<FakeConsole> {
  fake = new FakeConsole(dir, opts);
  await fake.start();
  return fake;
}

describe('execOverSerial against a fake console', () => {
  it('runs commands at a shell prompt and reports exit statuses 0, 1 and 42', async () => {
    const f = await startFake();
    expect(await execOverSerial(f.path, 'echo hello-$((6*7))', { timeoutMs: 10_000 })).toEqual({ exitCode: 0, stdout: 'hello-42\n' });
    expect(await execOverSerial(f.path, 'false', { timeoutMs: 10_000 })).toEqual({ exitCode: 1, stdout: '' });
    expect(await execOverSerial(f.path, 'echo out; exit 42', { timeoutMs: 10_000 })).toEqual({ exitCode: 42, stdout: 'out\n' });
    // Already at a shell: no login, so no logout either.
    expect(f.lines).not.toContain('exit');
  });

  it('logs in with user and password, runs the command, and logs out', async () => {
    const f = await startFake({ login: true, password: 'secret' });
    const r = await execOverSerial(f.path, 'echo "$((40+2))"; exit 3', { password: 'secret', timeoutMs: 10_000 });
    expect(r).toEqual({ exitCode: 3, stdout: '42\n' });
    expect(f.lines.slice(0, 3)).toEqual(['', 'root', 'secret']);
    expect(f.lines.at(-1)).toBe('exit');
    await new Promise((r) => setTimeout(r, 100));
    expect(f.state).toBe('login');
    // Again: a fresh login each time.
    expect(await execOverSerial(f.path, 'echo again', { password: 'secret', timeoutMs: 10_000 })).toEqual({ exitCode: 0, stdout: 'again\n' });
  });

  it('logs in without a password when none is asked for, despite a "Last login:" line', async () => {
    const f = await startFake({ login: true });
    expect(await execOverSerial(f.path, 'echo in', { timeoutMs: 10_000 })).toEqual({ exitCode: 0, stdout: 'in\n' });
    expect(f.lines.filter((l) => l === 'root')).toHaveLength(1);
  });

  it('says a password is needed when asked for one it was not given', async () => {
    const f = await startFake({ login: true, password: 'secret' });
    await expect(execOverSerial(f.path, 'true', { nodeName: 'n1', timeoutMs: 10_000 })).rejects.toThrow(
      /node n1 asks for root's password on its serial console; pass the password/,
    );
  });

  it('reports a refused password instead of looping at the login prompt', async () => {
    const f = await startFake({ login: true, password: 'secret' });
    await expect(execOverSerial(f.path, 'true', { password: 'wrong', nodeName: 'n1', timeoutMs: 10_000 })).rejects.toThrow(
      /logging in as root on node n1's console failed[^]*Login incorrect/,
    );
  });

  it('runs a command much longer than the terminal width, in short lines', async () => {
    const f = await startFake({ width: 80 });
    const long = 'x'.repeat(10_000);
    const r = await execOverSerial(f.path, `echo ${long} | wc -c; echo ${long} | head -c 5`, { timeoutMs: 20_000 });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n').map((s) => s.trim())).toEqual(['10001', 'xxxxx']);
    expect(Math.max(...f.lines.map((l) => l.length))).toBeLessThan(300);
  });

  it('passes quotes, backslashes, dollars and newlines through untouched', async () => {
    const f = await startFake();
    const cmd = `printf '%s\\n' "it's \\"quoted\\"" 'a $HOME \\\\ b'\nx='two\nlines'\necho "$x"\nprintf 'no newline at end'`;
    const r = await execOverSerial(f.path, cmd, { timeoutMs: 10_000 });
    expect(r).toEqual({ exitCode: 0, stdout: `it's "quoted"\na $HOME \\\\ b\ntwo\nlines\nno newline at end` });
  });

  it('keeps blank lines and stderr (merged) in the output', async () => {
    const f = await startFake();
    const r = await execOverSerial(f.path, 'echo a; echo; echo err >&2; echo; echo', { timeoutMs: 10_000 });
    expect(r).toEqual({ exitCode: 0, stdout: 'a\n\nerr\n\n\n' });
  });

  it('finds the prompt behind trailing escape sequences (bash bracketed paste)', async () => {
    const f = await startFake({ promptSuffix: '\x1b[?2004h' });
    expect(await execOverSerial(f.path, 'echo ok', { timeoutMs: 10_000 })).toEqual({ exitCode: 0, stdout: 'ok\n' });
  });

  it('waits for a guest that is still booting', async () => {
    const f = await startFake({ login: true, bootMs: 800 });
    expect(await execOverSerial(f.path, 'echo booted', { timeoutMs: 10_000 })).toEqual({ exitCode: 0, stdout: 'booted\n' });
  });

  it('presses Enter again when no prompt shows up', async () => {
    const f = await startFake({ login: true, bootMs: 300, promptOnBoot: false });
    expect(await execOverSerial(f.path, 'echo nudged', { timeoutMs: 15_000 })).toEqual({ exitCode: 0, stdout: 'nudged\n' });
    expect(f.lines.filter((l) => l === '').length).toBeGreaterThanOrEqual(1);
  }, 20_000);

  it('times out with the tail of the console, interrupts the command and leaves the console usable', async () => {
    const f = await startFake();
    const err = await execOverSerial(f.path, 'echo started; sleep 30', { nodeName: 'n1', timeoutMs: 1500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConsoleWaitError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^running `echo started; sleep 30` on node n1's serial console timed out after 1500 ms, waiting for the command to finish/);
    expect(msg).toMatch(/--- last output received ---[^]*FALCON-S-[0-9a-f]+\\r\nstarted\\r/);
    expect(f.interrupts).toBe(1);
    expect(await execOverSerial(f.path, 'echo alive', { timeoutMs: 10_000 })).toEqual({ exitCode: 0, stdout: 'alive\n' });
  });

  it('honours an AbortSignal', async () => {
    const f = await startFake();
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop')), 300);
    await expect(execOverSerial(f.path, 'sleep 30', { timeoutMs: 10_000, signal: ac.signal })).rejects.toThrow(/aborted while waiting/);
  });

  it('says the node is not running when there is no console socket', async () => {
    await expect(execOverSerial(join(dir, 'gone.sock'), 'true', { nodeName: 'gone' })).rejects.toThrow(
      /node gone is not running \(no console at .*gone\.sock\); start it with `hyperstart gone`/,
    );
  });
});
