/**
 * Micro-benchmark of the switch process (no VMs): frames per second from port 1 to port 2,
 * for 64-byte and 1514-byte frames, through
 *   (raw)          a child process that pipes the bytes of one socket to the other (no parsing),
 *   (wire)         the switch running the `wire` program,
 *   (sidecar-lite) the switch routing every frame (idx -> route -> resolver -> mac_rewrite),
 * all in the same run, since these machines are noisy. This process plays QEMU: it serves
 * both sockets, writes frames to port 1 as fast as the socket takes them and counts what
 * arrives on port 2. The switch runs as its own process, as in production.
 *
 *   npx tsx bench/switch.ts [--seconds 3] [--json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SwitchClient, addNeighbor, addRoute4, setMac, switchCommand } from '../src/switch/index.js';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 3;
const asJson = process.argv.includes('--json');

function udpFrame(len: number): Buffer {
  const f = Buffer.alloc(len);
  Buffer.from('a84025000001a84025ff0001', 'hex').copy(f, 0);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(len - 14, 16);
  f[22] = 64;
  f[23] = 17;
  Buffer.from([10, 0, 1, 2, 10, 0, 2, 2]).copy(f, 26);
  f.writeUInt16BE(5000, 34);
  f.writeUInt16BE(5001, 36);
  f.writeUInt16BE(len - 34, 38);
  return f;
}

function serve(p: string): Promise<{ server: net.Server; conn: Promise<net.Socket> }> {
  return new Promise((resolve) => {
    let got: (s: net.Socket) => void;
    const conn = new Promise<net.Socket>((r) => (got = r));
    const server = net.createServer((s) => got(s));
    server.listen(p, () => resolve({ server, conn }));
  });
}

const RAW_RELAY = `
const net = require('node:net');
const [a, b] = process.argv.slice(1);
const sa = net.createConnection({ path: a });
const sb = net.createConnection({ path: b });
sa.pipe(sb); sb.pipe(sa);
process.on('SIGTERM', () => process.exit(0));
`;

async function measure(kind: 'raw' | 'wire' | 'sidecar-lite', frameLen: number): Promise<{ mpps: number; gbps: number; cpuPct: number; drops: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'swb-'));
  const p1 = path.join(dir, 'p1');
  const p2 = path.join(dir, 'p2');
  const s1 = await serve(p1);
  const s2 = await serve(p2);
  let child: ChildProcess;
  let ctl: string | undefined;
  if (kind === 'raw') {
    child = spawn(process.execPath, ['-e', RAW_RELAY, p1, p2], { stdio: 'ignore' });
  } else {
    ctl = path.join(dir, 'ctl');
    const cfg = { version: 1, name: 'bench', program: kind, radix: 2, ports: [null, p1, p2], controlSocket: ctl, pidFile: path.join(dir, 'pid') };
    writeFileSync(path.join(dir, 'cfg.json'), JSON.stringify(cfg));
    const { cmd, args } = switchCommand(path.join(dir, 'cfg.json'));
    child = spawn(cmd, args, { stdio: 'ignore' });
  }
  try {
    const [a, b] = await Promise.all([s1.conn, s2.conn]);
    if (kind === 'sidecar-lite') {
      await new Promise((r) => setTimeout(r, 300));
      const c = await SwitchClient.connect(ctl!);
      await c.tableAdd([...addRoute4({}, '10.0.2.0/24', 2, '10.0.2.2'), addNeighbor('10.0.2.2', 'a8:40:25:ff:00:02'), setMac(2, 'a8:40:25:00:00:02')]);
      c.close();
    }
    const frame = udpFrame(frameLen);
    const per = 4 + frameLen;
    const batch = Math.max(1, Math.floor(65536 / per));
    const chunk = Buffer.alloc(per * batch);
    for (let i = 0; i < batch; i++) {
      chunk.writeUInt32BE(frameLen, i * per);
      frame.copy(chunk, i * per + 4);
    }
    let bytes = 0;
    b.on('data', (d: Buffer) => (bytes += d.length));
    let running = true;
    const pump = () => {
      while (running && a.write(chunk));
    };
    a.on('drain', pump);
    pump();
    await new Promise((r) => setTimeout(r, 500)); // warm-up
    const b0 = bytes;
    const cpu0 = procCpu(child.pid!);
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    const frames = (bytes - b0) / per;
    const cpuPct = ((procCpu(child.pid!) - cpu0) / dt) * 100;
    running = false;
    let drops = 0;
    if (ctl) {
      const c = await SwitchClient.connect(ctl);
      const s = await c.stats();
      drops = s.ports.reduce((n, p) => n + p.dropBackpressure, 0);
      c.close();
    }
    a.destroy();
    b.destroy();
    return { mpps: frames / dt / 1e6, gbps: (frames * frameLen * 8) / dt / 1e9, cpuPct, drops };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    s1.server.close();
    s2.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** utime + stime of a process, in seconds. */
function procCpu(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

const results: { kind: string; frameLen: number; mpps: number; gbps: number; cpuPct: number; drops: number }[] = [];
for (const frameLen of [64, 1514]) {
  for (const kind of ['raw', 'wire', 'sidecar-lite'] as const) {
    results.push({ kind, frameLen, ...(await measure(kind, frameLen)) });
  }
}
if (asJson) console.log(JSON.stringify(results, null, 2));
else {
  console.log(`switch micro-benchmark: ${seconds} s per case, port 1 -> port 2, one process feeding and counting (${os.cpus().length} cores)`);
  console.log('frame   path           Mpps     Gbit/s  relay CPU  drops');
  for (const r of results) console.log(`${String(r.frameLen).padEnd(7)} ${r.kind.padEnd(14)} ${r.mpps.toFixed(3).padStart(6)}  ${r.gbps.toFixed(2).padStart(8)}  ${r.cpuPct.toFixed(0).padStart(8)}%  ${r.drops}`);
}
