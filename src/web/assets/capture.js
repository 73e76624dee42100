// Capture on an endpoint (a NIC: node:index): start (for N seconds or until stopped), stop,
// then download the pcap.
import { api, h } from './api.js';

function describe(ep) {
  return `${ep.node} NIC ${ep.nic}${ep.ifname ? ` (${ep.ifname})` : ''}`;
}

/** The capture section for `endpoints` (view endpoints). */
export function captureSection(endpoints) {
  const sec = h('section', { class: 'capture' }, h('h3', {}, 'Capture'));
  if (!endpoints.length) {
    sec.append(h('p', { class: 'muted' }, 'nothing to capture here'));
    return sec;
  }
  const table = h('table', { class: 'captures' });
  const error = h('div', { class: 'error' });
  const mine = new Set(endpoints.map((e) => e.endpoint));
  const refresh = async () => {
    const all = (await api('GET', '/api/captures')).filter((c) => mine.has(c.endpoint));
    table.replaceChildren(
      ...(all.length ? [h('tr', {}, h('th', {}, '#'), h('th', {}, 'endpoint'), h('th', {}, 'state'), h('th', {}, 'frames'), h('th', {}, ''))] : []),
      ...all.map((c) =>
        h(
          'tr',
          { 'data-capture': c.id },
          h('td', {}, c.id),
          h('td', {}, c.endpoint),
          h('td', { class: 'capture-state' }, c.state, c.error ? `: ${c.error}` : ''),
          h('td', {}, c.frames ?? ''),
          h(
            'td',
            {},
            c.state === 'running'
              ? h('button', { type: 'button', class: 'stop-capture', onclick: () => act(() => api('POST', `/api/captures/${c.id}/stop`)) }, 'Stop')
              : c.state === 'done'
                ? h('a', { href: `/api/captures/${c.id}/pcap`, download: '', class: 'download' }, `download pcap (${c.bytes} bytes)`)
                : '',
          ),
        ),
      ),
    );
    // A capture with a duration ends by itself: look again until none runs.
    if (all.some((c) => c.state === 'running')) setTimeout(() => sec.isConnected && refresh().catch(() => {}), 1000);
  };
  const act = async (fn) => {
    error.textContent = '';
    try {
      await fn();
    } catch (e) {
      error.textContent = e.message;
    }
    await refresh().catch((e) => (error.textContent = e.message));
  };
  for (const ep of endpoints) {
    const seconds = h('input', { type: 'number', min: '1', step: '1', placeholder: 'seconds', title: 'stop after this many seconds (empty: until stopped)' });
    sec.append(
      h(
        'div',
        { class: 'row', 'data-endpoint': ep.endpoint },
        h('span', {}, describe(ep)),
        seconds,
        h('button', { type: 'button', class: 'start-capture', onclick: () => act(() => api('POST', '/api/captures', { endpoint: ep.endpoint, durationSeconds: seconds.value || undefined })) }, 'Start capture'),
      ),
    );
  }
  sec.append(error, table);
  refresh().catch((e) => (error.textContent = e.message));
  return sec;
}
