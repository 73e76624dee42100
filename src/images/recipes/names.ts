/**
 * The names of the built-in recipes, apart from the recipes themselves (index.ts: their files,
 * packages and init scripts), so that the image store answers `isBuiltin` without loading them.
 * A unit test checks this list against index.ts.
 */
export const BUILTIN_RECIPE_NAMES: readonly string[] = ['debian-12', 'tiny'];
