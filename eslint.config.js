import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.penny/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // The payment-flow protocol: more than three parameters, or a flag, take an options object.
  { files: ['src/payments/**/*.ts'], rules: { 'max-params': ['error', 3] } },
  // Tool configurations that must be CommonJS (.dependency-cruiser.cjs).
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } } },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // Money never passes through a float.
      'no-restricted-globals': ['error', { name: 'parseFloat', message: 'Money is integer minor units.' }],
      'no-restricted-properties': ['error', { property: 'toFixed', message: 'Money is integer minor units.' }],
      'no-warning-comments': ['error', { terms: ['fixme'], location: 'anywhere' }],
      'max-len': ['error', { code: 120, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true }],
    },
  },
);
