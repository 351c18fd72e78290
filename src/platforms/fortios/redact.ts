/**
 * Secret redaction for FortiOS configurations, applied by the parser so that no secret ever
 * reaches the tree, the model, an error message or any output built from them.
 *
 * What counts as a secret (decided here, documented in examples/seed001/README.md):
 * 1. The values of any key with a hyphen-separated segment that names a secret:
 *    `…password`, `…passwd`, `…passphrase`, `…pwd`, `…secret` (so `psksecret`, `psksecret-remote`,
 *    `secondary-secret`, `ppk-secret`, `auth-pwd`, `priv-pwd`, `authpasswd`), or exactly `key`, `keys`,
 *    `psk`, `token`, `privkey` (so `private-key`, `api-key`, `key-string`, `md5-key`, `key-outbound`),
 *    optionally followed by digits. `keylife`, `keepalive`, `keyid` are single segments and stay readable.
 * 2. Whatever follows an `ENC` value, under any key: FortiOS writes every stored secret as `ENC <blob>`.
 *    The `ENC` marker itself is kept, so an audit can still tell encrypted from plaintext secrets.
 * 3. Any value holding a PEM block (`-----BEGIN …-----`): private keys, but certificates too — they
 *    are public, yet they are bulky and redacting them costs the engine nothing.
 * 4. SNMP v1/v2c communities: the `name` of an entry in `config system snmp community` *is* the secret.
 *    BGP communities (`set-community`, `match-community`) are not secrets and are kept.
 */

export const REDACTED = "<redacted>";

const SECRET_SEGMENT =
  /^(?:[a-z0-9]*(?:password|passwd|passphrase|pwd|secret)|key|keys|psk|token|privkey)\d*$/;

const memo = new Map<string, boolean>();

/** Whether the values of `key` are secret, given the path of the innermost `config` block. */
export function isSecretKey(key: string, configPath: readonly string[] = []): boolean {
  if (key === "name") return isSnmpCommunityPath(configPath);
  let v = memo.get(key);
  if (v === undefined) {
    v = key
      .toLowerCase()
      .split("-")
      .some((seg) => SECRET_SEGMENT.test(seg));
    if (memo.size < 10_000) memo.set(key, v);
  }
  return v;
}

function isSnmpCommunityPath(path: readonly string[]): boolean {
  const n = path.length;
  return n >= 2 && path[n - 2] === "snmp" && path[n - 1] === "community";
}

export function isPem(value: string): boolean {
  return value.includes("-----BEGIN ");
}

/**
 * Which value positions of a `set`-like command are secret (true = must not be kept), or null
 * when none is — the common case, answered without allocating.
 */
export function secretValueMask(
  key: string,
  values: readonly string[],
  configPath: readonly string[],
): boolean[] | null {
  const keySecret = isSecretKey(key, configPath);
  if (!keySecret && !values.some((v) => v === "ENC" || isPem(v))) return null;
  const mask = new Array<boolean>(values.length).fill(false);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v === "ENC") {
      // Keep the marker (even alone, as in seed 001's snippet), hide the blob and anything after it.
      for (let j = i + 1; j < values.length; j++) mask[j] = true;
      break;
    }
    if (keySecret || isPem(v)) mask[i] = true;
  }
  return mask.includes(true) ? mask : null;
}

/** Replaces masked values by one REDACTED marker per run, so the value count leaks nothing useful. */
export function applyMask(values: readonly string[], mask: readonly boolean[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < values.length; i++) {
    if (!mask[i]) out.push(values[i]!);
    else if (i === 0 || !mask[i - 1]) out.push(REDACTED);
  }
  return out;
}

/**
 * Defence in depth for free text (diagnostics): replaces any occurrence of a known secret value.
 * Very short values are skipped — replacing every "1" in a message would destroy it, and a
 * one- or two-character secret is not something a message could meaningfully leak.
 */
export function scrub(text: string, secrets: ReadonlySet<string>): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 3 && out.includes(s)) out = out.split(s).join(REDACTED);
  }
  return out;
}
