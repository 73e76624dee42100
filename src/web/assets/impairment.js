// The slot for a link's impairment controls (set and clear delay, loss, ...): the link panel
// calls this with the link's edge and appends what it returns. Until the impairment API is
// there it shows the link's current impairment, if any, and no controls.
import { h } from './api.js';

/** The impairment section of a link's panel, or null for none. `edge` is a view edge. */
export function impairmentSection(edge) {
  if (!edge.impairment) return null;
  return h('p', { class: 'impairment-text' }, edge.impairment);
}
