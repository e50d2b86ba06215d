// The wire types of docs/PROTOCOL.md, version 1: every command a music server sends on speakerd's stdin, every
// event speakerd writes on its stdout, and the header and answer lines of a decoder connection.

/** A sample encoding (PROTOCOL.md section 3; ffmpeg's names, 24-bit is packed 3 bytes). */
export type Encoding = 'u8' | 's8' | 's16le' | 's16be' | 's24le' | 's24be' | 's32le' | 's32be' | 'f32le' | 'f32be';

/** `{"encoding", "rate", "channels"}`. */
export interface Format {
  encoding: Encoding;
  rate: number;
  channels: number;
}

// ------------------------------------------------------------------------------------------------ commands

export interface PlayCommand {
  type: 'play';
  id: string;
}
export interface PauseCommand {
  type: 'pause';
}
export interface ResumeCommand {
  type: 'resume';
}
export interface CancelCommand {
  type: 'cancel';
  id: string;
}
export interface ReloadCommand {
  type: 'reload';
}
export interface StatusCommand {
  type: 'status';
}
export interface VolumeCommand {
  type: 'volume';
  /** 0..100, may be fractional. */
  volume: number;
}
export interface RtpRecipientCommand {
  type: 'rtp.add-recipient' | 'rtp.remove-recipient';
  address: string;
  port: number;
}
/** A command a backend plugin registered: `<plugin>.<name>`. */
export interface PluginCommand {
  type: `${string}.${string}`;
  [field: string]: unknown;
}

/** Every command of PROTOCOL.md section 2 (without `seq`: the client adds it). */
export type Command =
  | PlayCommand
  | PauseCommand
  | ResumeCommand
  | CancelCommand
  | ReloadCommand
  | StatusCommand
  | VolumeCommand
  | RtpRecipientCommand
  | PluginCommand;

// ------------------------------------------------------------------------------------------------ events

/** Fields every event may carry: `seq` when it answers a command directly. */
interface Answer {
  seq?: number;
}

export interface ReadyEvent extends Answer {
  type: 'ready';
  protocol: 1;
  version: string;
  backend: string;
  format: Format;
  /** The decoder socket's absolute path (older speakerd versions do not send it). */
  socket?: string;
}
export interface ArrivedEvent extends Answer {
  type: 'arrived';
  id: string;
  format: Format;
}
export interface PlayingEvent extends Answer {
  type: 'playing';
  id: string;
  /** Seconds of the track that are audible. */
  position: number;
}
export interface PausedEvent extends Answer {
  type: 'paused';
  id: string;
  position: number;
}
export interface FinishedEvent extends Answer {
  type: 'finished';
  id: string;
}
export interface StillbornEvent extends Answer {
  type: 'stillborn';
  id: string;
}
export interface UnknownEvent extends Answer {
  type: 'unknown';
  id: string;
}
export interface ReloadedEvent extends Answer {
  type: 'reloaded';
}
export type BackendState = 'ok' | 'lost' | 'recovering';
export interface TrackStatus {
  id: string;
  state: 'connected' | 'waiting' | 'current' | 'next';
  bufferedSeconds: number;
  position: number;
  eof: boolean;
  /** How often the track ran dry while playing (section 7). */
  underruns?: number;
  silenceSeconds?: number;
}
export interface StatusEvent extends Answer {
  type: 'status';
  backend: string;
  backendState: BackendState;
  backendMessage?: string;
  format: Format;
  paused: boolean;
  volume: number;
  current: string | null;
  next: string | null;
  tracks: TrackStatus[];
}
export interface VolumeEvent extends Answer {
  type: 'volume';
  volume: number;
}
export interface BackendEvent extends Answer {
  type: 'backend';
  state: BackendState;
  message: string;
  /** Section 7: the backend plugin's name, and for a failure the error code and the method that failed. */
  plugin?: string;
  code?: string;
  method?: string;
}
/** The codes of `error` events speakerd sends (PROTOCOL.md section 2). */
export type KnownErrorCode =
  | 'bad-json'
  | 'bad-command'
  | 'unknown-command'
  | 'busy'
  | 'line-too-long'
  | 'bad-header'
  | 'header-timeout'
  | 'duplicate-id'
  | 'too-many-tracks'
  | 'not-played'
  | 'config'
  | 'backend';
/** The code of an `error` event: one of {@link KnownErrorCode}, or one a newer speakerd adds (still a string). */
export type ErrorCode = KnownErrorCode | (string & {});
export interface ErrorEvent extends Answer {
  type: 'error';
  code: ErrorCode;
  message: string;
  id?: string;
}
export interface RtpRecipientsEvent extends Answer {
  type: 'rtp.add-recipient' | 'rtp.remove-recipient';
  recipients: { address: string; port: number }[];
}
/** The answer of a backend plugin's own command. */
export interface PluginEvent extends Answer {
  type: `${string}.${string}`;
  [field: string]: unknown;
}

/** Every event of PROTOCOL.md section 2 and 6. */
export type Event =
  | ReadyEvent
  | ArrivedEvent
  | PlayingEvent
  | PausedEvent
  | FinishedEvent
  | StillbornEvent
  | UnknownEvent
  | ReloadedEvent
  | StatusEvent
  | VolumeEvent
  | BackendEvent
  | ErrorEvent
  | RtpRecipientsEvent;

/** The built-in event types. */
export type EventType = Event['type'];
/** The event of type `T`. */
export type EventOf<T extends string> = T extends EventType ? Extract<Event, { type: T }> : PluginEvent;

/** What answers each command when it succeeds (`error` answers any of them; see {@link SpeakerdClient.request}). */
export interface AnswerOf {
  play: never;
  pause: PausedEvent;
  resume: PlayingEvent;
  cancel: FinishedEvent | StillbornEvent | UnknownEvent;
  reload: ReloadedEvent;
  status: StatusEvent;
  volume: VolumeEvent;
  'rtp.add-recipient': RtpRecipientsEvent;
  'rtp.remove-recipient': RtpRecipientsEvent;
}
/** The successful answer to command `C`. */
export type AnswerTo<C extends Command> = C['type'] extends keyof AnswerOf ? AnswerOf[C['type']] : PluginEvent;

// ------------------------------------------------------------------------------------------------ decoders

/** The header line of a decoder connection (section 3). */
export type DecoderHeader =
  { id: string; encoding: Encoding; rate: number; channels: number } | { id: string; encoding: 'wav' };

/** The header without the id (given separately to {@link SpeakerdClient.openDecoder}). */
export type DecoderFormat = Omit<Extract<DecoderHeader, { encoding: Encoding }>, 'id'> | { encoding: 'wav' };

export type DecoderRefusalCode = 'bad-header' | 'header-timeout' | 'duplicate-id' | 'too-many-tracks';

/** The answer line to a decoder's header. */
export type DecoderAnswer = { ok: true } | { ok: false; code: DecoderRefusalCode; message: string };
