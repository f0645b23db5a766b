// ESLint over the TypeScript facade, the tests, the benchmarks, the examples and the scripts.
// TypeScript files get typescript-eslint's type-aware recommended rules (the facade and the
// tests each have a tsconfig the project service finds); JavaScript files the JS recommended
// rules.
import js from '@eslint/js'
import { defineConfig } from 'eslint/config'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default defineConfig(
  {
    // Built or generated files, and data the examples and benchmarks leave behind.
    ignores: ['dist/', 'native/', 'docs/api/', 'target/', 'npm/', '.bench-data/', 'examples/*/world/', '**/node_modules/'],
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
  },
  {
    // The Electron example is CommonJS, as Electron's main process loads it.
    files: ['**/*.cjs', 'examples/electron/**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
  },
  {
    files: ['examples/electron/renderer.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['**/*.{ts,mts}'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A leading underscore marks a parameter or binding kept on purpose (an interface's
      // signature, a destructured value skipped).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
    },
  },
  {
    // Compile-time type tests, never run: values exist to be looked at by the compiler, and
    // the lines under @ts-expect-error are expressions that must not compile.
    files: ['__test__/types.check.mts'],
    rules: {
      '@typescript-eslint/no-unused-vars': 'off',
      '@typescript-eslint/no-unused-expressions': 'off',
    },
  },
)
