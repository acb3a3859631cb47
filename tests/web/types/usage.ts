// An app written against the dwrtc package's types: what docs/web-developers.md
// shows, in TypeScript. It is only compiled (tsc --noEmit --strict), never
// run. The lines under `@ts-expect-error` are calls the types must refuse;
// tsc fails if one of them compiles.

import {
    DwrtcClient,
    DwrtcCall,
    ErrorCode,
    errorCodeOf,
    signalUrl,
    nodeIdOf,
    isSessionId,
    isOwnedId,
    ownedIdOf,
    generateIdentity,
    loadIdentity,
    backoffDelay,
    DEFAULT_BACKOFF,
    SIGNALING_TYPE,
} from 'dwrtc';
import type {
    Backoff,
    CallOptions,
    CallState,
    ClientErrorDetail,
    ClientState,
    DwrtcClientOptions,
    DwrtcGroup,
    ErrorText,
    GroupOptions,
    GroupState,
    WebSocketLike,
} from 'dwrtc';

// --- the client -------------------------------------------------------------

const options: DwrtcClientOptions = {
    backoff: { initial: 250 },
    openTimeout: 5_000,
    stableAfter: 2_000,
    iceServers: [{ urls: 'stun:stun.example.com:3478' }],
    autoAnswer: { receiveVideo: true },
};
const client = new DwrtcClient(options);

client.addEventListener('state', (e) => {
    const state: ClientState = e.detail.state;
    if (state === 'disconnected') {
        const wait: number | null = e.detail.retryIn;
        console.log(`lost ${e.detail.url}: ${e.detail.reason}; again in ${wait} ms`);
    }
});
client.addEventListener('id', (e) => {
    const id: string = e.detail.id;
    const before: string | null = e.detail.previousId;
    console.log(id, before, e.detail.nodeId, e.detail.iceServers.length);
});
client.addEventListener('message', (e) => {
    const { type, senderSessionId, messageBody } = e.detail;
    if (type === 'chat') {
        console.log(senderSessionId, messageBody.toUpperCase());
    }
});

// errors: compared with ErrorCode, the invalid one through errorCodeOf
function describe(detail: ClientErrorDetail): string {
    const text: ErrorText = detail.error;
    switch (errorCodeOf(text)) {
        case ErrorCode.NOT_FOUND:
            return `${detail.recipientSessionId} is gone`;
        case ErrorCode.UNREACHABLE:
        case ErrorCode.QUEUE_FULL:
            return 'try again shortly';
        case ErrorCode.RATE_LIMITED:
            return 'slow down';
        case ErrorCode.NODE_UNAVAILABLE:
            return 'reconnect';
        case ErrorCode.NOT_BACK_IN_TIME:
            return `${detail.recipientSessionId} did not come back in time`;
        case ErrorCode.CLAIM_REFUSED:
            return text.slice(ErrorCode.CLAIM_REFUSED.length + 2);
        case ErrorCode.TAKEN_OVER:
            return 'this id is in use in another tab';
        case ErrorCode.ROOM_FULL:
        case ErrorCode.TOO_MANY_ROOMS:
            return 'try another room';
        case ErrorCode.INVALID_MESSAGE:
            return text.slice(ErrorCode.INVALID_MESSAGE.length + 2);
        case ErrorCode.E2E_REFUSED:
            return `refused from ${detail.senderSessionId}: ${detail.reason}`;
        case ErrorCode.E2E_NO_KEY:
            return `${detail.count} not sent to ${detail.recipientSessionId}: ${detail.reason}`;
        case ErrorCode.E2E_ID_LOST:     // the code of what send() throws, not an event's
            return 'nothing sent: this page lost its id';
        case ErrorCode.NO_NODE:         // the code of what connect() rejects with
            return 'offline: no server answers';
        case ErrorCode.GROUP_FULL:      // the code of what joinCall() rejects with
            return 'the group call is full';
        case ErrorCode.UNPARSABLE:
        case ErrorCode.UNKNOWN:
        case null:
            return text;
    }
}
client.addEventListener('error', (e) => console.warn(describe(e.detail)));
if (ErrorCode.NOT_FOUND !== 'not found') {
    throw new Error('the literal type is the wire text');
}

const id: string = await client.connect(['./signal', 'wss://b.example/signal']);
client.connect('./signal').then((again: string) => console.log(again));
console.log(id, client.state, client.id, client.nodeId, client.url, client.urls);
client.send('chat', id, 'hello');
client.send('chat', id, { any: ['json', 1] });

// --- calls ------------------------------------------------------------------

const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
const callOptions: CallOptions = { stream, dataChannel: { label: 'chat', ordered: true } };

function watch(call: DwrtcCall): void {
    call.addEventListener('state', (e) => {
        const now: CallState = e.detail.state;
        console.log(call.partnerId, e.detail.previous, '->', now);
    });
    call.addEventListener('remotestream', (e) => {
        const video = document.querySelector('video');
        if (video) {
            video.srcObject = e.detail.stream;
        }
    });
    call.addEventListener('track', (e) => {
        console.log(e.detail.track.kind, e.detail.streams.length);
    });
    call.addEventListener('datachannel', (e) => {
        e.detail.channel.addEventListener('open', () => e.detail.channel.send('hi'));
    });
    call.addEventListener('error', (e) => {
        const { error } = e.detail;
        console.warn(error instanceof Error ? error.message : error, e.detail.reason);
    });
    call.addEventListener('hangup', (e) => {
        if (e.detail.by === 'error' && e.detail.reason === ErrorCode.NOT_FOUND) {
            console.log('partner not found');
        }
    });
}

const call: DwrtcCall = client.call('0123456789abcdef0123456789abcdef-0123456789abcdef',
                                    callOptions);
watch(call);
const pc: RTCPeerConnection | null = call.pc;
const channel: RTCDataChannel | null = call.dataChannel;
console.log(pc?.connectionState, channel?.label, call.incoming, call.polite, call.localStream,
            call.remoteStream);

client.addEventListener('incomingcall', (e) => {
    const incoming: DwrtcCall = e.detail.call;
    watch(incoming);
    if (client.calls.size > 1) {
        incoming.hangup('busy');
    } else if (incoming.state === 'ringing') {
        incoming.answer({ stream, receiveAudio: false });
    }
    console.log('call from', e.detail.from);
});

// listeners can be taken off again, typed the same way
const onId = (e: CustomEvent<{ id: string }>) => console.log(e.detail.id);
client.addEventListener('id', onId);
client.removeEventListener('id', onId);

// --- helpers and constants --------------------------------------------------

const url: string = signalUrl('./signal', 'https://example.com/app/');
const node: string | null = nodeIdOf(id);
const maybe: unknown = new URLSearchParams(location.search).get('call');
if (isSessionId(maybe)) {
    const partner: string = maybe;
    console.log(partner.length);
}
const wait: number = backoffDelay(3, { max: 10_000 }, () => 0.5);
const backoff: Backoff = { ...DEFAULT_BACKOFF, initial: 100 };
const signaling: 'SignalingMessage' = SIGNALING_TYPE;
console.log(url, node, wait, backoff, signaling);

// --- in Node.js: any WebSocket with the part the client uses (ws has it) ------

class LoopbackSocket implements WebSocketLike {
    constructor(readonly url: string) {}
    send(data: string): void {
        console.log(this.url, data);
    }
    close(code?: number): void {
        console.log('closed', code);
    }
    addEventListener(type: 'message' | 'close' | 'error', listener: (event: any) => void): void {
        console.log(type, listener);
    }
}
new DwrtcClient({ WebSocket: LoopbackSocket, base: 'http://localhost:8080/' }).close();
new DwrtcClient({ WebSocket, RTCPeerConnection }).close();

// --- what the types refuse ----------------------------------------------------

// @ts-expect-error: the recipient is missing
client.send('chat');
// @ts-expect-error: connect() takes URLs, not a number
void client.connect(4222);
// @ts-expect-error: an id event has no `error`
client.addEventListener('id', (e) => e.detail.error);
// @ts-expect-error: a call's detail has no `stream` in its state event
call.addEventListener('state', (e) => e.detail.stream);
// @ts-expect-error: ErrorCode is frozen
ErrorCode.NOT_FOUND = 'gone';
// @ts-expect-error: there is no such code
void ErrorCode.TIMEOUT;
// @ts-expect-error: the state is read-only
client.state = 'open';
// @ts-expect-error: not a client state
const wrong: ClientState = 'connected';
// @ts-expect-error: calls come from DwrtcClient.call() or 'incomingcall'
new DwrtcCall();
// @ts-expect-error: autoAnswer takes a boolean or call options
new DwrtcClient({ autoAnswer: 'yes' });
// @ts-expect-error: hangup's reason is a string
call.hangup(486);

console.log(wrong);

// --- ids that last ----------------------------------------------------------

async function lasting(): Promise<void> {
    const pair: CryptoKeyPair = await loadIdentity('work');
    const mine: string = await ownedIdOf(pair);
    const c = new DwrtcClient({ identity: pair });
    const again = new DwrtcClient({ identity: true });
    const named = new DwrtcClient({ identity: 'work' });
    c.addEventListener('id', (e) => {
        const owned: boolean = e.detail.owned;
        const given: string = e.detail.nodeSessionId;
        console.log(owned, given, isOwnedId(e.detail.id), e.detail.id === mine);
    });
    c.addEventListener('error', (e) => {
        if (errorCodeOf(e.detail.error) === ErrorCode.NOT_BACK_IN_TIME) {
            console.log('away too long:', e.detail.recipientSessionId);
        }
    });
    const ownedNow: string | null = c.ownedId;
    console.log(ownedNow, again.state, named.state, await generateIdentity());
    // @ts-expect-error an identity is a key pair, a name or a flag
    new DwrtcClient({ identity: 42 });
}
void lasting;

// --- rooms --------------------------------------------------------------------

async function lobby(): Promise<void> {
    const members: string[] = await client.join('lobby');
    client.addEventListener('room', (e) => {
        const kind: 'members' | 'join' | 'leave' = e.detail.event;
        const who: string | null = e.detail.id;
        console.log(e.detail.room, kind, who, e.detail.members.length);
    });
    const now: Set<string> | undefined = client.rooms.get('lobby');
    console.log(members, now?.size);
    client.leave('lobby');
    // @ts-expect-error a room is named by a string
    await client.join(7);
}
void lobby;

// --- end-to-end encryption --------------------------------------------------

async function private_(): Promise<void> {
    const sealed = new DwrtcClient({ identity: true, e2e: true, e2eKeyTimeout: 10_000 });
    const strict = new DwrtcClient({ identity: await generateIdentity(), e2e: 'require' });
    sealed.addEventListener('message', (e) => {
        const encrypted: boolean | undefined = e.detail.encrypted;
        if (encrypted) {
            console.log('only the two browsers read this:', e.detail.messageBody);
        }
    });
    sealed.addEventListener('error', (e) => {
        switch (errorCodeOf(e.detail.error)) {
            case ErrorCode.E2E_REFUSED: {
                const from: string | null | undefined = e.detail.senderSessionId;
                console.warn('refused from', from, e.detail.reason);
                break;
            }
            case ErrorCode.E2E_NO_KEY: {
                const lost: number | undefined = e.detail.count;
                console.warn(lost, 'not sent to', e.detail.recipientSessionId);
                break;
            }
        }
    });
    const partner = await sealed.connect('./signal');
    sealed.send('chat', partner, 'sealed');
    console.log(strict.state);
    const lenient = new DwrtcClient({ identity: true, e2e: 'prefer' });
    try {
        lenient.send('chat', partner, 'maybe in plaintext');
        sealed.send('chat', partner, 'never in plaintext');
    } catch (err) {
        const lost: 'e2e id lost' = ErrorCode.E2E_ID_LOST;
        if ((err as { code?: string }).code === lost) {
            console.warn('this page lost its id; nothing was sent');
        }
    }
    // @ts-expect-error e2e is true, false, 'require' or 'prefer'
    new DwrtcClient({ identity: true, e2e: 'yes' });
}
void private_;

// --- group calls (docs/web-developers.md, "Group calls") ---------------------

async function group_(grid: HTMLElement): Promise<void> {
    const app = new DwrtcClient({ identity: true, e2e: true });
    await app.connect('./signal');
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    const groupOptions: GroupOptions = { stream, limit: 4 };
    const group: DwrtcGroup = app.joinCall('standup-4f9a', groupOptions);
    const tiles = new Map<string, HTMLVideoElement>();
    group.addEventListener('memberstream', (e) => {
        const video = tiles.get(e.detail.id) ?? document.createElement('video');
        video.srcObject = e.detail.stream;
        tiles.set(e.detail.id, video);
        grid.append(video);
    });
    group.addEventListener('memberleave', (e) => {
        const why: string = e.detail.reason;
        tiles.get(e.detail.id)?.remove();
        tiles.delete(e.detail.id);
        console.log(e.detail.id, 'left:', why, e.detail.by);
    });
    group.addEventListener('left', (e) => console.log('out of the group:', e.detail.reason));
    try {
        await group.joined;
    } catch (err) {
        if ((err as { code?: string }).code === ErrorCode.GROUP_FULL) {
            grid.textContent = 'This call is full.';
        }
        return;
    }
    const state: GroupState = group.state;
    const limit: number = group.limit;
    const others: number = group.members.size;
    console.log(state, limit, others, app.groups.get('standup-4f9a') === group);
    const full: 'group full' = ErrorCode.GROUP_FULL;
    console.log(full);
    group.leave();
    // @ts-expect-error the limit is a number
    app.joinCall('standup-4f9a', { limit: 'six' });
}
void group_;
