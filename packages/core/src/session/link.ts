import type { Reply, SessionLink } from "../connection.js";
import { BINARY } from "./frames.js";

/** What a {@link Link} feeds: the session, by the generation of the connection it was made for. */
export interface LinkTarget {
  readonly id: string;
  /** A frame (or a binary-frame error) from the connection of `generation`. */
  inbound(generation: number, input: unknown, reply: Reply | undefined): void;
  /** The connection of `generation` closed. */
  connectionClosed(generation: number, code: number | undefined): void;
}

/**
 * The inbound side of one connection, as adapters see it (`hub.open` returns it). A connection
 * replaced by a resume keeps feeding its old link, whose generation no longer counts.
 */
export class Link implements SessionLink {
  constructor(
    private readonly session: LinkTarget,
    private readonly generation: number,
  ) {}
  get sessionId(): string {
    return this.session.id;
  }
  receiveText(text: string): void {
    this.session.inbound(this.generation, text, undefined);
  }
  receive(frame: unknown, reply?: Reply): void {
    this.session.inbound(this.generation, frame, reply);
  }
  receiveBinary(): void {
    this.session.inbound(this.generation, BINARY, undefined);
  }
  closed(code?: number): void {
    this.session.connectionClosed(this.generation, code);
  }
}
