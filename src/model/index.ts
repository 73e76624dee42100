export * from './errors.js';
export * from './spec.js';
export * from './topology.js';
export { MAX_NAME_LENGTH } from './validate.js';
export * from './naming.js';
export * from './capture.js';
export * from './impair.js';
