/**
 * The web view in a real browser (Debian's Chromium driven by playwright-core) against real
 * running topologies: `$topo web` as a user runs it, the graph, consoles (two viewers), exec,
 * hyperstop/hyperstart, a capture download, the token check; then README's
 * `npx tsx examples/duo.ts web` against a launched duo.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Runner, readPcap } from '../../src/index.js';
import { ConsoleConnection } from '../../src/guest/console.js';
import { leftovers, tempDir } from './helpers.js';

const repo = path.resolve(import.meta.dirname, '../..');
const fixture = path.join(repo, 'test/e2e/fixtures/topo.ts');
const CHROMIUM = '/usr/bin/chromium';
const started = Date.now();

/** Debian's Chromium, headless; never a browser playwright would download. */
async function launchChromium(): Promise<Browser> {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: the test command installs it (apt-get install chromium)`).toBe(true);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
}

interface WebProcess {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /**
   * ctrl-c (SIGINT to its process group, as a terminal sends it), or SIGTERM to the process;
   * resolves with the exit code.
   */
  stop(how?: 'ctrl-c' | 'SIGTERM'): Promise<number | null>;
}

/** Start a `web` command; resolves once it printed its URL (or fails with what it printed). */
function startWeb(cmd: string, args: string[], cwd: string, extraEnv: Record<string, string> = {}): Promise<WebProcess> {
  // The user's default log level (what they would see), whatever the test run's is.
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'FALCON_LOG' && k !== 'RUST_LOG')), ...extraEnv };
  // Its own process group, so ctrl-c can be sent to it as a terminal does (npx, tsx and node alike).
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env, detached: true });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} printed no URL within 60 s; stdout: ${out}\nstderr: ${err}`));
    }, 60_000);
    const check = () => {
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      resolve({
        child,
        url: m[1]!,
        stdout: () => out,
        stderr: () => err,
        stop: (how = 'ctrl-c') => {
          if (how === 'ctrl-c') process.kill(-child.pid!, 'SIGINT');
          else child.kill('SIGTERM');
          let t: NodeJS.Timeout | undefined;
          return Promise.race([exited, new Promise<number | null>((r) => (t = setTimeout(() => (process.kill(-child.pid!, 'SIGKILL'), r(-1)), 30_000)))]).finally(() => clearTimeout(t));
        },
      });
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} ${args.join(' ')} exited ${code} before printing a URL; stdout: ${out}\nstderr: ${err}`));
    });
  });
}

/** Wait until `fn` (run in the page) returns something truthy; on timeout, say what `seen` shows. */
async function waitInPage<T>(page: Page, what: string, fn: () => T, seen: () => unknown, timeoutMs = 60_000): Promise<T> {
  try {
    return (await (await page.waitForFunction(fn, undefined, { timeout: timeoutMs, polling: 250 })).jsonValue()) as T;
  } catch (e) {
    const saw = await page.evaluate(seen).catch((x: unknown) => `(could not read the page: ${String(x)})`);
    throw new Error(`waiting for ${what}: ${(e as Error).message.split('\n')[0]}\nthe page shows: ${JSON.stringify(saw, null, 2)}`);
  }
}

// The page's globals as the functions run in the browser see them (the project has no DOM types).
interface PageElement {
  textContent: string | null;
  innerText: string;
  getAttribute(name: string): string | null;
}
interface CyCollection {
  map<T>(f: (e: { data(key: string): string }) => T): T[];
}
declare const document: { getElementById(id: string): PageElement | null; querySelector(selector: string): PageElement | null; querySelectorAll(selector: string): ArrayLike<PageElement> };
declare const window: { falcon: { cy: { nodes(): CyCollection; edges(): CyCollection }; console?: { text(): string } } };

const graphNodes = () => window.falcon?.cy?.nodes().map((n) => `${n.data('name')}:${n.data('status')}`) ?? null;
const consoleText = () => window.falcon?.console?.text() ?? '(no console open)';
const panelText = () => document.getElementById('panel')?.innerText;
const edgeLabels = () => window.falcon?.cy?.edges().map((e) => e.data('label')) ?? null;

/** Open node `name`'s panel and wait until its console is attached. */
async function openNode(page: Page, name: string): Promise<void> {
  await page.click(`button[data-node="${name}"]`);
  await waitInPage(page, `${name}'s console attached`, () => document.querySelector('.console-state')?.getAttribute('data-state') === 'attached', panelText);
}

async function typeInConsole(page: Page, text: string): Promise<void> {
  await page.click('.term');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

async function waitConsole(page: Page, text: string): Promise<void> {
  try {
    await page.waitForFunction((t) => window.falcon?.console?.text().includes(t), text, { timeout: 60_000, polling: 250 });
  } catch (e) {
    throw new Error(`"${text}" never appeared in the console (${(e as Error).message.split('\n')[0]}); it shows:\n${await page.evaluate(consoleText).catch(String)}`);
  }
}

async function runExec(page: Page, command: string): Promise<{ exit: string; stdout: string; stderr: string }> {
  await page.fill('input[name=command]', command);
  await page.click('.exec-form button[type=submit]');
  await waitInPage(page, `the exec of ${command} to finish`, () => /^(\d+|signal .*)$/.test(document.querySelector('.exit-status')?.textContent ?? '') || document.querySelector('.exec-error')?.textContent, panelText);
  return page.evaluate(() => ({
    exit: document.querySelector('.exit-status')?.textContent ?? '',
    stdout: document.querySelector('.stdout')?.textContent ?? '',
    stderr: (document.querySelector('.stderr')?.textContent ?? '') + (document.querySelector('.exec-error')?.textContent ?? ''),
  }));
}

describe('web view of a running topology, in Chromium', () => {
  const dir = tempDir('web');
  const falconDir = path.join(dir, '.falcon');
  const env = { ...process.env, FALCON_TEST_TOPO: 'webe2e', FALCON_TEST_NODES: '2' };
  const cli = (...args: string[]) => spawnSync('node', ['--import', 'tsx', fixture, '--falcon-dir', falconDir, ...args], { cwd: repo, env, encoding: 'utf8', timeout: 300_000 });
  let web: WebProcess;
  let browser: Browser;
  let a: Page;
  let b: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const l = cli('launch');
    expect(l.status, `launch: ${l.stderr}`).toBe(0);
    // -vv: every request is logged, so the check below covers the most verbose log.
    web = await startWeb('node', ['--import', 'tsx', fixture, '--falcon-dir', falconDir, 'web', '--port', '0', '-vv'], repo, { FALCON_TEST_TOPO: 'webe2e', FALCON_TEST_NODES: '2' });
    browser = await launchChromium();
    a = await (await browser.newContext({ viewport: { width: 1400, height: 860 } })).newPage();
    for (const p of [a]) p.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    if (web && web.child.exitCode === null) await web.stop();
    const d = cli('destroy');
    expect(d.status, d.stderr).toBe(0);
    expect(leftovers(new Runner('webe2e', { falconDir, persistent: true }))).toEqual([]);
    console.log(`web e2e (webe2e part): ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  it('the graph shows both nodes running, and the link with its tap names', async () => {
    await a.goto(web.url);
    // The token moved to a cookie: the address bar no longer shows it.
    expect(a.url()).toBe(web.url.replace(/\?token=.*/, ''));
    const nodes = await waitInPage(a, 'both nodes in the graph', () => {
      const n = window.falcon?.cy?.nodes().map((x) => `${x.data('name')}:${x.data('status')}`);
      return n?.length === 2 ? n : null;
    }, graphNodes);
    expect(nodes?.sort()).toEqual(['n0:running', 'n1:running']);
    const taps = await a.evaluate(() => window.falcon.cy.edges().map((e) => [e.data('fromLabel'), e.data('toLabel')]));
    const info = JSON.parse(cli('info', '--json').stdout) as { links: { a: { ifname: string }; b: { ifname: string } }[] };
    expect(taps).toEqual([[info.links[0]!.a.ifname, info.links[0]!.b.ifname]]);
  });

  it('the console echoes a typed command, and a second viewer sees the same console', async () => {
    await openNode(a, 'n0');
    await typeInConsole(a, 'echo web-$((6*7))');
    await waitConsole(a, 'web-42');
    b = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
    b.on('pageerror', (e) => pageErrors.push(e.message));
    await b.goto(web.url);
    await openNode(b, 'n0');
    // What was printed before it opened (the server's scrollback), then what the other types.
    await waitConsole(b, 'web-42');
    await typeInConsole(b, 'echo second-$((2*3))');
    await waitConsole(b, 'second-6');
    await waitConsole(a, 'second-6');
  });

  it('an exec shows its exit status, stdout and stderr apart', async () => {
    const r = await runExec(a, "sh -c 'echo out; echo err >&2; exit 3'");
    expect(r).toEqual({ exit: '3', stdout: 'out\n', stderr: 'err\n' });
    mkdirSync(path.join(repo, 'docs/images'), { recursive: true });
    await a.screenshot({ path: path.join(repo, 'docs/images/web.png') });
  });

  it('a capture on a link end downloads a pcap with the frames the node sent', async () => {
    await a.click('button[data-link="e0"]');
    await a.click('[data-endpoint="n0:0"] button.start-capture');
    await waitInPage(a, 'the capture to run', () => document.querySelector('tr[data-capture] .capture-state')?.textContent === 'running', panelText);
    await a.click('button[data-node="n0"]');
    const r = await runExec(a, 'ip link set eth0 up && ip addr add 10.77.0.1/24 dev eth0 && ping -c 2 -W 1 10.77.0.2; true');
    expect(r.exit).toBe('0');
    await a.click('button[data-link="e0"]');
    await a.click('tr[data-capture] button.stop-capture');
    await waitInPage(a, 'the capture to end', () => document.querySelector('tr[data-capture] a.download'), panelText);
    const [download] = await Promise.all([a.waitForEvent('download', { timeout: 30_000 }), a.click('tr[data-capture] a.download')]);
    const file = path.join(dir, 'web.pcap');
    await download.saveAs(file);
    const { packets } = readPcap(readFileSync(file));
    // ARP requests for 10.77.0.2 (nobody answers): ethertype 0x0806.
    expect(packets.filter((p) => p.data.readUInt16BE(12) === 0x0806).length).toBeGreaterThan(0);
  });

  it('the link panel sets a 50 ms delay both ways (graph label, panel and runner agree), then clears it', async () => {
    const runner = new Runner('webe2e', { falconDir, persistent: true });
    const texts = async () => (await runner.impairments('n0--n1'))[0]!.directions.map((d) => d.text);
    expect(await texts()).toEqual(['none', 'none']);
    await a.click('button[data-link="e0"]');
    await waitInPage(a, 'the impairment status', () => document.querySelectorAll('.impair-status .impair-text').length === 2, panelText);
    await a.fill('.impair-form input[name=delayMs]', '50');
    await a.click('button.apply-impairment');
    await waitInPage(a, 'the delay on the graph label', () => window.falcon.cy.edges().map((e) => e.data('label')).includes('delay 50ms'), edgeLabels, 120_000);
    await waitInPage(a, 'the apply to finish', () => document.querySelector('.impair-msg')?.textContent === 'apply: done' || document.querySelector('.impair-error')?.textContent, panelText);
    const panel = await a.evaluate(() => ({
      directions: Array.from(document.querySelectorAll('.impair-status .impair-text')).map((t) => t.textContent),
      source: document.querySelector('.impair-source')?.textContent ?? '',
      error: document.querySelector('.impair-error')?.textContent ?? '',
    }));
    expect(panel).toEqual({ directions: ['delay 50ms', 'delay 50ms'], source: expect.stringMatching(/^set at runtime, applied by the (netem qdisc|userspace helper)/), error: '' });
    expect(await texts()).toEqual(['delay 50ms', 'delay 50ms']);
    await a.screenshot({ path: path.join(repo, 'docs/images/web-impairment.png') });
    // The node's own validation, shown as the refusal.
    await a.fill('.impair-form input[name=lossPct]', '150');
    await a.click('button.apply-impairment');
    await waitInPage(a, 'the refusal', () => document.querySelector('.impair-error')?.textContent, panelText);
    expect(await a.evaluate(() => document.querySelector('.impair-error')?.textContent)).toMatch(/links\[0\]\.lossPct: is 150; it must be a number from 0 to 100/);
    await a.click('button.clear-impairment');
    await waitInPage(a, 'the label gone', () => window.falcon.cy.edges().map((e) => e.data('label')).join('') === '', edgeLabels, 120_000);
    expect(await texts()).toEqual(['none', 'none']);
    expect((await runner.impairments('n0--n1'))[0]!.source).toBe('none');
  });

  it('hyperstop turns the node stopped on both pages without reload; hyperstart brings it back', async () => {
    await a.click('button[data-node="n1"]');
    await a.click('button.hyperstop');
    await waitInPage(a, 'n1 stopped in the panel', () => document.getElementById('node-status')?.textContent === 'stopped', panelText);
    await waitInPage(b, 'n1 stopped in the other page\'s graph', () => window.falcon.cy.nodes().map((n) => `${n.data('name')}:${n.data('status')}`).includes('n1:stopped'), graphNodes);
    await a.click('button.hyperstart');
    await waitInPage(a, 'n1 running again', () => document.getElementById('node-status')?.textContent === 'running', panelText, 240_000);
    await waitInPage(b, 'n1 running in the other page', () => window.falcon.cy.nodes().map((n) => `${n.data('name')}:${n.data('status')}`).includes('n1:running'), graphNodes);
    await waitInPage(a, 'the hyperstart request to finish', () => document.querySelector('.power-msg')?.textContent === 'hyperstart: done', panelText, 240_000);
    expect(pageErrors).toEqual([]);
  });

  it('refuses requests and websockets without the token (403)', async () => {
    const origin = web.url.replace(/\/\?token=.*/, '');
    for (const p of ['/', '/api/view', '/assets/app.js']) expect((await fetch(origin + p)).status, p).toBe(403);
    expect((await fetch(`${origin}/?token=not-the-token`)).status).toBe(403);
    const page = await (await browser.newContext()).newPage();
    expect((await page.goto(origin))?.status()).toBe(403);
    const refused = await new Promise<number | string>((resolve) => {
      const ws = new WebSocket(`${origin.replace('http', 'ws')}/ws/console/n0`);
      ws.on('unexpected-response', (_q, res) => resolve(res.statusCode!));
      ws.on('open', () => resolve('opened'));
      ws.on('error', (e) => resolve(e.message));
    });
    expect(refused).toBe(403);
  });

  it('SIGTERM stops it cleanly: exit 0, the console is free again, the token was never logged', async () => {
    await b.close();
    await browser.close();
    expect(await web.stop('SIGTERM')).toBe(0);
    expect(web.stderr()).toMatch(/web view stopped/);
    expect(web.stderr()).toMatch(/web: GET \/ 303\n[\s\S]*web: GET \/assets\/app\.js 200\n/);
    expect(web.stderr()).not.toContain(new URL(web.url).searchParams.get('token')!);
    const sock = new Runner('webe2e', { falconDir, persistent: true });
    const c = await ConsoleConnection.connect(await sock.consoleSocket('n0'), { nodeName: 'n0' });
    await c.close();
  });
});

describe('README: npx tsx examples/duo.ts web', () => {
  const examplesState = path.join(repo, 'examples/.falcon');
  const duo = (...args: string[]) => spawnSync('npx', ['tsx', 'examples/duo.ts', ...args], { cwd: repo, encoding: 'utf8', timeout: 300_000 });
  let launched = false;
  afterAll(() => {
    if (launched) {
      const d = duo('destroy');
      expect(d.status, d.stderr).toBe(0);
      expect(leftovers(new Runner('duo', { falconDir: examplesState, persistent: true }))).toEqual([]);
    }
    console.log(`web e2e (both parts): ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  it('prints a URL; in Chromium the graph shows both nodes, the console works and an exec returns', async () => {
    // The examples' own state folder, as README runs it; never over a user's running duo.
    expect(existsSync(examplesState), `${examplesState} exists: an example topology is running; destroy it first`).toBe(false);
    launched = true;
    const l = duo('launch');
    expect(l.status, l.stderr).toBe(0);
    const web = await startWeb('npx', ['tsx', 'examples/duo.ts', 'web'], repo);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(web.url);
      const nodes = await waitInPage(page, 'both duo nodes', () => {
        const n = window.falcon?.cy?.nodes().map((x) => `${x.data('name')}:${x.data('status')}`);
        return n?.length === 2 ? n : null;
      }, graphNodes);
      expect(nodes?.sort()).toEqual(['piano:running', 'violin:running']);
      await openNode(page, 'violin');
      await typeInConsole(page, 'echo duo-$((40+2))');
      await waitConsole(page, 'duo-42');
      const r = await runExec(page, 'ip addr show eth0');
      expect(r.exit).toBe('0');
      expect(r.stdout).toMatch(/^\d+: eth0: /);
    } finally {
      await browser.close();
      // npx and tsx report a ctrl-c as the signal (exit 130 or killed) even when the program
      // exits 0 after it: what shows that it stopped cleanly is its own last line.
      const code = await web.stop('ctrl-c');
      expect(web.stderr(), `exit ${code}`).toMatch(/web view stopped\n$/);
    }
  });
});
