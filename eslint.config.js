import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The layers of src/, bottom to top (docs/architecture.md): the ground floor (config, errors, lsn, logger),
// budget/ (the pure rule), db/, replication/ and sink/, consumer/, ops/ (observability), commands/, cli.ts.
// A file may import its own folder, the ground floor and the layers its rule below allows; CI fails otherwise.
const NOT_CLI = { group: ['**/cli.js'], message: 'nothing imports cli.ts: it only parses and dispatches to src/commands/.' };
const layer = (files, forbidden, why) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', { patterns: [NOT_CLI, ...(forbidden.length === 0 ? [] : [{ group: forbidden, message: why }])] }],
  },
});
const folders = (...names) => names.map((name) => `../${name}/*`);

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'bench/results/', '.budget-cdc/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  { ...layer(['src/*.ts'], ['./*/*'], 'the ground floor (config, errors, lsn, logger) imports only itself.'), ignores: ['src/cli.ts'] },
  layer(['src/budget/**'], ['../*'], 'budget/ is the pure budget rule: it imports nothing of the project.'),
  layer(['src/db/**'], ['../*/*'], 'db/ (DDL, the table contract) stands on the ground floor only.'),
  layer(
    ['src/replication/**'],
    folders('sink', 'consumer', 'ops', 'commands', 'load', 'local'),
    'replication/ reads pgoutput into budget/ types; it imports the ground floor, db/ and budget/ only.',
  ),
  layer(
    ['src/sink/**'],
    folders('replication', 'db', 'consumer', 'ops', 'commands', 'load', 'local'),
    'sink/ writes to Redis; it imports the ground floor and budget/ only.',
  ),
  layer(
    ['src/distribution/**'],
    folders('replication', 'db', 'sink', 'consumer', 'ops', 'commands', 'load', 'local'),
    'distribution/ asks a distribution service over HTTP; it imports the ground floor and budget/ only.',
  ),
  layer(
    ['src/consumer/**'],
    folders('ops', 'commands', 'load', 'local'),
    'the consumer emits events; observers (ops/) subscribe to them in commands/.',
  ),
  {
    files: ['src/ops/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            NOT_CLI,
            { group: folders('commands', 'load', 'local'), message: 'ops/ is observability: it imports no command.' },
            {
              group: ['../consumer/*', '!../consumer/consumer-events.js'],
              message: 'ops/ knows the consumer by its events only (consumer/consumer-events.ts).',
            },
          ],
        },
      ],
    },
  },
  layer(
    ['src/load/**'],
    folders('budget', 'distribution', 'replication', 'sink', 'consumer', 'ops', 'commands', 'local'),
    'load/ is COPY: the ground floor and db/ only.',
  ),
  layer(['src/local/**'], ['../*/*'], 'local/ launches local servers: the ground floor only.'),
  layer(['src/commands/**', 'test/**', 'bench/**'], [], ''),
);
