/** The built-in image recipes, by name. */
import { ImageError } from '../errors.js';
import type { Recipe } from '../types.js';
import { tinyRecipe } from './tiny.js';
import { debian12Recipe } from './debian12.js';

/** Built-in recipes: `tiny` (default, boots in seconds) and `debian-12` (systemd, full userland). */
export const builtinRecipes: Record<string, Recipe> = {
  [tinyRecipe.name]: tinyRecipe,
  [debian12Recipe.name]: debian12Recipe,
};

/** The built-in recipe called `name`; throws an error listing the known names if there is none. */
export function getRecipe(name: string): Recipe {
  const r = Object.hasOwn(builtinRecipes, name) ? builtinRecipes[name] : undefined;
  if (!r) {
    throw new ImageError('IMAGE_UNKNOWN_RECIPE', `there is no built-in image recipe '${name}'; known recipes: ${Object.keys(builtinRecipes).join(', ')}`);
  }
  return r;
}
