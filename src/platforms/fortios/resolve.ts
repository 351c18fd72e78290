/**
 * From the generic tree to FortiOS tables: which sections belong to which VDOM, and what a
 * section's entries are after every `set`/`append`/`unset`/…, `rename`/`move`/`clone`/`delete`
 * has been applied in file order — the same state the FortiGate would hold after loading the file.
 *
 * Field semantics: `set`/`select` replace a field, `append` adds options, `unselect` removes
 * options, `unset`/`clear` return the field to its default (FortiOS Technical Tip 197205,
 * https://community.fortinet.com/t5/FortiGate/Technical-Tip-Useful-multi-option-values-CLI-commands-for/ta-p/197205).
 * Table commands: FortiOS "Subcommands" (https://docs.fortinet.com/document/fortigate/7.4.0/administration-guide/627485).
 */
import type { ConfigNode, ConfigTree, Diagnostic, EditNode, Loc, SetNode } from "./parse.js";

export interface Attr {
  values: string[];
  /** The command that last changed the field. */
  loc: Loc;
  redacted: boolean;
}

export interface Entry {
  name: string;
  attrs: Map<string, Attr>;
  /** The `edit` that created the entry (or the `config` line for a settings block). */
  loc: Loc;
  /** Nested `config` blocks inside the entry, by path (e.g. `secondaryip`, `ipv6`). */
  sub: Map<string, ConfigNode[]>;
}

export interface Table {
  path: string;
  /** Entries in table order (the order FortiOS evaluates ordered tables such as policies). */
  entries: Entry[];
  byName: Map<string, Entry>;
  /** Fields set directly in the block (settings-style sections such as `system global`). */
  settings: Entry;
  /** `rename A to B`: A → B and the line of the rename, so references written before it follow it. */
  renames: Map<string, { to: string; line: number }>;
  /** The section occurs in the file at all. */
  present: boolean;
}

export type SectionIndex = Map<string, ConfigNode[]>;

export interface Scopes {
  multiVdom: boolean;
  global: SectionIndex;
  /** In a single-VDOM file, `root` shares the global index. */
  vdoms: Map<string, SectionIndex>;
}

function addSection(idx: SectionIndex, node: ConfigNode): void {
  const key = node.path.join(" ");
  const list = idx.get(key);
  if (list) list.push(node);
  else idx.set(key, [node]);
}

/**
 * Splits a backup into global and per-VDOM sections. A multi-VDOM backup has `config global`
 * and `config vdom` / `edit NAME` blocks (a VDOM may be opened several times); a single-VDOM
 * backup has everything at the top level, which is both the global scope and VDOM `root`.
 */
export function collectScopes(tree: ConfigTree): Scopes {
  const global: SectionIndex = new Map();
  const vdoms = new Map<string, SectionIndex>();
  let multiVdom = tree.header.some((h) => h.key === "config-version" && /(^|:)vdom=1(:|$)/.test(h.value));
  for (const node of tree.children) {
    if (node.kind !== "config") continue;
    const key = node.path.join(" ");
    if (key === "global") {
      multiVdom = true;
      for (const c of node.children) if (c.kind === "config") addSection(global, c);
    } else if (key === "vdom") {
      multiVdom = true;
      for (const e of node.children) {
        if (e.kind !== "edit") continue;
        let idx = vdoms.get(e.name);
        if (!idx) {
          idx = new Map();
          vdoms.set(e.name, idx);
        }
        for (const c of e.children) if (c.kind === "config") addSection(idx, c);
      }
    } else addSection(global, node);
  }
  if (!multiVdom) vdoms.set("root", global);
  return { multiVdom, global, vdoms };
}

export interface ResolveOptions {
  /** Setting field K to a new value clears fields V (service `protocol` clears its port ranges…). */
  resets?: Readonly<Record<string, readonly string[]>>;
  /** Unsetting field K also unsets fields V (an ICMP code means nothing without its type). */
  unsetCascade?: Readonly<Record<string, readonly string[]>>;
  /** Longest name `rename`/`clone` may give (FortiOS rejects longer ones). */
  maxNameLength?: number;
  /** Names taken in a table sharing this one's namespace (addresses and groups), with the line taking them. */
  reserved?: ReadonlyMap<string, number>;
  /** `edit 0` creates a new entry numbered after the highest existing one (policy tables). */
  autoId?: boolean;
}

/**
 * Shared by every entry without nested blocks (nearly all of them): resolving is the only writer,
 * and it gives an entry its own map before adding the first block.
 */
const NO_SUB: Map<string, ConfigNode[]> = new Map();

function newEntry(name: string, loc: Loc): Entry {
  return { name, attrs: new Map(), loc, sub: NO_SUB };
}

function applySet(e: Entry, n: SetNode, opts: ResolveOptions): void {
  const prev = e.attrs.get(n.key);
  switch (n.verb) {
    case "set":
    case "select": {
      const resets = opts.resets?.[n.key];
      if (resets && prev && prev.values.join(" ") !== n.values.join(" ")) {
        for (const r of resets) e.attrs.delete(r);
      }
      // The node itself has the Attr shape: no copy for the commonest command.
      e.attrs.set(n.key, n);
      return;
    }
    case "append": {
      const base = prev?.values ?? [];
      const add = n.values.filter((v) => !base.includes(v));
      e.attrs.set(n.key, { values: [...base, ...add], loc: n.loc, redacted: n.redacted || !!prev?.redacted });
      return;
    }
    case "unselect": {
      if (!prev) return;
      e.attrs.set(n.key, {
        values: prev.values.filter((v) => !n.values.includes(v)),
        loc: n.loc,
        redacted: prev.redacted,
      });
      return;
    }
    case "unset":
    case "clear":
      e.attrs.delete(n.key);
      for (const k of opts.unsetCascade?.[n.key] ?? []) e.attrs.delete(k);
      return;
  }
}

function fillEntry(e: Entry, children: ConfigNode["children"], opts: ResolveOptions): void {
  for (const c of children) {
    if (c.kind === "set") applySet(e, c, opts);
    else if (c.kind === "config") {
      const key = c.path.join(" ");
      if (e.sub === NO_SUB) e.sub = new Map();
      const list = e.sub.get(key);
      if (list) list.push(c);
      else e.sub.set(key, [c]);
    }
  }
}

/** Applies every block of one section, in file order. Never throws; oddities become warnings. */
export function resolveTable(
  nodes: readonly ConfigNode[] | undefined,
  diagnostics: Diagnostic[],
  opts: ResolveOptions = {},
): Table {
  const first = nodes?.[0];
  const path = first ? first.path.join(" ") : "";
  const settingsLoc: Loc = first?.loc ?? { file: "", line: 0, col: 0, text: "" };
  const table: Table = {
    path,
    entries: [],
    byName: new Map(),
    settings: newEntry("", settingsLoc),
    renames: new Map(),
    present: !!first,
  };
  const warn = (loc: Loc, message: string): void => {
    diagnostics.push({ severity: "warning", file: loc.file, line: loc.line, col: loc.col, message });
  };
  const remove = (e: Entry): void => {
    table.byName.delete(e.name);
    const i = table.entries.indexOf(e);
    if (i >= 0) table.entries.splice(i, 1);
  };
  let maxId = 0;
  for (const block of nodes ?? []) {
    for (const c of block.children) {
      switch (c.kind) {
        case "set":
          applySet(table.settings, c, opts);
          break;
        case "config":
          fillEntry(table.settings, [c], opts);
          break;
        case "edit": {
          let name = c.name;
          if (opts.autoId && name === "0") name = String(maxId + 1);
          if (opts.autoId && /^\d+$/.test(name)) maxId = Math.max(maxId, Number(name));
          let e = table.byName.get(name);
          if (!e) {
            e = newEntry(name, c.loc);
            table.byName.set(name, e);
            table.entries.push(e);
          }
          fillEntry(e, c.children, opts);
          break;
        }
        case "command": {
          const [a, , b] = c.args;
          const src = a === undefined ? undefined : table.byName.get(a);
          const where = `'${c.verb}' in 'config ${path}'`;
          if (c.verb === "purge") {
            table.entries.length = 0;
            table.byName.clear();
          } else if (!src) {
            warn(c.loc, `${where}: no entry '${a}' (ignored)`);
          } else if (c.verb === "delete") {
            remove(src);
          } else if (c.verb === "move") {
            const ref = b === undefined ? undefined : table.byName.get(b);
            if (!ref || ref === src) warn(c.loc, `${where}: no entry '${b}' to move relative to (ignored)`);
            else {
              table.entries.splice(table.entries.indexOf(src), 1);
              const j = table.entries.indexOf(ref);
              table.entries.splice(c.args[1] === "before" ? j : j + 1, 0, src);
            }
          } else if (
            b === undefined ||
            table.byName.has(b) ||
            (opts.reserved?.get(b) ?? Infinity) < c.loc.line
          ) {
            warn(c.loc, `${where}: entry '${b}' already exists (ignored)`);
          } else if (opts.maxNameLength !== undefined && b.length > opts.maxNameLength) {
            warn(
              c.loc,
              `${where}: '${b.slice(0, 40)}…' is longer than ${opts.maxNameLength} characters (ignored)`,
            );
          } else if (c.verb === "rename") {
            table.byName.delete(src.name);
            table.renames.set(src.name, { to: b, line: c.loc.line });
            src.name = b;
            table.byName.set(b, src);
          } else {
            const copy = newEntry(b, c.loc);
            for (const [k, v] of src.attrs) copy.attrs.set(k, v);
            if (src.sub.size > 0) copy.sub = new Map([...src.sub].map(([k, v]) => [k, [...v]]));
            table.byName.set(b, copy);
            table.entries.push(copy);
          }
          break;
        }
      }
    }
  }
  return table;
}

/**
 * The entry `resolveTable` gives a name in a table without table commands (`rename`, `move`,
 * `clone`, `delete`, `purge`) and without `autoId`: every `edit` block of that name, in file
 * order. `edits` must be non-empty.
 */
export function resolveEntry(edits: readonly EditNode[], opts: ResolveOptions = {}): Entry {
  const e = newEntry(edits[0]!.name, edits[0]!.loc);
  for (const c of edits) fillEntry(e, c.children, opts);
  return e;
}

/**
 * The current name of an object referenced as `name` on line `refLine`: renames written after the
 * reference are followed (FortiOS updated the reference), earlier ones are not (the old name was
 * already gone when the reference was written). Cycle-safe.
 */
export function currentName(table: Table, name: string, refLine = 0): string {
  let n = name;
  for (let i = 0; i < 32 && !table.byName.has(n); i++) {
    const r = table.renames.get(n);
    if (r === undefined || r.line < refLine) break;
    n = r.to;
  }
  return n;
}
