/**
 * The serial console end to end: a real QEMU booting the `tiny` image with its serial console on a
 * Unix socket chardev, `attachSerial` driven through a real pseudo-terminal (tmux), the one-client
 * rule as QEMU enforces it, and the serial-login exec fallback against a real busybox shell.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsoleBusyError, ConsoleConnection, ConsoleNotRunningError, tailFile } from '../../src/guest/console.js';
import { execOverSerial } from '../../src/guest/serial-exec.js';
import type { ImageMeta } from '../../src/images/types.js';
import { retry } from '../../src/util/retry.js';

const imageDir = path.join(process.env.FALCON_IMAGE_DIR || '/var/lib/falcon/images', 'tiny');
const meta: ImageMeta | undefined = existsSync(path.join(imageDir, 'meta.json'))
  ? (JSON.parse(readFileSync(path.join(imageDir, 'meta.json'), 'utf8')) as ImageMeta)
  : undefined;
const missing = !meta
  ? `${imageDir}/meta.json`
  : [meta.disk, ...(meta.boot.method === 'direct' ? [meta.boot.kernel, meta.boot.initrd ?? ''] : [])]
      .filter((f) => f && !existsSync(path.join(imageDir, f)))
      .join(', ');
if (missing) console.warn(`serial e2e tests skipped: the tiny image is not built (missing ${missing}); build it with \`falcon image build tiny\``);

const repo = path.resolve(import.meta.dirname, '../..');
let work = '';
let sock = '';
let consoleLog = '';
const session = `falcon-serial-e2e-${process.pid}`;
let qemu: ChildProcess | undefined;

function tmux(...args: string[]): string {
  return execFileSync('tmux', args, { encoding: 'utf8', timeout: 10_000 });
}

const pane = () => tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-200');

/** Wait until the tmux pane shows `re`; the error shows the pane. */
async function paneShows(re: RegExp, what: string, deadlineMs = 30_000): Promise<string> {
  return retry({ what, deadlineMs, delayMs: 200 }, async () => {
    const text = pane();
    if (!re.test(text)) throw new Error(`the terminal does not show ${what} yet; it shows:\n${text.trimEnd()}`);
    return text;
  });
}

/** Type literally, then press Enter. */
function type(text: string): void {
  tmux('send-keys', '-t', session, '-l', text);
  tmux('send-keys', '-t', session, 'Enter');
}

describe.skipIf(!!missing)('serial console of a real QEMU (tiny image)', () => {
  beforeAll(async () => {
    // Short: Unix socket paths are limited to 107 bytes.
    work = mkdtempSync(path.join(os.tmpdir(), 'fser-'));
    sock = path.join(work, 'n1.sock');
    consoleLog = path.join(work, 'n1.console.log');
    if (meta!.boot.method !== 'direct') throw new Error('the tiny image is expected to boot directly (kernel + initrd)');
    const boot = meta!.boot;
    const cmdline = /\bconsole=ttyS0\b/.test(boot.cmdline) ? boot.cmdline : `${boot.cmdline} console=ttyS0`;
    // prettier-ignore
    const args = [
      '-accel', 'tcg', '-m', '256', '-nodefaults', '-no-reboot', '-display', 'none', '-monitor', 'none',
      '-kernel', path.join(imageDir, boot.kernel),
      ...(boot.initrd ? ['-initrd', path.join(imageDir, boot.initrd)] : []),
      '-append', cmdline,
      '-drive', `file=${path.join(imageDir, meta!.disk)},if=virtio,format=qcow2,snapshot=on`,
      '-chardev', `socket,id=con0,path=${sock},server=on,wait=off,logfile=${consoleLog},logappend=on`,
      '-serial', 'chardev:con0',
      // The image's exec agent wants its port; without it, it would complain on the console.
      '-device', 'virtio-serial-pci',
      '-chardev', `socket,id=agent0,path=${path.join(work, 'n1.agent.sock')},server=on,wait=off`,
      '-device', 'virtserialport,chardev=agent0,name=org.falcon.exec',
    ];
    let stderr = '';
    qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    qemu.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const t0 = Date.now();
    await retry({ what: 'the tiny VM to boot', deadlineMs: 120_000, delayMs: 250 }, async () => {
      if (qemu!.exitCode !== null) throw new Error(`QEMU exited with ${qemu!.exitCode}: ${stderr}`);
      const text = existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8') : '';
      if (!text.includes('FALCON-BOOTED')) throw new Error(`not booted yet; console log ends with:\n${await tailFile(consoleLog, 1000)}`);
    });
    console.log(`tiny VM booted in ${Date.now() - t0} ms`);

    tmux('new-session', '-d', '-s', session, '-x', '150', '-y', '40', '-c', repo, 'env', 'PS1=host-prompt$ ', 'bash', '--norc', '--noprofile');
    writeFileSync(
      path.join(work, 'attach.mts'),
      `import { attachSerial } from ${JSON.stringify(path.join(repo, 'src/cli/serial-attach.ts'))};\n` +
        `const r = await attachSerial(process.argv[2], { nodeName: 'n1' });\n` +
        `console.log('attach-script-exit ' + r.reason);\n`,
    );
  });

  afterAll(() => {
    try {
      tmux('kill-session', '-t', session);
    } catch {
      /* already gone */
    }
    qemu?.kill('SIGKILL');
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const attachLine = () => `node_modules/.bin/tsx ${path.join(work, 'attach.mts')} ${sock}; echo "script-exited-$?"; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo`;

  it('attaches through a real terminal, runs a command, leaves on ctrl-q and restores the terminal', async () => {
    type(attachLine());
    await paneShows(/attached to n1's console; ctrl-q leaves/, 'the attach hint');
    type('echo hello-$((6*7))');
    await paneShows(/^hello-42\s*$/m, 'the output hello-42');
    // While attached, a second client is told the console is taken instead of hanging.
    await expect(ConsoleConnection.connect(sock, { nodeName: 'n1' })).rejects.toBeInstanceOf(ConsoleBusyError);
    tmux('send-keys', '-t', session, 'C-q');
    const text = await paneShows(/script-exited-0\n(icanon|echo) (icanon|echo) \nhost-prompt\$ $/m, 'the script exit and a restored terminal');
    expect(text).toContain("detached from n1's console");
    expect(text).toContain('attach-script-exit detach-key');
    console.log(`the terminal after the first attach:\n${text.trimEnd()}`);
  });

  it('attaches a second time', async () => {
    tmux('clear-history', '-t', session);
    type('clear');
    await paneShows(/^host-prompt\$ $/m, 'a cleared terminal');
    type(attachLine());
    await paneShows(/attached to n1's console; ctrl-q leaves/, 'the attach hint');
    type('echo second-$((2*3)); stty size');
    await paneShows(/^second-6\s*$/m, 'the output second-6');
    tmux('send-keys', '-t', session, 'C-q');
    await paneShows(/attach-script-exit detach-key\nscript-exited-0\n/, 'the script exit');
  });

  it('runs commands over the serial console (the serial-login fallback)', async () => {
    const t0 = Date.now();
    expect(await execOverSerial(sock, 'echo hello-$((6*7))', { nodeName: 'n1', timeoutMs: 30_000 })).toEqual({ exitCode: 0, stdout: 'hello-42\n' });
    console.log(`one serial exec: ${Date.now() - t0} ms`);
    expect(await execOverSerial(sock, 'false', { timeoutMs: 30_000 })).toEqual({ exitCode: 1, stdout: '' });
    expect(await execOverSerial(sock, 'echo out; exit 42', { timeoutMs: 30_000 })).toEqual({ exitCode: 42, stdout: 'out\n' });
    const quoted = `printf '%s\\n' "it's \\"quoted\\"" 'a $HOME \\\\ b'\nx='two\nlines'\necho "$x"; ls /nonexistent`;
    expect(await execOverSerial(sock, quoted, { timeoutMs: 30_000 })).toEqual({
      exitCode: 1,
      stdout: `it's "quoted"\na $HOME \\\\ b\ntwo\nlines\nls: /nonexistent: No such file or directory\n`,
    });
    const long = 'x'.repeat(6000);
    const r = await execOverSerial(sock, `echo ${long} | wc -c; echo ${long} | md5sum`, { timeoutMs: 60_000 });
    const md5 = execFileSync('md5sum', { input: `${long}\n`, encoding: 'utf8' });
    expect(r).toEqual({ exitCode: 0, stdout: `6001\n${md5}` });
  });

  it('a timed-out serial exec shows the console tail and leaves the console usable', async () => {
    const err = (await execOverSerial(sock, 'echo started; sleep 60', { nodeName: 'n1', timeoutMs: 3000 }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/timed out after 3000 ms, waiting for the command to finish\n--- last output received ---\n[^]*started/);
    expect(await execOverSerial(sock, 'echo alive', { timeoutMs: 30_000 })).toEqual({ exitCode: 0, stdout: 'alive\n' });
  });

  it('says the node is not running once QEMU is gone', async () => {
    qemu!.kill('SIGTERM');
    await new Promise((r) => qemu!.once('exit', r));
    await expect(ConsoleConnection.connect(sock, { nodeName: 'n1' })).rejects.toBeInstanceOf(ConsoleNotRunningError);
    // QEMU wrote everything the guest printed to the console log, attached or not.
    expect(readFileSync(consoleLog, 'utf8')).toContain('second-6');
  });
});
