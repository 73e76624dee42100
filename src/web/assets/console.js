// A node's serial console in xterm.js over a websocket; the server holds the one connection
// QEMU allows and shares it with every viewer.
import { Terminal } from '/vendor/xterm.mjs';
import { FitAddon } from '/vendor/addon-fit.mjs';
import { h, wsUrl } from './api.js';

/** Open `node`'s console in `parent`; returns { close(), text() }. */
export function openConsole(parent, node) {
  const state = h('div', { class: 'console-state', 'data-state': 'connecting' }, 'connecting…');
  const box = h('div', { class: 'term', 'data-node': node });
  parent.append(state, box);
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 13, scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  const onResize = () => fit.fit();
  window.addEventListener('resize', onResize);
  const ws = new WebSocket(wsUrl(`/ws/console/${encodeURIComponent(node)}`));
  ws.binaryType = 'arraybuffer';
  const enc = new TextEncoder();
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') {
      const m = JSON.parse(ev.data);
      if (m.type === 'state') {
        state.dataset.state = m.state;
        state.textContent = m.message;
      }
    } else term.write(new Uint8Array(ev.data));
  };
  ws.onclose = () => {
    state.dataset.state = 'closed';
    state.textContent = 'the connection to the server closed';
  };
  term.onData((d) => ws.readyState === WebSocket.OPEN && ws.send(enc.encode(d)));
  term.onBinary((d) => ws.readyState === WebSocket.OPEN && ws.send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
  return {
    term,
    /** The terminal's text, line by line (what a viewer sees, scrollback included). */
    text() {
      const b = term.buffer.active;
      const lines = [];
      for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
      return lines.join('\n');
    },
    close() {
      window.removeEventListener('resize', onResize);
      ws.close();
      term.dispose();
    },
  };
}
