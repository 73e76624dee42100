/** The image store's error class. */
import { FalconError } from '../util/errors.js';

export type ImageErrorCode =
  | 'IMAGE_INVALID_NAME'
  | 'IMAGE_NOT_FOUND'
  | 'IMAGE_EXISTS'
  | 'IMAGE_IN_USE'
  | 'IMAGE_NOT_AN_IMAGE'
  | 'IMAGE_CHECKSUM'
  | 'IMAGE_NO_SPACE'
  | 'IMAGE_BAD_OPTION'
  | 'IMAGE_UNKNOWN_RECIPE'
  | 'IMAGE_DAMAGED'
  | 'IMAGE_BUILD_FAILED';

/** An error a user can hit in the image store; `code` is for programs, the message for people. */
export class ImageError extends FalconError {
  override name = 'ImageError';
  constructor(
    override readonly code: ImageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}
