import pc from "picocolors";

export type Colors = ReturnType<typeof pc.createColors>;

/** Colour only for a terminal: not in pipes, files or CI logs; NO_COLOR / FORCE_COLOR respected. */
export function colorsFor(stream: { isTTY?: boolean }): Colors {
  const env = process.env;
  const on = env.FORCE_COLOR
    ? env.FORCE_COLOR !== "0"
    : !env.NO_COLOR && stream.isTTY === true && env.TERM !== "dumb";
  return pc.createColors(on);
}

export const noColors: Colors = pc.createColors(false);
