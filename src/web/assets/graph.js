// The topology drawn with cytoscape: nodes coloured by status, switches as hexagons, links
// labelled with their host interfaces (or switch ports) at each end and their impairment.
import cytoscape from '/vendor/cytoscape.mjs';

const STYLE = [
  {
    selector: 'node',
    style: {
      label: 'data(label)', 'text-wrap': 'wrap', 'text-valign': 'center', 'text-halign': 'center', 'font-size': 11,
      shape: 'round-rectangle', width: 'data(w)', height: 'data(h)',
      'background-color': '#d9f2d9', 'border-width': 2, 'border-color': '#2e7d32',
    },
  },
  { selector: 'node[status = "stopped"]', style: { 'background-color': '#eeeeee', 'border-color': '#757575', color: '#555' } },
  { selector: 'node[status = "not launched"]', style: { 'background-color': '#ffffff', 'border-color': '#9e9e9e', 'border-style': 'dashed' } },
  { selector: 'node[kind = "switch"]', style: { shape: 'hexagon' } },
  { selector: 'node[kind = "host"]', style: { shape: 'tag', 'background-color': '#e3ecf7', 'border-color': '#1565c0' } },
  {
    selector: 'edge',
    style: {
      'curve-style': 'bezier', width: 2, 'line-color': '#888', 'font-size': 9, 'text-wrap': 'wrap',
      label: 'data(label)', 'source-label': 'data(fromLabel)', 'target-label': 'data(toLabel)',
      'source-text-offset': 55, 'target-text-offset': 55,
      'text-background-color': '#fff', 'text-background-opacity': 0.85, 'text-background-padding': '2px',
    },
  },
  { selector: 'edge[kind = "cpu"]', style: { 'line-style': 'dashed' } },
  { selector: 'edge[?impaired]', style: { 'line-color': '#c62828', color: '#c62828', width: 3 } },
  { selector: ':selected', style: { 'border-color': '#1565c0', 'border-width': 4, 'line-color': '#1565c0' } },
];

function elements(view) {
  return [
    ...view.nodes.map((n) => ({
      group: 'nodes',
      // Sized to the label (about 7 px a character at 11 px); switches get room for the hexagon's corners.
      data: {
        id: n.id, name: n.name, kind: n.kind, status: n.status, label: n.lines.join('\n'),
        w: Math.max(...n.lines.map((l) => l.length)) * 7 + (n.kind === 'switch' ? 50 : 26), h: n.lines.length * 15 + 20,
      },
    })),
    ...view.edges.map((e) => ({
      group: 'edges',
      data: {
        id: e.key, source: e.from.id, target: e.to.id, kind: e.kind,
        label: e.impairment ?? '', impaired: !!e.impairment, fromLabel: e.fromLabel, toLabel: e.toLabel,
      },
    })),
  ];
}

/** Draw `view` in `container`; `onSelect({ kind: 'node'|'edge', id })` on a tap. Returns { update(view), cy }. */
export function createGraph(container, view, onSelect) {
  const cy = cytoscape({ container, elements: elements(view), style: STYLE, minZoom: 0.3, maxZoom: 3 });
  const layout = () => cy.layout({ name: 'cose', animate: false, padding: 40, nodeRepulsion: () => 60000, idealEdgeLength: () => 160 }).run();
  layout();
  cy.on('tap', 'node', (ev) => onSelect({ kind: 'node', id: ev.target.id() }));
  cy.on('tap', 'edge', (ev) => onSelect({ kind: 'edge', id: ev.target.id() }));
  let shape = JSON.stringify(elements(view).map((e) => [e.data.id, e.data.source, e.data.target]));
  return {
    cy,
    update(next) {
      const els = elements(next);
      const nextShape = JSON.stringify(els.map((e) => [e.data.id, e.data.source, e.data.target]));
      if (nextShape !== shape) {
        // Nodes or links came or went: draw afresh.
        cy.elements().remove();
        cy.add(els);
        layout();
        shape = nextShape;
        return;
      }
      for (const e of els) cy.getElementById(e.data.id).data(e.data);
    },
    select(id) {
      cy.elements().unselect();
      cy.getElementById(id).select();
    },
  };
}
