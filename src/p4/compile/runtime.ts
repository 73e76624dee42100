/**
 * Helper functions every generated program starts with (as source, so V8 can inline them
 * into the generated code). Values are big-endian in W and in byte arrays; `o` is a byte
 * offset, `bit` the bits from `o` to the value's most significant bit.
 */
export const RUNTIME_SOURCE = String.raw`
function rdn(A, o, n) { let v = 0; for (let i = 0; i < n; i++) v = v * 256 + A[o + i]; return v; }
function wrn(A, o, n, v) { for (let i = n - 1; i >= 0; i--) { A[o + i] = v % 256; v = Math.floor(v / 256); } }
function w16(A, o, v) { A[o] = v >>> 8; A[o + 1] = v & 255; }
function w32(A, o, v) { A[o] = v >>> 24; A[o + 1] = (v >>> 16) & 255; A[o + 2] = (v >>> 8) & 255; A[o + 3] = v & 255; }
function w48(A, o, v) { const hi = Math.floor(v / 4294967296); A[o] = hi >>> 8; A[o + 1] = hi & 255; w32(A, o + 2, v >>> 0); }
function rdb(A, o, bit, w) {
  let v = 0; let i = bit; const e = bit + w;
  while (i < e) {
    const bi = i & 7; const take = Math.min(8 - bi, e - i);
    v = v * (1 << take) + ((A[o + (i >> 3)] >> (8 - bi - take)) & ((1 << take) - 1));
    i += take;
  }
  return v;
}
function wrb(A, o, bit, w, v) {
  let i = bit + w;
  while (i > bit) {
    const last = i - 1; const start = Math.max(bit, last - (last & 7)); const take = i - start;
    const shift = 7 - (last & 7); const m = ((1 << take) - 1) << shift; const p = o + (last >> 3);
    A[p] = (A[p] & ~m) | (((v % (1 << take)) << shift) & m);
    v = Math.floor(v / (1 << take)); i = start;
  }
}
function cpb(D, d, S, s, n) { for (let i = 0; i < n; i++) D[d + i] = S[s + i]; }
function eqb(A, a, B, b, n) { for (let i = 0; i < n; i++) if (A[a + i] !== B[b + i]) return false; return true; }
function isz(A, a, n) { for (let i = 0; i < n; i++) if (A[a + i] !== 0) return false; return true; }
function rbig(A, o, n) { let v = 0n; for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(A[o + i]); return v; }
function wbig(A, o, n, v) { for (let i = n - 1; i >= 0; i--) { A[o + i] = Number(v & 255n); v >>= 8n; } }
function wrap(v, m) { v %= m; return v < 0 ? v + m : v; }
function and48(a, b) { return ((Math.floor(a / 4294967296) & Math.floor(b / 4294967296)) >>> 0) * 4294967296 + ((a & b) >>> 0); }
function or48(a, b) { return ((Math.floor(a / 4294967296) | Math.floor(b / 4294967296)) >>> 0) * 4294967296 + ((a | b) >>> 0); }
function xor48(a, b) { return ((Math.floor(a / 4294967296) ^ Math.floor(b / 4294967296)) >>> 0) * 4294967296 + ((a ^ b) >>> 0); }
function shl(a, b, w) { return b >= w ? 0 : w <= 32 ? (w === 32 ? (a << b) >>> 0 : (a << b) & ((1 << w) - 1)) : wrap(a * Math.pow(2, b), Math.pow(2, w)); }
function shr(a, b) { return b >= 53 ? 0 : b < 32 && a <= 4294967295 ? a >>> b : Math.floor(a / Math.pow(2, b)); }
function csum(A, n) {
  let s = 0;
  for (let i = 0; i + 1 < n; i += 2) s += (A[i] << 8) | A[i + 1];
  if (n & 1) s += A[n - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return ~s & 0xffff;
}
`;
