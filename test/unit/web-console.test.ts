/**
 * The console hub: one connection per node shared by every viewer (QEMU serves one client).
 */
import { describe, expect, it } from 'vitest';
import { ConsoleBusyError, ConsoleNotRunningError } from '../../src/guest/console.js';
import { silentLogger } from '../../src/util/log.js';
import { ConsoleHub, type ConsoleLink, type ConsoleState } from '../../src/web/console-hub.js';

function fakeConsoles() {
  const opened: { node: string; written: string[]; emit(s: string): void; hangUp(): void; closed: boolean }[] = [];
  let failWith: Error | undefined;
  const connect = async (node: string): Promise<ConsoleLink> => {
    if (failWith) throw failWith;
    const listeners = new Set<(b: Buffer) => void>();
    const onClose: (() => void)[] = [];
    const c = {
      node,
      written: [] as string[],
      closed: false,
      emit: (s: string) => listeners.forEach((l) => l(Buffer.from(s))),
      hangUp: () => onClose.forEach((f) => f()),
    };
    opened.push(c);
    return {
      write: async (d) => void c.written.push(Buffer.from(d).toString()),
      onData: (fn) => (listeners.add(fn), () => listeners.delete(fn)),
      onClose: (fn) => void onClose.push(fn),
      close: async () => void (c.closed = true),
    };
  };
  return { connect, opened, fail: (e: Error | undefined) => (failWith = e) };
}

function viewer() {
  const v = { out: '', states: [] as ConsoleState[] };
  return { v, viewer: { output: (d: Buffer) => void (v.out += d.toString()), state: (s: ConsoleState) => void v.states.push(s) } };
}

const settle = () => new Promise((r) => setTimeout(r, 10));

describe('console hub', () => {
  it('two viewers share one connection: both see the output, both type into it', async () => {
    const f = fakeConsoles();
    const hub = new ConsoleHub(f.connect, silentLogger);
    const one = viewer();
    const a = hub.attach('violin', one.viewer);
    await settle();
    f.opened[0]!.emit('login: ');
    const two = viewer();
    const b = hub.attach('violin', two.viewer);
    await settle();
    f.opened[0]!.emit('# ');
    expect(f.opened).toHaveLength(1);
    expect(one.v.out).toBe('login: # ');
    // The second viewer gets what was printed before it came.
    expect(two.v.out).toBe('login: # ');
    expect([one.v.states, two.v.states]).toEqual([['attached'], ['attached']]);
    a.input(Buffer.from('root\r'));
    b.input(Buffer.from('ls\r'));
    await settle();
    expect(f.opened[0]!.written).toEqual(['root\r', 'ls\r']);
    await a.detach();
    expect(f.opened[0]!.closed).toBe(false);
    await b.detach();
    // The last viewer gone, the console is given back.
    expect(f.opened[0]!.closed).toBe(true);
    await hub.close();
  });

  it('a stopped VM closes the console; refresh reconnects once the node runs', async () => {
    const f = fakeConsoles();
    const hub = new ConsoleHub(f.connect, silentLogger);
    const one = viewer();
    hub.attach('violin', one.viewer);
    await settle();
    f.opened[0]!.hangUp();
    expect(one.v.states).toEqual(['attached', 'closed']);
    hub.refresh(['violin']);
    await settle();
    expect(f.opened).toHaveLength(2);
    expect(one.v.states).toEqual(['attached', 'closed', 'attached']);
    await hub.close();
    expect(f.opened.map((c) => c.closed)).toEqual([false, true]);
  });

  it('a console held by another client is reported busy, a stopped node closed, once each', async () => {
    const f = fakeConsoles();
    const hub = new ConsoleHub(f.connect, silentLogger);
    f.fail(new ConsoleBusyError('violin', '/x/violin.console'));
    const one = viewer();
    hub.attach('violin', one.viewer);
    await settle();
    hub.refresh(['violin']);
    await settle();
    expect(one.v.states).toEqual(['busy']);
    f.fail(new ConsoleNotRunningError('piano', '/x/piano.console'));
    const two = viewer();
    hub.attach('piano', two.viewer);
    await settle();
    expect(two.v.states).toEqual(['closed']);
    f.fail(undefined);
    hub.refresh(['violin']);
    await settle();
    expect(one.v.states).toEqual(['busy', 'attached']);
    await hub.close();
  });
});
