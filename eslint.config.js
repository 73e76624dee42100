import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules', 'dist', 'bench/results', '**/.falcon*', '.dependency-cruiser.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'process', property: 'exit', message: 'Library code throws; only src/cli may exit.' }],
    },
  },
  {
    // One error story: what the library throws is a FalconError with a code (src/util/errors.ts).
    files: ['src/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name=/^(Error|TypeError|RangeError)$/]", message: 'Throw a FalconError (src/util/errors.ts) with a code, or a subclass of it.' },
      ],
      // A longer function says why in an eslint-disable comment (`-- reason`).
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: false, skipComments: false, IIFEs: true }],
    },
  },
  {
    // The web page's own scripts run in the browser.
    files: ['src/web/assets/**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(
        ['window', 'document', 'location', 'fetch', 'WebSocket', 'TextEncoder', 'Node', 'setTimeout', 'console'].map((g) => [g, 'readonly']),
      ),
    },
    // FalconError is the library's; the page shows the server's messages with plain Errors.
    rules: { 'no-restricted-syntax': 'off' },
  },
  { files: ['src/cli/**', 'src/pod/main.ts', 'bin/**', 'scripts/**', 'bench/**', 'test/**', 'guest-agent/**'], rules: { 'no-restricted-properties': 'off' } },
);
