/**
 * A minimal client of strongSwan's vici protocol (src/libcharon/plugins/vici/README.md), enough to poll
 * `list-sas` once a second over one connection instead of starting a `swanctl` process per poll.
 *
 * Transport: each packet is a 32-bit big-endian length, then a type byte, then (for named types) a one-byte
 * name length and the name, then the message: a sequence of elements (section start/end, key=value, list).
 */
import { createConnection, type Socket } from "node:net";

const Packet = {
  CMD_REQUEST: 0,
  CMD_RESPONSE: 1,
  CMD_UNKNOWN: 2,
  EVENT_REGISTER: 3,
  EVENT_UNREGISTER: 4,
  EVENT_CONFIRM: 5,
  EVENT_UNKNOWN: 6,
  EVENT: 7,
} as const;

const Element = {
  SECTION_START: 1,
  SECTION_END: 2,
  KEY_VALUE: 3,
  LIST_START: 4,
  LIST_ITEM: 5,
  LIST_END: 6,
} as const;

export type ViciSection = { [key: string]: string | string[] | ViciSection };

/** Decodes a vici message (the elements after the packet header). */
export function decodeMessage(buf: Buffer): ViciSection {
  const root: ViciSection = {};
  const stack: ViciSection[] = [root];
  let list: string[] | null = null;
  let i = 0;
  const name = (): string => {
    const len = buf.readUInt8(i);
    const s = buf.toString("utf8", i + 1, i + 1 + len);
    i += 1 + len;
    return s;
  };
  const value = (): string => {
    const len = buf.readUInt16BE(i);
    const s = buf.toString("utf8", i + 2, i + 2 + len);
    i += 2 + len;
    return s;
  };
  while (i < buf.length) {
    const type = buf.readUInt8(i++);
    const top = stack[stack.length - 1] as ViciSection;
    switch (type) {
      case Element.SECTION_START: {
        const child: ViciSection = {};
        top[name()] = child;
        stack.push(child);
        break;
      }
      case Element.SECTION_END:
        if (stack.length > 1) stack.pop();
        break;
      case Element.KEY_VALUE: {
        const k = name();
        top[k] = value();
        break;
      }
      case Element.LIST_START:
        list = [];
        top[name()] = list;
        break;
      case Element.LIST_ITEM:
        list?.push(value());
        break;
      case Element.LIST_END:
        list = null;
        break;
      default:
        throw new Error(`vici: unknown element type ${type} at offset ${i - 1}`);
    }
  }
  return root;
}

const named = (type: number, n: string): Buffer => {
  const body = Buffer.alloc(2 + Buffer.byteLength(n));
  body.writeUInt8(type, 0);
  body.writeUInt8(Buffer.byteLength(n), 1);
  body.write(n, 2);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
};

interface Incoming {
  type: number;
  name?: string;
  message: ViciSection;
}

export class ViciClient {
  private buf = Buffer.alloc(0);
  private waiting: ((p: Incoming) => void)[] = [];
  private events: Incoming[] = [];
  private error: Error | null = null;

  private constructor(private readonly sock: Socket) {
    sock.on("data", (d: Buffer) => this.onData(d));
    sock.on("error", (e) => this.fail(e));
    sock.on("close", () => this.fail(new Error("vici: connection closed")));
  }

  static connect(path: string): Promise<ViciClient> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(path);
      sock.once("connect", () => resolve(new ViciClient(sock)));
      sock.once("error", reject);
    });
  }

  private fail(e: Error): void {
    this.error ??= e;
    for (const w of this.waiting.splice(0)) w({ type: -1, message: {} });
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + len) break;
      const pkt = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      const type = pkt.readUInt8(0);
      let off = 1;
      let name: string | undefined;
      if (type === Packet.EVENT) {
        const n = pkt.readUInt8(1);
        name = pkt.toString("utf8", 2, 2 + n);
        off = 2 + n;
      }
      const p: Incoming = { type, message: decodeMessage(pkt.subarray(off)), ...(name ? { name } : {}) };
      if (type === Packet.EVENT) this.events.push(p);
      else this.waiting.shift()?.(p);
    }
  }

  private async send(pkt: Buffer): Promise<Incoming> {
    if (this.error) throw this.error;
    const reply = new Promise<Incoming>((resolve) => this.waiting.push(resolve));
    this.sock.write(pkt);
    const p = await reply;
    if (this.error) throw this.error;
    return p;
  }

  /**
   * A streamed command: registers for `event`, sends `command` (with an empty message) and returns the
   * events that arrived before the response. Requests must not overlap on one client.
   */
  async streamed(command: string, event: string): Promise<ViciSection[]> {
    const reg = await this.send(named(Packet.EVENT_REGISTER, event));
    if (reg.type !== Packet.EVENT_CONFIRM)
      throw new Error(`vici: cannot register for ${event} (${reg.type})`);
    try {
      this.events = [];
      const res = await this.send(named(Packet.CMD_REQUEST, command));
      if (res.type !== Packet.CMD_RESPONSE) throw new Error(`vici: ${command} failed (${res.type})`);
      return this.events.filter((e) => e.name === event).map((e) => e.message);
    } finally {
      this.events = [];
      await this.send(named(Packet.EVENT_UNREGISTER, event)).catch(() => undefined);
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
