/** Image names and the validation of `meta.json`. */
import { z } from 'zod';
import { ImageError } from './errors.js';
import type { ImageMeta } from './types.js';

export const IMAGE_NAME_RE = /^[A-Za-z][A-Za-z0-9._-]*$/;
export const IMAGE_NAME_MAX = 64;
/** Names of the store's own directories, which can't be image names. */
export const RESERVED_NAMES: readonly string[] = ['cache', 'topo'];

/** Why `name` is not a valid image name, or undefined when it is. */
export function imageNameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'the name is empty';
  if (name.length > IMAGE_NAME_MAX) return `it is ${name.length} characters long (at most ${IMAGE_NAME_MAX})`;
  if (!IMAGE_NAME_RE.test(name)) return `names start with a letter and contain only letters, digits, '.', '_' and '-'`;
  if (RESERVED_NAMES.includes(name)) return `'${name}' is reserved for the store's own directory`;
  return undefined;
}

/** File names inside an image directory: plain names, no paths. */
const fileName = z
  .string()
  .min(1)
  .refine((s) => !s.includes('/') && s !== '.' && s !== '..' && !s.includes('\0'), 'must be a plain file name');

const bootSchema = z.discriminatedUnion('method', [
  z.object({ method: z.literal('direct'), kernel: fileName, initrd: fileName.optional(), cmdline: z.string() }),
  z.object({ method: z.literal('firmware'), firmware: z.enum(['bios', 'uefi']) }),
]);

export const imageMetaSchema = z.object({
  version: z.literal(1),
  name: z.string().refine((s) => imageNameProblem(s) === undefined, 'invalid image name'),
  disk: fileName,
  boot: bootSchema,
  exec: z.enum(['agent', 'serial-login']),
  login: z.object({ user: z.string().min(1), password: z.string().optional() }).optional(),
  parent: z.string().optional(),
  recipe: z.object({ name: z.string(), version: z.number().int() }).optional(),
  packages: z.array(z.string()).optional(),
  sizeBytes: z.number().int().nonnegative(),
  virtualSizeBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string(),
  description: z.string().optional(),
});

/** Parses meta.json text; throws IMAGE_DAMAGED with the field that is wrong. */
export function parseImageMeta(text: string): ImageMeta {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ImageError('IMAGE_DAMAGED', `meta: not JSON (${(err as Error).message})`);
  }
  const r = imageMetaSchema.safeParse(json);
  if (!r.success) {
    const first = r.error.issues[0]!;
    throw new ImageError('IMAGE_DAMAGED', `${first.path.join('.') || 'meta'}: ${first.message}`);
  }
  return r.data as ImageMeta;
}
