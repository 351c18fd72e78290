import { isAscii } from "node:buffer";
import { readFileSync } from "node:fs";
import { type Io, UsageError } from "./io.js";

/** Reads a config file, or stdin for `-`; a missing file is the user's error, not a stack trace. */
export async function readInput(
  path: string,
  io: Io,
): Promise<{ file: string; text: string; bytes?: Uint8Array }> {
  if (path === "-") {
    if (!io.readStdin) throw new UsageError("cannot read standard input here");
    return { file: "<stdin>", text: await io.readStdin() };
  }
  try {
    const buf = readFileSync(path);
    // Pure ASCII (nearly every dump): the same string as UTF-8 decoding, copied without
    // validation, and one byte per character, so the iptables parser may read the bytes.
    if (isAscii(buf)) return { file: path, text: buf.toString("latin1"), bytes: buf };
    return { file: path, text: buf.toString("utf8") };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
          ? "is a directory"
          : code === "EACCES"
            ? "permission denied"
            : (e as Error).message;
    throw new UsageError(`cannot read ${path}: ${why}`);
  }
}

/** Guesses the platform of a config from its first meaningful lines. */
export function sniffPlatform(text: string): "fortios" | "iptables" | undefined {
  for (const raw of text.split(/\r?\n/, 200)) {
    const line = raw.trim();
    if (line === "" || (line.startsWith("#") && !line.startsWith("#config-version"))) continue;
    if (line.startsWith("#config-version") || /^config\s/.test(line)) return "fortios";
    if (
      /^\*(filter|nat|mangle|raw|security)\b/.test(line) ||
      /^-[AP]\s/.test(line) ||
      /^:[A-Za-z]/.test(line)
    )
      return "iptables";
    return undefined;
  }
  return undefined;
}
