/**
 * Seeded PRNG (sfc32, seeded through splitmix32). Every random choice in a run — rekey jitter,
 * SPIs, nonces — comes from one instance, so the same seed gives the same event list.
 */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const split = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split() | 0;
    this.b = split() | 0;
    this.c = split() | 0;
    this.d = split() | 0;
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    // The state is kept as signed 32-bit integers (small integers for V8, no boxed doubles); only
    // its value modulo 2³² matters, so the outputs are sfc32's.
    const a = this.a;
    const b = this.b;
    const c = this.c;
    const d = this.d;
    const t = (((a + b) | 0) + d) | 0;
    this.d = (d + 1) | 0;
    this.a = b ^ (b >>> 9);
    this.b = (c + (c << 3)) | 0;
    this.c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /**
   * A CHILD SA SPI as a number (signed 32-bit, so V8 keeps it a small integer; never 0 nor 1..255,
   * reserved by RFC 4303 §2.1 and IANA). {@link spiHex} gives its 8 hex digits for output.
   */
  spi32n(): number {
    let v = this.u32();
    if (v < 256) v += 256;
    return v | 0;
  }

  /** 8 hex digits, never zero (an SPI of 0 is reserved, RFC 4303 §2.1). */
  spi32(): string {
    return spiHex(this.spi32n());
  }

  /** 16 hex digits: IKE SPI / IKEv1 cookie. */
  spi64(): string {
    return this.spi32() + this.spi32();
  }
}

/** The 8 hex digits of a numeric SPI (as logs print it), byte by byte from a table. */
export function spiHex(v: number): string {
  return HEX[v >>> 24]! + HEX[(v >>> 16) & 255]! + HEX[(v >>> 8) & 255]! + HEX[v & 255]!;
}

/** Derives a sub-seed from a run seed and names (FNV-1a): independent, reproducible streams. */
export function seedFor(seed: number, ...names: string[]): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (const n of names) {
    for (let i = 0; i < n.length; i++) {
      h ^= n.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    h ^= 0x2f;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
