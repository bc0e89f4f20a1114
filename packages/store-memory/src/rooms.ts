import type { RoomRecord, RoomStore, StoredMessage } from "@whisperchat/core";

interface RoomState {
  readonly record: RoomRecord;
  /** Oldest first, at most the last `limit` given to `append`. */
  readonly history: StoredMessage[];
}

/** Rooms and their bounded histories, in a Map. */
export class MemoryRooms implements RoomStore {
  readonly #rooms = new Map<string, RoomState>();

  async create(room: RoomRecord): Promise<void> {
    this.#rooms.set(room.roomId, { record: room, history: [] });
  }

  async get(roomId: string): Promise<RoomRecord | undefined> {
    return this.#rooms.get(roomId)?.record;
  }

  async delete(roomId: string): Promise<RoomRecord | undefined> {
    const state = this.#rooms.get(roomId);
    if (state === undefined) return undefined;
    this.#rooms.delete(roomId);
    return state.record;
  }

  async append(roomId: string, message: StoredMessage, limit: number): Promise<boolean> {
    const state = this.#rooms.get(roomId);
    if (state === undefined) return false;
    const { history } = state;
    history.push(message);
    const excess = history.length - Math.max(0, Math.floor(limit));
    if (excess > 0) history.splice(0, excess);
    return true;
  }

  async history(roomId: string): Promise<StoredMessage[]> {
    return this.#rooms.get(roomId)?.history.slice() ?? [];
  }

  /** How many rooms are open. */
  get count(): number {
    return this.#rooms.size;
  }

  clear(): void {
    this.#rooms.clear();
  }
}
