/*
 * SPDX-License-Identifier: MIT (see LICENSE beside this file)
 *
 * dwrtc.d.ts: TypeScript declarations of dwrtc.js, the browser client of
 * DWRTC. Written by hand, beside the code they describe: a change to what
 * dwrtc.js exports, to an option or to an event's detail changes this file
 * in the same commit (tests/web/package.test.mjs compiles an app against it
 * and compares its exports and members with those of dwrtc.js).
 *
 * Events are typed through an event map per class, as the DOM's own
 * EventTargets are: `client.addEventListener('id', (e) => e.detail.id)`
 * knows that `e` is a CustomEvent<IdDetail>.
 */

/// <reference lib="dom" />

// --- error codes ----------------------------------------------------------

/**
 * The errors of the `error` events by name. The values are the texts the
 * node sends (the wire protocol), plus UNPARSABLE, the client's own for a
 * frame that is not JSON. An invalid message arrives as
 * `'invalid message: <why>'`; errorCodeOf() maps it to INVALID_MESSAGE.
 */
export declare const ErrorCode: Readonly<{
    /** No such recipient session, or its node left the network. */
    NOT_FOUND: 'not found';
    /** The recipient's node could not be reached; try again shortly. */
    UNREACHABLE: 'unreachable';
    /** Too many messages wait for that recipient; this one was not sent. */
    QUEUE_FULL: 'queue full';
    /** The sender went over the node's `dwrtc_rate`; messages were dropped. */
    RATE_LIMITED: 'rate limited';
    /** The sender's node is stopping; the session closes next. */
    NODE_UNAVAILABLE: 'not sent: node unavailable';
    /** A key-owned recipient was away longer than the sender's node holds messages (dwrtc_hold). */
    NOT_BACK_IN_TIME: 'not back in time';
    /** The node would not let this session own its key's id; sent as 'claim refused: <why>'. */
    CLAIM_REFUSED: 'claim refused';
    /** A newer session (another tab, say) owns this client's id now. */
    TAKEN_OVER: 'id taken over by a newer session';
    /** The room has as many members as the node allows (dwrtc_room_members). */
    ROOM_FULL: 'room full';
    /** This session is in as many rooms as the node allows (dwrtc_rooms_per_session). */
    TOO_MANY_ROOMS: 'too many rooms';
    /** The node refused a malformed message; sent as 'invalid message: <why>'. */
    INVALID_MESSAGE: 'invalid message';
    /** A WebSocketErrorMessage without an `error` text. */
    UNKNOWN: 'unknown error';
    /** A frame from the node that is not JSON (the client's own error). */
    UNPARSABLE: 'unparsable message from the node';
    /**
     * options.e2e: something that arrived did not hold and was not
     * delivered (altered, replayed, under an unknown key, plaintext from a
     * peer that encrypts, a key announcement that does not hold);
     * `senderSessionId` and `reason` say from whom and why.
     */
    E2E_REFUSED: 'e2e refused';
    /**
     * options.e2e: the recipient's key did not come (no answer within
     * e2eKeyTimeout, or the node could not reach it); `count` messages
     * that waited for it were not sent.
     */
    E2E_NO_KEY: 'no e2e key';
    /**
     * options.e2e (true or 'require'): the code of the Error send() throws
     * instead of sending a message to a key-owned id in plaintext, because
     * this session lost its key-owned id (claim refused, taken over); the
     * Error's `reason` says how, `recipientSessionId` names the recipient.
     */
    E2E_ID_LOST: 'e2e id lost';
    /**
     * The `code` of the Error connect() rejects with when every node URL
     * it was given failed once without a welcome; the client goes on
     * trying in the background.
     */
    NO_NODE: 'no node answered';
}>;

/** Any one of ErrorCode's values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * The `error` text of an error event: an ErrorCode value, an invalid
 * message with its reason, or a text a newer node may send.
 */
export type ErrorText =
    | Exclude<ErrorCode, typeof ErrorCode.INVALID_MESSAGE | typeof ErrorCode.CLAIM_REFUSED>
    | `invalid message: ${string}`
    | `claim refused: ${string}`
    | (string & {});

/**
 * The ErrorCode of an error text: the text itself when it is one of
 * ErrorCode's values, INVALID_MESSAGE for 'invalid message: <why>', null
 * for anything else (an Error object, an unknown text).
 */
export declare function errorCodeOf(error: unknown): ErrorCode | null;

// --- constants and helpers ------------------------------------------------

/** Message type of call signaling (SDP, ICE candidates, hang-up). */
export declare const SIGNALING_TYPE: 'SignalingMessage';

/** Waits between connection attempts, in milliseconds. */
export interface Backoff {
    /** Wait before the first retry. */
    initial: number;
    /** No wait is longer than this. */
    max: number;
    /** Each failed attempt in a row multiplies the wait by this. */
    factor: number;
    /** The wait is randomly shortened by up to this share (0 to 1). */
    jitter: number;
}

/** { initial: 500, max: 30000, factor: 2, jitter: 0.5 } */
export declare const DEFAULT_BACKOFF: Readonly<Backoff>;

/**
 * The WebSocket URL of a signaling location: `url` resolved against `base`
 * (by default the page's location), http:/https: turned into ws:/wss:.
 * Throws a TypeError for any other scheme.
 */
export declare function signalUrl(url: string, base?: string): string;

/** The node part of a node-assigned session id: its 32 hex digits before
 *  the dash; null for a key-owned id, which names no node. */
export declare function nodeIdOf(sessionId: string): string | null;

/** True if `text` has the form of a session id: node-assigned (32 hex,
 *  '-', 16 hex) or key-owned ('k' and 48 hex). */
export declare function isSessionId(text: unknown): text is string;

/** True if `text` has the form of a key-owned id ('k' and 48 hex). */
export declare function isOwnedId(text: unknown): text is string;

/** The id an ECDSA P-256 key pair owns: 'k' and the first 48 hex digits
 *  of the SHA-256 of its raw public key. */
export declare function ownedIdOf(keyPair: CryptoKeyPair): Promise<string>;

/** A new ECDSA P-256 key pair whose private key cannot be exported. */
export declare function generateIdentity(): Promise<CryptoKeyPair>;

/** The key pair kept in this origin's IndexedDB under `name` ('default'),
 *  made and stored on first use. */
export declare function loadIdentity(name?: string): Promise<CryptoKeyPair>;

/**
 * The wait before the next connection attempt, in ms: `initial` for 0 or 1
 * failures in a row, `factor` times longer for each further one, at most
 * `max`, shortened by up to `jitter` times `random()`.
 */
export declare function backoffDelay(
    failures: number,
    backoff?: Partial<Backoff>,
    random?: () => number,
): number;

// --- what the client takes ------------------------------------------------

/**
 * The part of a WebSocket that the client uses. The browser's WebSocket
 * and the `ws` package's (Node.js) both have it.
 */
export interface WebSocketLike {
    send(data: string): void;
    close(code?: number): void;
    addEventListener(type: 'message' | 'close' | 'error', listener: (event: any) => void): void;
}

/** A WebSocket constructor: `WebSocket` in a browser, `ws` in Node.js. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** An RTCPeerConnection constructor (the browser's, or a stand-in). */
export type RTCPeerConnectionConstructor =
    new (configuration: RTCConfiguration) => RTCPeerConnection;

/** Options of `new DwrtcClient(options)`. */
export interface DwrtcClientOptions {
    /** WebSocket constructor; default the global one (Node.js: pass `ws`'s). */
    WebSocket?: WebSocketConstructor;
    /** For calls; default the global one. */
    RTCPeerConnection?: RTCPeerConnectionConstructor;
    /** Base for relative node URLs; default the page's location. */
    base?: string;
    /** Reconnection waits; what is left out is DEFAULT_BACKOFF's. */
    backoff?: Partial<Backoff>;
    /** Ms to wait for the node's welcome before trying again; default 10000. */
    openTimeout?: number;
    /**
     * A session lost less than this many ms after its welcome counts as a
     * failed attempt (backoff grows, next URL); default 5000.
     */
    stableAfter?: number;
    /** ICE servers for calls when the node sends none; default []. */
    iceServers?: RTCIceServer[];
    /**
     * Answer incoming calls at once (true, or with these call options) when
     * no other call is active, then announce them in 'incomingcall'; a call
     * during another one is refused with hangup('busy'). Default false.
     */
    autoAnswer?: boolean | CallOptions;
    /** Own an id by a key, the same across reloads, reconnects and nodes:
     *  true (a key pair kept in IndexedDB under 'default'), a name, or a
     *  CryptoKeyPair. Default false: a new node-assigned id per session. */
    identity?: boolean | string | CryptoKeyPair;
    /**
     * End-to-end encryption (needs `identity`): true encrypts every message
     * to a key-owned id (call signaling included) and refuses plaintext in
     * the name of a peer that encrypts; a message to a key-owned id is never
     * sent in plaintext, also when this session lost its key-owned id
     * (send() throws, code ErrorCode.E2E_ID_LOST). 'require' also refuses
     * to send or take plaintext at all; 'prefer' sends in plaintext to
     * key-owned ids while this session has lost its id (the behaviour of
     * earlier versions). Default false.
     */
    e2e?: boolean | 'require' | 'prefer';
    /** Ms to wait for a recipient's e2e key; default 35000 (beyond dwrtc_hold's 30 s). */
    e2eKeyTimeout?: number;
    /**
     * With an identity: a welcome whose time is further than this many ms
     * from this device's clock is not signed for a claim (a node could
     * otherwise keep a claim dated ahead that outranks this key's later
     * ones); default 120000.
     */
    claimClockSkew?: number;
    /**
     * Ms a call's media connection may stay 'disconnected' or 'failed'
     * before the call ends (hangup by 'error', reason 'connection lost');
     * default 8000.
     */
    callLostTimeout?: number;
}

/** Options of DwrtcClient.call() and DwrtcCall.answer(). */
export interface CallOptions {
    /** Local media to send (not stopped when the call ends). */
    stream?: MediaStream;
    /**
     * Caller only: open a data channel (true, a label, or an
     * RTCDataChannelInit with an optional label; the default label is
     * 'dwrtc'). The callee gets it in 'datachannel'.
     */
    dataChannel?: boolean | string | (RTCDataChannelInit & { label?: string });
    /** Receive video even when sending none; default true. */
    receiveVideo?: boolean;
    /** Receive audio even when sending none; default true. */
    receiveAudio?: boolean;
    /** For the RTCPeerConnection; default { iceServers: client.iceServers }. */
    rtcConfig?: RTCConfiguration;
}

// --- events of DwrtcClient ------------------------------------------------

/** The client's connection state. */
export type ClientState = 'idle' | 'connecting' | 'open' | 'disconnected' | 'closed';

/** detail of the client's 'state' event. */
export interface ClientStateDetail {
    state: ClientState;
    previous: ClientState;
    /** The node this state is about (for 'disconnected': the one lost). */
    url: string | null;
    /** Failed attempts in a row (0 after a lasting session was lost). */
    attempt: number;
    /** 'disconnected': ms until the next attempt; else null. */
    retryIn: number | null;
    /** 'disconnected': what went wrong; else null. */
    reason: string | null;
}

/** detail of the 'id' event: the node welcomed a new session. */
export interface IdDetail {
    id: string;
    /** The session id before this one, or null for the first. */
    previousId: string | null;
    /** The id of the node this session is on. */
    nodeId: string | null;
    url: string | null;
    /** The ICE servers calls use from now on. */
    iceServers: RTCIceServer[];
    /** Whether `id` is owned by the client's key (options.identity). */
    owned: boolean;
    /** The id the node gave this session (the same as `id` when not owned). */
    nodeSessionId: string;
}

/** A message from another session, as the node delivered it. */
export interface Message {
    type: string;
    senderSessionId: string;
    recipientSessionId: string;
    messageBody: string;
    /** With options.e2e: whether it came end-to-end encrypted (absent without). */
    encrypted?: boolean;
}

/** The node's error message, as it came. */
export interface NodeErrorMessage {
    type: 'WebSocketErrorMessage';
    error?: string;
    recipientSessionId?: string;
    [field: string]: unknown;
}

/** detail of the client's 'error' event. */
export interface ClientErrorDetail {
    /** What went wrong; see ErrorCode and errorCodeOf(). */
    error: ErrorText;
    /** The recipient the error is about, or null. */
    recipientSessionId: string | null;
    /**
     * The node's whole message; for UNPARSABLE, the frame's text; for
     * E2E_REFUSED, the message refused as it came (or null); null for
     * E2E_NO_KEY and for errors of the client's own.
     */
    message: NodeErrorMessage | Message | string | null;
    /** E2E_REFUSED: who sent what was refused. */
    senderSessionId?: string | null;
    /** E2E_REFUSED and E2E_NO_KEY: why, in words. */
    reason?: string;
    /** E2E_NO_KEY: how many messages waited for the key and were not sent. */
    count?: number;
}

/** detail of 'incomingcall'. */
export interface IncomingCallDetail {
    call: DwrtcCall;
    /** The caller's session id. */
    from: string;
}

/** detail of 'room': the node's news of a room this client joined. */
export interface RoomDetail {
    room: string;
    /** 'members': the whole list (on joining); 'join', 'leave': one member. */
    event: 'members' | 'join' | 'leave';
    /** Who joined or left; null for 'members'. */
    id: string | null;
    /** The members after this event. */
    members: string[];
}

/** The events of DwrtcClient and the type of each. */
export interface DwrtcClientEventMap {
    state: CustomEvent<ClientStateDetail>;
    id: CustomEvent<IdDetail>;
    /** A message from another session; never call signaling. */
    message: CustomEvent<Message>;
    /** Call signaling as it came, before the calls handle it. */
    signaling: CustomEvent<Message>;
    error: CustomEvent<ClientErrorDetail>;
    incomingcall: CustomEvent<IncomingCallDetail>;
    room: CustomEvent<RoomDetail>;
}

/**
 * A connection to a DWRTC node, with reconnection and failover, and the
 * calls made over it.
 */
export declare class DwrtcClient extends EventTarget {
    constructor(options?: DwrtcClientOptions);

    /** Connection state. */
    readonly state: ClientState;
    /** This session's id while the state is 'open', else null. */
    readonly id: string | null;
    /** The id of the node this session is on while 'open', or null. */
    readonly nodeId: string | null;
    /** With options.identity: the key's id, once connect() has loaded the key. */
    readonly ownedId: string | null;
    /** WebSocket URL of the node in use, or null before connect(). */
    readonly url: string | null;
    /** Every node URL given to connect(), resolved (a copy). */
    readonly urls: string[];
    /** ICE servers for calls: the node's, or options.iceServers. */
    readonly iceServers: RTCIceServer[];
    /** Active calls by partner session id (a copy). */
    readonly calls: Map<string, DwrtcCall>;
    /** The rooms joined, each with its members as last heard (copies). */
    readonly rooms: Map<string, Set<string>>;

    /**
     * Connects and stays connected (retries with backoff, moves on to the
     * next URL after a failed attempt). Resolves with the session id;
     * rejects if close() comes first, and with an Error whose `code` is
     * ErrorCode.NO_NODE once every URL failed without a welcome (the client
     * goes on trying; a later welcome fires `id`).
     */
    connect(urls: string | readonly string[]): Promise<string>;

    /**
     * Sends a message to a session on any node; a body that is not a
     * string is sent as its JSON. Throws when not connected.
     */
    send(type: string, recipientId: string, body?: unknown): void;

    /** Calls a session (or answers its ringing call to us). */
    call(partnerId: string, options?: CallOptions): DwrtcCall;

    /** Hangs up every call and disconnects for good (state 'closed'). */
    close(): void;
    /** Joins a room (1 to 64 printable ASCII characters): resolves with its
     *  members once the node has the list; rejects with an Error whose
     *  `code` is ROOM_FULL or TOO_MANY_ROOMS. Joined again after reconnects. */
    join(room: string): Promise<string[]>;
    /** Leaves a room; the others hear 'leave'. */
    leave(room: string): void;

    addEventListener<K extends keyof DwrtcClientEventMap>(
        type: K,
        listener: (this: DwrtcClient, event: DwrtcClientEventMap[K]) => any,
        options?: boolean | AddEventListenerOptions,
    ): void;
    addEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject | null,
        options?: boolean | AddEventListenerOptions,
    ): void;
    removeEventListener<K extends keyof DwrtcClientEventMap>(
        type: K,
        listener: (this: DwrtcClient, event: DwrtcClientEventMap[K]) => any,
        options?: boolean | EventListenerOptions,
    ): void;
    removeEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject | null,
        options?: boolean | EventListenerOptions,
    ): void;
}

// --- events of DwrtcCall --------------------------------------------------

/**
 * The call's state: 'ringing' (incoming, not answered), then its
 * RTCPeerConnection's connectionState, finally 'ended'.
 */
export type CallState = 'ringing' | RTCPeerConnectionState | 'ended';

/** detail of the call's 'state' event. */
export interface CallStateDetail {
    state: CallState;
    previous: CallState;
}

/** detail of 'track'. */
export interface TrackDetail {
    track: MediaStreamTrack;
    streams: readonly MediaStream[];
}

/** detail of 'remotestream'. */
export interface RemoteStreamDetail {
    stream: MediaStream;
}

/** detail of 'datachannel'. */
export interface DataChannelDetail {
    channel: RTCDataChannel;
}

/** detail of the call's 'error' event; the call may go on. */
export interface CallErrorDetail {
    /** An Error (WebRTC, signaling), or the node's error text about the partner. */
    error: Error | ErrorText;
    /** What failed ('offer failed', ...), or the node's error text. */
    reason: string;
}

/** detail of 'hangup'. */
export interface HangupDetail {
    /** local: hangup() here; remote: the partner; error: e.g. NOT_FOUND. */
    by: 'local' | 'remote' | 'error';
    reason: string;
}

/** The events of DwrtcCall and the type of each. */
export interface DwrtcCallEventMap {
    state: CustomEvent<CallStateDetail>;
    track: CustomEvent<TrackDetail>;
    remotestream: CustomEvent<RemoteStreamDetail>;
    datachannel: CustomEvent<DataChannelDetail>;
    error: CustomEvent<CallErrorDetail>;
    hangup: CustomEvent<HangupDetail>;
}

/**
 * One call with one partner session (perfect negotiation, trickle ICE).
 * Made by DwrtcClient.call() or delivered by 'incomingcall'.
 */
export declare class DwrtcCall extends EventTarget {
    private constructor();

    /** The partner's session id. */
    readonly partnerId: string;
    /** True if the partner called us. */
    readonly incoming: boolean;
    /** True if this side yields when both offer at once. */
    readonly polite: boolean;
    readonly state: CallState;
    /** The RTCPeerConnection (null while ringing); it may be replaced once. */
    readonly pc: RTCPeerConnection | null;
    /** options.stream, if any. */
    readonly localStream: MediaStream | null;
    /** The partner's stream, once a track arrived. */
    readonly remoteStream: MediaStream | null;
    /** The latest data channel, once there is one. */
    readonly dataChannel: RTCDataChannel | null;

    /** Answers a ringing incoming call (options.dataChannel is ignored). */
    answer(options?: CallOptions): void;

    /** Ends the call and tells the partner; does nothing once ended. */
    hangup(reason?: string): void;

    addEventListener<K extends keyof DwrtcCallEventMap>(
        type: K,
        listener: (this: DwrtcCall, event: DwrtcCallEventMap[K]) => any,
        options?: boolean | AddEventListenerOptions,
    ): void;
    addEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject | null,
        options?: boolean | AddEventListenerOptions,
    ): void;
    removeEventListener<K extends keyof DwrtcCallEventMap>(
        type: K,
        listener: (this: DwrtcCall, event: DwrtcCallEventMap[K]) => any,
        options?: boolean | EventListenerOptions,
    ): void;
    removeEventListener(
        type: string,
        listener: EventListenerOrEventListenerObject | null,
        options?: boolean | EventListenerOptions,
    ): void;
}
