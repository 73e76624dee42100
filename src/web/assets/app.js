// The page: the live view over a websocket, the graph, the node and link lists, the panel.
import { h, wsUrl } from './api.js';
import { createGraph } from './graph.js';
import { linkPanel, nodePanel, otherPanel } from './panel.js';

const conn = document.getElementById('connection');
const panelEl = document.getElementById('panel');
let view;
let graph;
let panel;
let selected;

// For tests and curious users: the current view, the graph and the open console.
window.falcon = {
  get view() { return view; },
  get cy() { return graph?.cy; },
  get console() { return panel?.console; },
};

function select(sel) {
  panel?.close();
  panel = undefined;
  selected = sel;
  graph.select(sel.id);
  if (sel.kind === 'node') {
    const n = view.nodes.find((x) => x.id === sel.id);
    if (!n) return;
    panel = n.kind === 'node' ? nodePanel(panelEl, n, view) : otherPanel(panelEl, n);
  } else {
    const e = view.edges.find((x) => x.key === sel.id);
    if (e) panel = linkPanel(panelEl, e);
  }
}

function lists() {
  document.getElementById('node-list').replaceChildren(
    ...view.nodes.map((n) => h('li', {}, h('button', { type: 'button', 'data-node': n.name, 'data-status': n.status, title: n.lines.join(' · '), onclick: () => select({ kind: 'node', id: n.id }) }, `${n.name} (${n.status})`))),
  );
  document.getElementById('link-list').replaceChildren(
    ...view.edges.filter((e) => e.kind !== 'cpu').map((e) => h('li', {}, h('button', { type: 'button', 'data-link': e.key, onclick: () => select({ kind: 'edge', id: e.key }) }, `${e.from.name} — ${e.to.name}${e.impairment ? ` (${e.impairment.replaceAll('\n', '; ')})` : ''}`))),
  );
}

function onView(next) {
  view = next;
  document.getElementById('topology-name').textContent = view.topology;
  document.title = `Falcon: ${view.topology}`;
  if (!graph) graph = createGraph(document.getElementById('graph'), view, select);
  else graph.update(view);
  lists();
  panel?.update(view);
  if (selected) graph.select(selected.id);
}

function connect() {
  const ws = new WebSocket(wsUrl('/ws/view'));
  ws.onopen = () => {
    conn.dataset.state = 'live';
    conn.textContent = 'live';
  };
  ws.onmessage = (ev) => onView(JSON.parse(ev.data));
  ws.onclose = () => {
    conn.dataset.state = 'lost';
    conn.textContent = 'connection lost: retrying';
    setTimeout(connect, 2000);
  };
}
connect();
