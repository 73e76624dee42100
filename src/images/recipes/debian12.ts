import type { Recipe } from '../types.js';
import type { AgentProvider } from './common.js';

export function createDebian12Recipe(_opts: { agent?: AgentProvider } = {}): Recipe {
  return { name: 'debian-12', version: 1, description: 'Debian 12', build: async () => { throw new Error('todo'); } };
}
export const debian12Recipe = createDebian12Recipe();
