/** Session, visitor and page ids: the format Observer's ingestion API accepts. */

/** The server's id format (`session_id`, `visitor_id`). */
export const ID_PATTERN = /^[A-Za-z0-9_-]{8,128}$/;

export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Fills `bytes` with random values: `crypto.getRandomValues` when there is one (it also works outside secure contexts, unlike `randomUUID`), `Math.random` otherwise. */
export function randomBytes(length: number, cryptoImpl: Pick<Crypto, 'getRandomValues'> | undefined = globalThis.crypto): Uint8Array {
  const bytes = new Uint8Array(length);
  try {
    if (cryptoImpl && typeof cryptoImpl.getRandomValues === 'function') {
      cryptoImpl.getRandomValues(bytes);
      return bytes;
    }
  } catch {
    // fall through to Math.random
  }
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return bytes;
}

/** Unpadded base64url of `bytes`. */
export function base64url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63];
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63];
  }
  return out;
}

/** A new random id: 16 random bytes (128 bits) as 22 base64url characters, always matching {@link ID_PATTERN}. */
export function newId(cryptoImpl?: Pick<Crypto, 'getRandomValues'>): string {
  return base64url(randomBytes(16, cryptoImpl === undefined ? globalThis.crypto : cryptoImpl));
}
