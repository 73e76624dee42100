// A link's impairment: what is in force each way (where it comes from, how this host applies it)
// and a form to set or clear it, on the whole link or on the frames one end sends.
import { api, h } from './api.js';

// [field, label, unit, step]: the impairment API's fields (src/model/impair.ts).
const FIELDS = [
  ['delayMs', 'delay', 'ms', 'any'],
  ['jitterMs', 'jitter', 'ms', 'any'],
  ['lossPct', 'loss', '%', 'any'],
  ['duplicatePct', 'duplicate', '%', 'any'],
  ['corruptPct', 'corrupt', '%', 'any'],
  ['reorderPct', 'reorder', '%', 'any'],
  ['rateMbit', 'rate', 'Mbit/s', 'any'],
];

const PATH = { netem: 'netem qdisc', userspace: 'userspace helper (falcon-impair)' };

/** The impairment section of view edge `edge`'s panel: { el, update(edge) }. */
export function impairmentSection(edge) {
  if (edge.kind !== 'link' || edge.link === undefined) {
    const el = h('p', { class: 'muted impair-unavailable' }, `This ${edge.kind === 'cpu' ? 'CPU port' : edge.kind} link cannot be impaired: only links between two nodes can.`);
    return { el, update() {} };
  }
  const target = `links[${edge.link}]`;
  const a = `${edge.from.name}:${edge.from.nic}`;
  const b = `${edge.to.name}:${edge.to.nic}`;
  const inputs = Object.fromEntries(FIELDS.map(([f, , unit, step]) => [f, h('input', { type: 'number', name: f, min: '0', step, 'aria-label': `${f} (${unit})` })]));
  const direction = h('select', { name: 'direction', 'aria-label': 'direction' },
    h('option', { value: 'both' }, 'both ways'),
    h('option', { value: 'ab' }, `${a} → ${b} only`),
    h('option', { value: 'ba' }, `${b} → ${a} only`));
  const status = h('table', { class: 'impair-status' });
  const source = h('div', { class: 'impair-source muted' });
  const msg = h('span', { class: 'impair-msg muted' });
  const error = h('div', { class: 'error impair-error' });
  let touched = false;
  let shown = edge.impairment;

  const show = (s) => {
    status.replaceChildren(...s.directions.map((d) => h('tr', { 'data-direction': d.direction }, h('td', {}, d.direction), h('td', { class: 'impair-text' }, d.text))));
    source.textContent = s.source === 'none' ? 'nothing in force' : `${s.source === 'declared' ? 'declared by the topology' : 'set at runtime'}${s.path ? `, applied by the ${PATH[s.path] ?? s.path}` : ''}${s.reason ? ` (${s.reason})` : ''}`;
    // The form starts from what is in force when it is the same both ways.
    const [x, y] = s.directions.map((d) => d.impairment);
    if (!touched && x && JSON.stringify(x) === JSON.stringify(y)) for (const [f] of FIELDS) inputs[f].value = x[f] ?? '';
  };
  const refresh = () => api('GET', `/api/impairments/${encodeURIComponent(target)}`).then(show, (e) => (error.textContent = e.message));
  const act = async (verb, body) => {
    error.textContent = '';
    msg.textContent = `${verb}: working…`;
    try {
      show(await api('POST', verb === 'apply' ? '/api/impairments' : '/api/impairments/clear', { target, direction: direction.value, ...body }));
      msg.textContent = `${verb}: done`;
    } catch (e) {
      msg.textContent = '';
      error.textContent = e.message;
    }
  };
  const form = h('form', { class: 'impair-form' },
    ...FIELDS.map(([f, label, unit]) => h('label', {}, h('span', {}, label), inputs[f], h('span', { class: 'muted' }, unit))),
    h('div', { class: 'row' }, direction,
      h('button', { type: 'submit', class: 'apply-impairment' }, 'Apply'),
      h('button', { type: 'button', class: 'clear-impairment', onclick: () => act('clear', {}) }, 'Clear'),
      msg));
  form.addEventListener('input', () => (touched = true));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const values = Object.fromEntries(FIELDS.map(([f]) => [f, inputs[f].value.trim()]).filter(([, v]) => v !== '').map(([f, v]) => [f, Number(v)]));
    void act('apply', values);
  });
  const el = h('div', {}, status, source, form, error);
  refresh();
  return {
    el,
    // Another client (or the impair command) may change it: read it again when the label changes.
    update(next) {
      if (next.impairment === shown) return;
      shown = next.impairment;
      refresh();
    },
  };
}
