// The side panel: a node (status, power buttons, console, exec, capture) or a link (its ends,
// capture, impairment).
import { api, h } from './api.js';
import { captureSection } from './capture.js';
import { openConsole } from './console.js';
import { impairmentSection } from './impairment.js';

/** Fill `panel` for view node `n` (a VM); returns { update(view), close(), console }. */
export function nodePanel(panel, n, view) {
  const status = h('span', { class: 'status', 'data-status': n.status, id: 'node-status' }, n.status);
  const detail = h('span', { class: 'muted' }, n.lines.slice(1, -1).join(' · '));
  const powerMsg = h('span', { class: 'power-msg' });
  const power = (verb) =>
    h('button', {
      type: 'button', class: verb, onclick: async (ev) => {
        const b = ev.currentTarget;
        b.disabled = true;
        powerMsg.className = 'power-msg muted';
        powerMsg.textContent = `${verb}: working…`;
        try {
          await api('POST', `/api/nodes/${encodeURIComponent(n.name)}/${verb}`);
          powerMsg.textContent = `${verb}: done`;
        } catch (e) {
          powerMsg.className = 'power-msg error';
          powerMsg.textContent = `${verb}: ${e.message}`;
        } finally {
          b.disabled = false;
        }
      },
    }, verb);
  const consoleSec = h('section', { class: 'console' }, h('h3', {}, 'Serial console'));
  // Exec: exit status, stdout and stderr apart.
  const cmd = h('input', { type: 'text', name: 'command', placeholder: 'a shell command, e.g. ip addr', 'aria-label': 'command' });
  const exit = h('span', { class: 'exit-status' });
  const out = h('pre', { class: 'stdout' });
  const err = h('pre', { class: 'stderr' });
  const execErr = h('div', { class: 'error exec-error' });
  const form = h('form', { class: 'row exec-form' }, cmd, h('button', { type: 'submit' }, 'Run'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    exit.textContent = 'running…';
    exit.removeAttribute('data-ok');
    out.textContent = err.textContent = execErr.textContent = '';
    try {
      const r = await api('POST', `/api/nodes/${encodeURIComponent(n.name)}/exec`, { command: cmd.value });
      exit.textContent = r.exitCode !== null ? String(r.exitCode) : `signal ${r.signal}`;
      exit.dataset.ok = String(r.exitCode === 0);
      out.textContent = r.stdout;
      err.textContent = r.stderr;
    } catch (e) {
      exit.textContent = '';
      execErr.textContent = e.message;
    }
  });
  const endpoints = view.edges.flatMap((e) => e.endpoints).filter((ep) => ep.node === n.name);
  const unique = [...new Map(endpoints.map((ep) => [ep.endpoint, ep])).values()];
  panel.replaceChildren(
    h('h2', {}, n.name, ' ', status),
    detail,
    h('section', { class: 'power row' }, power('hyperstop'), power('hyperstart'), power('reboot'), powerMsg),
    consoleSec,
    h('section', { class: 'exec' }, h('h3', {}, 'Exec'), form, execErr,
      h('div', {}, 'exit status: ', exit),
      h('div', { class: 'exec-result' }, h('div', {}, h('h4', {}, 'stdout'), out), h('div', {}, h('h4', {}, 'stderr'), err))),
    captureSection(unique),
  );
  const con = openConsole(consoleSec, n.name);
  return {
    console: con,
    update(v) {
      const now = v.nodes.find((x) => x.id === n.id);
      if (!now) return;
      status.dataset.status = now.status;
      status.textContent = now.status;
    },
    close: () => con.close(),
  };
}

/** Fill `panel` for a switch or host interface (no console): what it is and its ports. */
export function otherPanel(panel, n) {
  panel.replaceChildren(
    h('h2', {}, n.name, ' ', h('span', { class: 'status', 'data-status': n.status }, n.status)),
    h('p', { class: 'muted' }, n.lines.slice(1).join(' · ')),
    ...(n.ports ? [h('h3', {}, 'Ports'), h('ul', {}, ...n.ports.map((p) => h('li', {}, `port ${p.port}: ${p.to}`)))] : []),
  );
  return { update() {}, close() {} };
}

/** Fill `panel` for view edge `e`. */
export function linkPanel(panel, e) {
  const imp = impairmentSection(e);
  panel.replaceChildren(
    h('h2', {}, `${e.kind === 'link' ? 'Link' : `${e.kind} link`}: ${e.from.name} — ${e.to.name}`),
    h('ul', { class: 'link-lines' }, ...e.lines.map((l) => h('li', {}, l))),
    captureSection(e.endpoints),
    h('section', { class: 'impairment', 'data-slot': 'impairment' }, h('h3', {}, 'Impairment'), imp.el),
  );
  return {
    update(v) {
      const now = v.edges.find((x) => x.key === e.key);
      if (now) imp.update(now);
    },
    close() {},
  };
}
