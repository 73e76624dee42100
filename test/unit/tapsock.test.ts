/**
 * The tap-to-switch helper's argv and source path (src/host/tapsock.ts); test/e2e/tapsock.test.ts
 * runs the helper itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TAPSOCK_SOURCE, tapsockArgs } from '../../src/host/tapsock.js';

describe('tapsockArgs', () => {
  it('names the tap and the socket, and the pid file only when asked', () => {
    expect(tapsockArgs({ tap: 'swp3', socket: '/run/falcon/npu0/port3.sock' })).toEqual(['--tap', 'swp3', '--socket', '/run/falcon/npu0/port3.sock']);
    expect(tapsockArgs({ tap: 'swp3', socket: '/s.sock', pidFile: '/run/swp3.pid' })).toEqual(['--tap', 'swp3', '--socket', '/s.sock', '--pid-file', '/run/swp3.pid']);
  });

  it('takes the longest names the kernel takes', () => {
    const socket = `/${'s'.repeat(106)}`;
    expect(tapsockArgs({ tap: 'a'.repeat(15), socket })).toEqual(['--tap', 'a'.repeat(15), '--socket', socket]);
  });

  it('refuses tap names the kernel would refuse, saying what a name may be', () => {
    for (const tap of ['', 'a'.repeat(16), 'sw/p', 'sw p', 'sw:p', '.', '..']) {
      expect(() => tapsockArgs({ tap, socket: '/s.sock' }), JSON.stringify(tap)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/1 to 15 characters/) }));
    }
  });

  it('refuses a socket path a unix socket cannot have', () => {
    for (const socket of ['', `/${'s'.repeat(107)}`, '/a\0b']) {
      expect(() => tapsockArgs({ tap: 'swp1', socket })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/tap swp1.*107 bytes/) }));
    }
  });
});

describe('TAPSOCK_SOURCE', () => {
  it('is the helper in host-helpers/, which the package ships', () => {
    expect(TAPSOCK_SOURCE).toMatch(/\/host-helpers\/falcon-tapsock\.c$/);
    expect(existsSync(TAPSOCK_SOURCE)).toBe(true);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { files: string[] };
    expect(pkg.files).toContain('host-helpers/falcon-tapsock.c');
  });
});
