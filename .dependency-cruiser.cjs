// Layers, imports pointing down only: model -> p4 -> host -> switch -> guest -> images -> k8s -> runner -> pod -> graph -> web -> cli.
// k8s (the Kubernetes backend) may import model, and types from host and images.
const layers = ['model', 'p4', 'host', 'switch', 'guest', 'images', 'k8s', 'runner', 'pod', 'graph', 'web', 'cli'];
const forbidden = [
  { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
];
layers.forEach((layer, i) => {
  const above = layers.slice(i + 1);
  if (above.length) {
    forbidden.push({
      name: `${layer}-imports-down-only`,
      comment: `src/${layer} may not import the layers above it (${above.join(', ')})`,
      severity: 'error',
      from: { path: `^src/${layer}/` },
      to: { path: `^src/(${above.join('|')})/` },
    });
  }
});
forbidden.push({
  name: 'util-is-a-leaf',
  severity: 'error',
  from: { path: '^src/util/' },
  to: { path: `^src/(${layers.join('|')})/` },
});
module.exports = {
  forbidden,
  options: { doNotFollow: { path: 'node_modules' }, tsPreCompilationDeps: true, tsConfig: { fileName: 'tsconfig.json' } },
};
