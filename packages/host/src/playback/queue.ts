import { Track } from './track.js';

/** Why a `play` was refused (the `busy` error's message). */
export type PlayRefusal = { busy: string };

/** The answer to a `cancel`. */
export type CancelAnswer = 'finished' | 'stillborn' | 'unknown';

/**
 * The tracks and their roles: every known track by id, the current and the next one, and the tracks already
 * reported `finished` whose audio is still on its way to the listener (`draining`, in order). It decides what the
 * protocol's `play` and `cancel` mean; it writes nothing and keeps no time.
 */
export class TrackQueue {
  /** Tracks speakerd knows and has not answered `finished`/`stillborn` for: connected, current, next. */
  readonly tracks = new Map<string, Track>();
  current: Track | undefined;
  next: Track | undefined;
  /** Reported finished, still playing out (in order). */
  readonly draining: Track[] = [];

  get size(): number {
    return this.tracks.size;
  }

  get(id: string): Track | undefined {
    return this.tracks.get(id);
  }

  /** A decoder connected for a track that was not played yet. */
  add(track: Track): void {
    this.tracks.set(track.id, track);
  }

  /**
   * `play`: make `id` current, or next. Returns the role it got, or why it is refused (`busy`); a refused `play`
   * changes nothing. `make` creates the track when no decoder has connected for it yet.
   */
  play(id: string, make: () => Track): 'current' | 'next' | PlayRefusal {
    const existing = this.tracks.get(id);
    if (existing && (existing.role === 'current' || existing.role === 'next'))
      return { busy: `${JSON.stringify(id)} is already ${existing.role}` };
    if (this.current && this.next) return { busy: 'a next track is already set' };
    const track = existing ?? make();
    this.tracks.set(id, track);
    if (!this.current) {
      track.role = 'current';
      this.current = track;
      return 'current';
    }
    track.role = 'next';
    this.next = track;
    return 'next';
  }

  /**
   * Has `track` started, as `cancel` sees it? A current track has — including one whose decoder never came —
   * unless it is current only because the track before it was reported finished and still plays out, and nothing
   * has been announced for it yet (PROTOCOL.md: such a track is `stillborn`).
   */
  hasStarted(track: Track): boolean {
    if (track !== this.current) return false;
    return track.announced || this.draining.length === 0;
  }

  /**
   * `cancel`: take `id` out of the queue and say what the answer is. The track is returned so the caller can take
   * its audio out of the output; promoting the next track is the caller's next step ({@link promote}).
   */
  cancel(id: string): { answer: CancelAnswer; track?: Track; wasCurrent: boolean } {
    const track = this.tracks.get(id);
    if (!track) return { answer: 'unknown', wasCurrent: false };
    const answer: CancelAnswer = this.hasStarted(track) ? 'finished' : 'stillborn';
    const wasCurrent = track === this.current;
    this.tracks.delete(id);
    track.answered = true;
    track.role = 'finished';
    if (wasCurrent) this.current = undefined;
    if (track === this.next) this.next = undefined;
    return { answer, track, wasCurrent };
  }

  /** The current track is reported finished: it drains (if anything of it is still to be heard) and leaves. */
  finish(track: Track, stillToHear: boolean): void {
    this.tracks.delete(track.id);
    track.role = 'finished';
    track.answered = true;
    if (this.current === track) this.current = undefined;
    if (stillToHear) this.draining.push(track);
  }

  /** No current track: the next one becomes current. */
  promote(): Track | undefined {
    if (this.current || !this.next) return undefined;
    this.current = this.next;
    this.current.role = 'current';
    this.next = undefined;
    return this.current;
  }

  /** Drop finished tracks from the front of `draining` once `isDone` says their last frame is audible. */
  prune(isDone: (track: Track) => boolean): void {
    while (this.draining.length > 0 && isDone(this.draining[0]!)) this.draining.shift();
  }

  /** Something is to be played: a current track, or finished tracks still playing out. */
  hasWork(): boolean {
    return this.draining.length > 0 || this.current !== undefined;
  }

  /** The tracks whose frames go out, in order: draining ones, the current one, the next one. */
  *sources(): Generator<Track> {
    yield* this.draining;
    if (this.current) yield this.current;
    if (this.next) yield this.next;
  }

  /** Every track still held (known and draining), for shutting down. */
  *all(): Generator<Track> {
    yield* this.draining;
    yield* this.tracks.values();
  }
}
