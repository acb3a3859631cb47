// The DWRTC video-call demo: start a call and share its link, or join one by
// its link or id. Built on dwrtc.js; every URL is relative to the page, so it
// works wherever it is hosted (for example under /apps/call/ beside a site).
//
// Query parameters:
//   ?call=<id>      join this call as soon as the page is connected
//   ?signal=<url>   the node's signal location (default ./signal, relative to
//                   the page); may be a list separated by spaces or commas,
//                   tried in turn
//
// For tests, window.dwrtcDemo holds the client, the current call and its
// RTCPeerConnection.

import { DwrtcClient, ErrorCode, errorCodeOf, isSessionId, nodeIdOf } from './dwrtc.js';

const $ = (id) => document.getElementById(id);

const ui = {
    connState: $('conn-state'),
    nodeId: $('node-id'),
    nodeUrl: $('node-url'),
    error: $('error'),
    errorText: $('error-text'),
    errorActions: $('error-actions'),
    remoteVideo: $('remote-video'),
    localVideo: $('local-video'),
    callState: $('call-state'),
    unmuteBtn: $('unmute-btn'),
    controls: $('controls'),
    micBtn: $('mic-btn'),
    cameraBtn: $('camera-btn'),
    hangupBtn: $('hangup-btn'),
    incoming: $('incoming'),
    incomingFrom: $('incoming-from'),
    answerBtn: $('answer-btn'),
    declineBtn: $('decline-btn'),
    startBtn: $('start-btn'),
    share: $('share'),
    shareLink: $('share-link'),
    copyBtn: $('copy-btn'),
    myId: $('my-id'),
    waitingLine: $('waiting'),
    joinForm: $('join-form'),
    joinId: $('join-id'),
    partnerLine: $('partner-line'),
    partnerId: $('partner-id'),
    partnerNode: $('partner-node'),
    chatLog: $('chat-log'),
    chatForm: $('chat-form'),
    chatInput: $('chat-input'),
    chatSend: $('chat-send'),
};

const params = new URLSearchParams(location.search);
const signalUrls = (params.get('signal') ?? './signal').split(/[\s,]+/).filter(Boolean);

const client = new DwrtcClient();
let localStream = null;     // camera and microphone, once allowed
let withoutCamera = false;  // the person chose to go on without them
let call = null;            // the current DwrtcCall
let chat = null;            // its data channel
let waiting = false;        // "Start a call" pressed: answer whoever joins
let joining = null;         // the id this page is joining (Join pressed)

window.dwrtcDemo = {
    client,
    get call() { return call; },
    get pc() { return call?.pc ?? null; },
    get localStream() { return localStream; },
};

// ---------------------------------------------------------------------------
// Errors a person can act on

/**
 * Shows an error with buttons. kind names it for tests (data-kind);
 * actions are [label, function] pairs; a Dismiss button is always there.
 */
function showError(kind, text, actions = []) {
    ui.error.dataset.kind = kind;
    ui.errorText.textContent = text;
    const buttons = [...actions, ['Dismiss', () => {}]].map(([label, run]) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = label;
        b.addEventListener('click', () => {
            hideError();
            run();
        });
        return b;
    });
    ui.errorActions.replaceChildren(...buttons);
    ui.error.hidden = false;
}

function hideError(kind) {
    if (!kind || ui.error.dataset.kind === kind) {
        ui.error.hidden = true;
        delete ui.error.dataset.kind;
    }
}

// ---------------------------------------------------------------------------
// The node

const connLabels = {
    idle: 'not connected',
    connecting: 'connecting',
    open: 'connected',
    disconnected: 'disconnected',
    closed: 'closed',
};

client.addEventListener('state', (e) => {
    const { state, url, attempt, retryIn, reason } = e.detail;
    ui.connState.dataset.state = state;
    ui.connState.textContent = connLabels[state] ?? state;
    if (state === 'connecting') {
        ui.nodeUrl.textContent = url;
    } else if (state === 'disconnected') {
        ui.nodeId.textContent = '…';
        const next = client.url;
        const seconds = Math.max(1, Math.round(retryIn / 1000));
        const elsewhere = next !== url ? ` Next try: ${next}.` : '';
        if (attempt === 0) {
            addSystemLine('Lost the connection to the node; reconnecting…');
        } else {
            showError('node-unreachable',
                      `Cannot reach the signaling node at ${url} (${reason}). Trying again in `
                      + `${seconds} s.${elsewhere} Check your network connection. If this goes `
                      + 'on, the node may be down: ask the site\'s operator, or open this page '
                      + 'on another DWRTC server.',
                      [['Try now', () => client.connect(client.urls)]]);
        }
    } else if (state === 'open') {
        hideError('node-unreachable');
    }
});

client.addEventListener('id', (e) => {
    const { id, previousId, nodeId, url } = e.detail;
    ui.myId.textContent = id;
    ui.nodeId.textContent = nodeId;
    ui.nodeUrl.textContent = url;
    updateShareLink();
    if (previousId) {
        addSystemLine(waiting
            ? 'Reconnected. Your call link changed: send the new one.'
            : 'Reconnected to the node.');
    }
});

client.addEventListener('error', (e) => {
    const { error } = e.detail;
    const code = errorCodeOf(error);
    if (code === ErrorCode.RATE_LIMITED) {
        showError('rate-limited', 'The node is limiting how fast this page sends messages. '
                  + 'Wait a moment and try again.');
    } else if (code === ErrorCode.INVALID_MESSAGE) {
        console.warn('dwrtc:', error);
    }
    // 'not found' is the call's business (see wireCall)
});

client.addEventListener('incomingcall', (e) => {
    const c = e.detail.call;
    if (call) {
        c.hangup('busy');
        return;
    }
    setCall(c);
    if (waiting || c.partnerId === joining) {
        // waiting for anyone, or calling this very person at the same time
        withMedia((stream) => answer(c, stream));
    } else {
        ui.incomingFrom.textContent = c.partnerId;
        ui.incoming.hidden = false;
        ui.answerBtn.focus();
    }
});

// ---------------------------------------------------------------------------
// Camera and microphone

async function getMedia() {
    if (!navigator.mediaDevices?.getUserMedia) {
        const err = new Error('no camera API on this page');
        err.name = 'InsecureContextError';
        throw err;
    }
    try {
        return await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    } catch (err) {
        if (err.name !== 'NotFoundError' && err.name !== 'OverconstrainedError') {
            throw err;
        }
        // one of the two is missing: take what there is
        for (const only of [{ video: true }, { audio: true }]) {
            try {
                return await navigator.mediaDevices.getUserMedia(only);
            } catch {
                // try the other
            }
        }
        throw err;
    }
}

function cameraMessage(err) {
    const without = ' Or continue without camera: you will still see and hear your partner.';
    switch (err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
        return 'Camera and microphone access was denied. Allow them for this site (the camera '
            + 'icon in the address bar, or the browser\'s site settings), then press Try again.'
            + without;
    case 'NotFoundError':
    case 'OverconstrainedError':
        return 'No camera or microphone was found. Connect one, then press Try again.' + without;
    case 'NotReadableError':
    case 'AbortError':
        return 'The camera or microphone could not be started; another application may be '
            + 'using it. Close that application, then press Try again.' + without;
    case 'InsecureContextError':
        return 'The browser allows the camera only on secure pages: open this page with '
            + 'https:// (or on localhost).' + without;
    default:
        return `The camera could not be started (${err.name}: ${err.message}).` + without;
    }
}

let mediaRequest = null;    // the getUserMedia in progress, shared

/** Runs then(stream) once there is local media or the person chose none. */
function withMedia(then) {
    if (localStream || withoutCamera) {
        then(localStream);
        return;
    }
    if (!mediaRequest) {
        mediaRequest = getMedia().then((stream) => {
            localStream = stream;
            ui.localVideo.srcObject = stream;
            hideError('camera');
            return stream;
        }).finally(() => {
            mediaRequest = null;
        });
    }
    mediaRequest.then(then, (err) => {
        showError('camera', cameraMessage(err), [
            ['Try again', () => withMedia(then)],
            ['Continue without camera', () => {
                withoutCamera = true;
                then(null);
            }],
        ]);
    });
}

// ---------------------------------------------------------------------------
// Calls

const callLabels = {
    idle: 'No call yet',
    waiting: 'Waiting for someone to join',
    joining: 'Connecting to the node…',
    ringing: 'Incoming call',
    new: 'Calling…',
    connecting: 'Connecting…',
    connected: 'Connected',
    disconnected: 'Connection interrupted, recovering…',
    failed: 'Connection failed',
    ended: 'Call ended',
};

function showCallState(state, text = callLabels[state] ?? state) {
    ui.callState.dataset.state = state;
    ui.callState.textContent = text;
}

function setCall(c) {
    call = c;
    chat = null;
    ui.partnerId.textContent = c.partnerId;
    ui.partnerNode.textContent = nodeIdOf(c.partnerId);
    ui.partnerLine.hidden = false;
    ui.controls.hidden = false;
    document.body.dataset.call = 'active';
    showCallState(c.state);
    c.addEventListener('state', (e) => {
        if (c !== call) {
            return;
        }
        showCallState(e.detail.state,
                      e.detail.state === 'new' && c.incoming ? 'Answering…' : undefined);
        if (e.detail.state === 'connected') {
            hideError('call-failed');
        } else if (e.detail.state === 'failed') {
            showError('call-failed',
                      'The connection to your partner failed: a firewall or network may block '
                      + 'direct connections between you. Try again from another network; the '
                      + 'site\'s operator can also add a TURN relay (dwrtc_ice_servers).',
                      [['Hang up', () => c.hangup()]]);
        }
    });
    c.addEventListener('remotestream', (e) => {
        if (c === call) {
            showRemote(e.detail.stream);
        }
    });
    c.addEventListener('datachannel', (e) => {
        if (c === call) {
            wireChat(e.detail.channel);
        }
    });
    c.addEventListener('error', (e) => {
        if (e.detail.error === ErrorCode.NOT_FOUND) {
            showError('not-found',
                      `No one with the call id ${c.partnerId} is connected. Check the id, or ask `
                      + 'your partner to send their link again: it changes every time their '
                      + 'page is opened.');
        } else {
            console.warn('dwrtc call:', e.detail.reason, e.detail.error);
        }
    });
    c.addEventListener('hangup', (e) => {
        if (c === call) {
            callEnded(e.detail);
        }
    });
}

function answer(c, stream) {
    if (c !== call || c.state !== 'ringing') {
        return;
    }
    ui.incoming.hidden = true;
    c.answer({ stream });
}

function callEnded({ by, reason }) {
    const partner = call.partnerId;
    call = null;
    chat = null;
    ui.incoming.hidden = true;
    ui.remoteVideo.srcObject = null;
    ui.unmuteBtn.hidden = true;
    ui.controls.hidden = true;
    ui.partnerLine.hidden = true;
    document.body.dataset.call = 'none';
    setChatEnabled(false);
    let text = 'Call ended';
    if (by === 'remote') {
        text = { busy: 'Your partner is in another call',
                 declined: 'Your partner declined the call' }[reason] ?? 'Your partner hung up';
    } else if (by === 'error' && reason === ErrorCode.NOT_FOUND) {
        text = 'Partner not found';
    }
    addSystemLine(`${text} (${partner.slice(0, 8)}…).`);
    showCallState('ended', waiting ? `${text}. Waiting for someone to join` : text);
}

function parseCallId(text) {
    const t = text.trim();
    if (isSessionId(t)) {
        return t.toLowerCase();
    }
    try {
        const id = new URL(t, location.href).searchParams.get('call');
        if (isSessionId(id)) {
            return id.toLowerCase();
        }
    } catch {
        // not a URL either
    }
    return null;
}

function join(text) {
    const id = parseCallId(text);
    if (!id) {
        showError('bad-id', 'That is not a call link or id. A call id looks like '
                  + '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d: ask your partner to copy their '
                  + 'link again.');
        return;
    }
    if (id === client.id) {
        showError('bad-id', 'That is your own call id: send it to the person you want to '
                  + 'talk to, and they join with it.');
        return;
    }
    if (call && !(call.partnerId === id && call.state === 'ringing')) {
        showError('busy', 'You are already in a call. Hang up first.');
        return;
    }
    // (if this person is ringing us right now, joining them answers)
    hideError();
    joining = id;
    withMedia((stream) => whenOpen(() => startCall(id, stream)));
}

function whenOpen(run) {
    if (client.state === 'open') {
        run();
        return;
    }
    showCallState('joining');
    client.addEventListener('id', () => run(), { once: true });
}

function startCall(partnerId, stream) {
    joining = null;
    if (call && (call.partnerId !== partnerId || call.state !== 'ringing')) {
        return;     // in a call already (maybe with this partner: answered)
    }
    let c;
    try {
        // if the partner is ringing us meanwhile, this answers them
        c = client.call(partnerId, { stream, dataChannel: 'chat' });
    } catch (err) {
        showError('call', `Could not start the call: ${err.message}`);
        return;
    }
    if (c === call) {
        ui.incoming.hidden = true;
        return;
    }
    setCall(c);
    addSystemLine(`Calling ${partnerId.slice(0, 8)}… on node ${nodeIdOf(partnerId)}.`);
}

function showRemote(stream) {
    const v = ui.remoteVideo;
    v.srcObject = stream;
    v.muted = false;
    v.play().catch(() => {
        // autoplay with sound needs a click on this page first: play muted
        v.muted = true;
        v.play().catch(() => {});
        ui.unmuteBtn.hidden = false;
    });
}

// ---------------------------------------------------------------------------
// Chat over the data channel

function addChatLine(cls, who, text) {
    const li = document.createElement('li');
    li.className = cls;
    if (who) {
        li.title = who;
    }
    li.textContent = text;
    ui.chatLog.append(li);
    ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

function addSystemLine(text) {
    addChatLine('system', '', text);
}

function setChatEnabled(on) {
    ui.chatInput.disabled = !on;
    ui.chatSend.disabled = !on;
}

function wireChat(channel) {
    chat = channel;
    const opened = () => {
        if (chat === channel) {
            setChatEnabled(true);
            addSystemLine('Chat connected.');
        }
    };
    if (channel.readyState === 'open') {
        opened();
    } else {
        channel.addEventListener('open', opened);
    }
    channel.addEventListener('message', (e) => {
        if (typeof e.data === 'string') {
            addChatLine('partner', 'partner', e.data);
        }
    });
    channel.addEventListener('close', () => {
        if (chat === channel) {
            setChatEnabled(false);
        }
    });
}

ui.chatForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = ui.chatInput.value.trim();
    if (!text || chat?.readyState !== 'open') {
        return;
    }
    chat.send(text);
    addChatLine('me', 'me', text);
    ui.chatInput.value = '';
    ui.chatInput.focus();
});

// ---------------------------------------------------------------------------
// Buttons

function updateShareLink() {
    if (!client.id) {
        return;
    }
    const u = new URL(location.href);
    u.hash = '';
    for (const key of [...u.searchParams.keys()]) {
        if (key !== 'signal') {
            u.searchParams.delete(key);
        }
    }
    u.searchParams.set('call', client.id);
    ui.shareLink.value = u.href;
}

ui.startBtn.addEventListener('click', () => {
    withMedia(() => {
        waiting = true;
        ui.share.hidden = false;
        ui.startBtn.disabled = true;
        updateShareLink();
        if (!call) {
            showCallState('waiting');
        }
        ui.shareLink.select();
    });
});

ui.copyBtn.addEventListener('click', async () => {
    try {
        await navigator.clipboard.writeText(ui.shareLink.value);
        ui.copyBtn.textContent = 'Copied';
        setTimeout(() => { ui.copyBtn.textContent = 'Copy'; }, 2000);
    } catch {
        ui.shareLink.select();      // no clipboard access: the person copies
    }
});

ui.joinForm.addEventListener('submit', (e) => {
    e.preventDefault();
    join(ui.joinId.value);
});

ui.answerBtn.addEventListener('click', () => {
    const c = call;
    withMedia((stream) => answer(c, stream));
});

ui.declineBtn.addEventListener('click', () => {
    ui.incoming.hidden = true;
    call?.hangup('declined');
});

ui.hangupBtn.addEventListener('click', () => call?.hangup());

ui.unmuteBtn.addEventListener('click', () => {
    ui.remoteVideo.muted = false;
    ui.remoteVideo.play().catch(() => {});
    ui.unmuteBtn.hidden = true;
});

function toggleTracks(kind, button, onLabel, offLabel) {
    const tracks = localStream?.getTracks().filter((t) => t.kind === kind) ?? [];
    if (!tracks.length) {
        return;
    }
    const off = tracks[0].enabled;
    for (const t of tracks) {
        t.enabled = !off;
    }
    button.setAttribute('aria-pressed', String(off));
    button.textContent = off ? offLabel : onLabel;
}

ui.micBtn.addEventListener('click',
    () => toggleTracks('audio', ui.micBtn, 'Mute mic', 'Unmute mic'));
ui.cameraBtn.addEventListener('click',
    () => toggleTracks('video', ui.cameraBtn, 'Camera off', 'Camera on'));

// leaving the page hangs up, so the partner knows at once
addEventListener('pagehide', () => call?.hangup('left'));

// ---------------------------------------------------------------------------
// Start

try {
    client.connect(signalUrls);
} catch (err) {
    showError('config', `The signal URL ${signalUrls.join(' ')} is not valid (${err.message}). `
              + 'Fix the ?signal= part of the address, or leave it out.');
}

const wanted = params.get('call');
if (wanted) {
    ui.joinId.value = wanted;
    join(wanted);
}
