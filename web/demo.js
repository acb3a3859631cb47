// SPDX-License-Identifier: MIT (see LICENSE beside this file)
//
// The DWRTC video-call demo: start a call and share its link, or join one by
// its link or id. Built on dwrtc.js; every URL is relative to the page, so it
// works wherever it is hosted (for example under /apps/call/ beside a site).
//
// Query parameters:
//   ?call=<id>      join this call as soon as the page is connected
//   ?room=<name>    enter this room as soon as the page is connected
//   ?group=<name>   join this group call (everyone sees everyone, up to 6)
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
    errorDetail: $('error-detail'),
    errorDetailText: $('error-detail-text'),
    errorActions: $('error-actions'),
    videos: $('videos'),
    videoPlaceholder: $('video-placeholder'),
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
    partnerText: $('partner-text'),
    partnerId: $('partner-id'),
    partnerNode: $('partner-node'),
    partnerNodeLine: $('partner-node-line'),
    chatLog: $('chat-log'),
    chatForm: $('chat-form'),
    chatInput: $('chat-input'),
    chatSend: $('chat-send'),
    mediaPath: $('media-path'),
    myIdNote: $('my-id-note'),
    roomForm: $('room-form'),
    roomName: $('room-name'),
    room: $('room'),
    roomTitle: $('room-title'),
    roomLeave: $('room-leave'),
    roomMembers: $('room-members'),
    roomEmpty: $('room-empty'),
    groupForm: $('group-form'),
    groupName: $('group-name'),
    group: $('group'),
    groupTitle: $('group-title'),
    groupLink: $('group-link'),
    groupCopyBtn: $('group-copy-btn'),
    groupCount: $('group-count'),
    groupGrid: $('group-grid'),
};

const params = new URLSearchParams(location.search);
const signalUrls = (params.get('signal') ?? './signal').split(/[\s,]+/).filter(Boolean);

// The page owns its id by a key the browser keeps (IndexedDB), so its call
// link stays the same across reloads, reconnects and server restarts. Where
// the browser offers no WebCrypto (a page served over plain http from a
// public address) the server gives a new id per visit instead. With its key
// the page also encrypts the call's signaling end to end to partners whose
// id is key-owned too (e2e): the servers pass on what they cannot read.
const lasting = Boolean(globalThis.crypto?.subtle && globalThis.indexedDB);
const client = new DwrtcClient(lasting ? { identity: 'demo', e2e: true } : {});
let localStream = null;     // camera and microphone, once allowed
let withoutCamera = false;  // the person chose to go on without them
let call = null;            // the current DwrtcCall
let connected = false;      // the current call has been connected
let chat = null;            // its data channel
let waiting = false;        // "Start a call" pressed: answer whoever joins
let joining = null;         // the id this page is joining (Join pressed)
let cancels = 0;            // counts Cancel presses: a late callback of a Start
                            // or Join sees whether it was cancelled
let cancelling = false;     // cancel() is hanging up: it says what happened

let room = null;            // the room this page is in, if any
let group = null;           // the group call this page is in (DwrtcGroup), if any

window.dwrtcDemo = {
    client,
    get room() { return room; },
    get group() { return group; },
    get call() { return call; },
    get pc() { return call?.pc ?? null; },
    get localStream() { return localStream; },
};

// ---------------------------------------------------------------------------
// Errors a person can act on

/**
 * Shows an error with buttons. kind names it for tests (data-kind); text is
 * for anyone; detail (optional) is the technical part, folded away under
 * "Details"; actions are [label, function] pairs; a Dismiss button is
 * always there.
 */
function showError(kind, text, actions = [], detail = '') {
    ui.error.dataset.kind = kind;
    ui.errorText.textContent = text;
    ui.errorDetailText.textContent = detail;
    ui.errorDetail.hidden = !detail;
    ui.errorDetail.open = false;
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

/** What an error from the node (an ErrorCode) means, for the person. */
function errorSentence(code) {
    switch (code) {
    case ErrorCode.NOT_FOUND:
        return lasting
            ? 'Your partner is not there: their page may be closed. Ask them to open it again.'
            : 'Your partner is not there: they may have closed or reloaded their page. Ask '
              + 'them to send their link again (it changes every time their page is opened).';
    case ErrorCode.NOT_BACK_IN_TIME:
        return 'Your partner left and did not come back in time. Ask them to open their page '
            + 'again, then call again.';
    case ErrorCode.ROOM_FULL:
        return 'That room is full. Try another room name.';
    case ErrorCode.TOO_MANY_ROOMS:
        return 'This page is in too many rooms at once. Leave one first.';
    case ErrorCode.TAKEN_OVER:
        return 'Your call link is now open in another tab or window, which gets the calls. '
            + 'Use that one, or reload this page to take it back.';
    case ErrorCode.UNREACHABLE:
        return 'Your partner\'s server could not be reached just now. Try again in a moment.';
    case ErrorCode.QUEUE_FULL:
        return 'Too many messages are waiting for your partner. Try again in a moment.';
    case ErrorCode.RATE_LIMITED:
        return 'This page sent messages too quickly, so the server is holding it back. Wait a '
            + 'moment and try again.';
    case ErrorCode.NODE_UNAVAILABLE:
        return 'The call server is restarting. This page reconnects by itself; try again in '
            + 'a moment.';
    case ErrorCode.INVALID_MESSAGE:
        return 'The call server refused a message from this page. Reload the page; if this '
            + 'goes on, tell the site\'s operator.';
    case ErrorCode.UNPARSABLE:
        return 'The call server sent something this page cannot read. Reload the page; if '
            + 'this goes on, tell the site\'s operator.';
    case ErrorCode.E2E_REFUSED:
        return 'A message for this call was changed on the way, or did not come from your '
            + 'partner, so this page ignored it. If the call does not work, call again.';
    case ErrorCode.E2E_NO_KEY:
        return 'Your partner\'s page did not answer the secure key exchange. Ask them to '
            + 'open their link again, then call again.';
    case ErrorCode.E2E_ID_LOST:
        return 'This page lost its call link (it is open in another tab or window, or the '
            + 'server refused it), so it cannot call securely and sent nothing. Reload this '
            + 'page to take the link back.';
    default:
        return 'Something went wrong at the call server. Reload the page; if this goes on, '
            + 'tell the site\'s operator.';
    }
}

// ---------------------------------------------------------------------------
// The node

const connLabels = {
    idle: 'Not connected',
    connecting: 'Connecting…',
    open: 'Connected',
    disconnected: 'Offline, retrying',
    closed: 'Disconnected',
};

/** The badge's tooltip: the details, for those who hover. */
function updateNodeTitle() {
    const id = ui.nodeId.textContent;
    ui.connState.title = `Call server ${ui.nodeUrl.textContent}`
        + (id && id !== '…' ? `, node ${id}` : '');
}

client.addEventListener('state', (e) => {
    const { state, url, attempt: failures, retryIn, reason } = e.detail;
    ui.connState.dataset.state = state;
    ui.connState.textContent = connLabels[state] ?? state;
    if (state === 'connecting') {
        ui.nodeUrl.textContent = url;
    } else if (state === 'disconnected') {
        ui.nodeId.textContent = '…';
        const next = client.url;
        const seconds = Math.max(1, Math.round(retryIn / 1000));
        const elsewhere = next !== url ? ` Next try: ${next}.` : '';
        if (failures === 0) {
            addSystemLine('Lost the connection to the call server; reconnecting…');
        } else {
            showError('node-unreachable',
                      `This page cannot reach its call server. It tries again in ${seconds} s. `
                      + 'Check your network connection. If this goes on, the server may be '
                      + 'down: ask the site\'s operator, or open this call page on another '
                      + 'DWRTC server.',
                      // the page shows the state events; a rejected
                      // connect() says nothing more
                      [['Try now', () => client.connect(client.urls).catch(() => {})]],
                      `Call server ${url}: ${reason}.${elsewhere}`);
        }
    } else if (state === 'open') {
        hideError('node-unreachable');
    }
    updateNodeTitle();
});

client.addEventListener('id', (e) => {
    const { id, previousId, nodeId, url, owned } = e.detail;
    ui.myId.textContent = id;
    ui.myIdNote.textContent = owned
        ? 'it stays the same when you reload this page'
        : 'it changes every time this page is opened';
    showRoom();
    ui.nodeId.textContent = nodeId;
    ui.nodeUrl.textContent = url;
    updateNodeTitle();
    updateShareLink();
    if (previousId) {
        addSystemLine(waiting && previousId !== id
            ? 'Reconnected. Your call link changed: send the new one.'
            : 'Reconnected.');
    }
});

// Errors about a partner are the call's business (see setCall); without a
// call they concern one that is over, and are no news. Every other error
// from the node is about this page, told in a sentence (errorSentence).
const partnerErrors = new Set([ErrorCode.NOT_FOUND, ErrorCode.UNREACHABLE,
                               ErrorCode.QUEUE_FULL, ErrorCode.NOT_BACK_IN_TIME,
                               ErrorCode.E2E_NO_KEY]);

client.addEventListener('error', (e) => {
    const { error } = e.detail;
    const code = errorCodeOf(error) ?? ErrorCode.UNKNOWN;
    if (partnerErrors.has(code)) {
        return;
    }
    if (code !== ErrorCode.RATE_LIMITED && code !== ErrorCode.NODE_UNAVAILABLE) {
        console.warn('dwrtc:', error);
    }
    showError(`server-${code.replace(/\W+/g, '-')}`, errorSentence(code), [],
              `The call server said: ${error}.`);
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
    updateControls();
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

/** [what to tell the person, the technical detail] for a camera error. */
function cameraMessage(err) {
    const without = ' Or continue without camera: you will still see and hear your partner.';
    const detail = `${err.name}: ${err.message}`;
    switch (err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
        return ['Camera and microphone access was denied. Allow them for this site (the camera '
            + 'icon in the address bar, or the browser\'s site settings), then press Try again.'
            + without, detail];
    case 'NotFoundError':
    case 'OverconstrainedError':
        return ['No camera or microphone was found. Connect one, then press Try again.'
            + without, detail];
    case 'NotReadableError':
    case 'AbortError':
        return ['The camera or microphone could not be started; another application may be '
            + 'using it. Close that application, then press Try again.' + without, detail];
    case 'InsecureContextError':
        return ['The browser allows the camera only on secure pages: open this page with '
            + 'https:// (or on localhost).' + without, detail];
    default:
        return ['The camera could not be started.' + without, detail];
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
            resetToggles();
            updateVideos();
            updateControls();
            hideError('camera');
            return stream;
        }).finally(() => {
            mediaRequest = null;
        });
    }
    mediaRequest.then(then, (err) => {
        const [text, detail] = cameraMessage(err);
        showError('camera', text, [
            ['Try again', () => withMedia(then)],
            ['Continue without camera', () => {
                withoutCamera = true;
                then(null);
            }],
        ], detail);
    });
}

/** Turns the camera and microphone off (their light too). */
function stopMedia() {
    for (const t of localStream?.getTracks() ?? []) {
        t.stop();
    }
    localStream = null;
    ui.localVideo.srcObject = null;
    updateVideos();
}

// ---------------------------------------------------------------------------
// What the video area shows: a video only once it has a stream, otherwise a
// line of text (no empty black box)

function updateVideos() {
    const local = Boolean(localStream?.getVideoTracks().length);
    const remote = Boolean(ui.remoteVideo.srcObject);
    ui.localVideo.hidden = !local;
    ui.remoteVideo.hidden = !remote;
    ui.videoPlaceholder.hidden = local || remote;
    ui.videos.dataset.media = remote ? 'remote' : (local ? 'local' : 'none');
    ui.videoPlaceholder.textContent = call || waiting || joining
        ? 'Your partner\'s video will show here.'
        : 'Your camera starts when you start or join a call.';
}

// ---------------------------------------------------------------------------
// How the media travels: read from the connection's selected ICE candidate
// pair once connected, never claimed before

let pathTimer = null;

/** 'direct', 'relayed' (a TURN server in the path) or null (not known yet). */
async function mediaPathOf(pc) {
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
            pair ??= stats.get(s.selectedCandidatePairId);
        }
    });
    if (!pair) {
        stats.forEach((s) => {
            if (s.type === 'candidate-pair'
                && (s.selected || (s.nominated && s.state === 'succeeded'))) {
                pair ??= s;
            }
        });
    }
    if (!pair) {
        return null;
    }
    const ends = [stats.get(pair.localCandidateId), stats.get(pair.remoteCandidateId)];
    if (ends.some((c) => !c?.candidateType)) {
        return null;
    }
    return ends.some((c) => c.candidateType === 'relay') ? 'relayed' : 'direct';
}

const pathLabels = {
    none: 'During a call, this line says how video, sound and chat travel between you.',
    direct: 'This call is direct: video, sound and chat go straight between the two browsers.',
    relayed: 'This call is relayed through a TURN server: the browsers could not reach each '
        + 'other directly, so video, sound and chat pass through it (still encrypted).',
};

function showPath(path) {
    ui.mediaPath.dataset.path = path;
    ui.mediaPath.textContent = pathLabels[path];
}

/** While c is connected, shows its path now and every few seconds. */
function watchPath(c) {
    clearTimeout(pathTimer);
    const check = async () => {
        if (c !== call || c.state !== 'connected' || !c.pc) {
            return;
        }
        let path = null;
        try {
            path = await mediaPathOf(c.pc);
        } catch {
            // closed meanwhile
        }
        if (c === call && c.state === 'connected') {
            if (path) {
                showPath(path);
            }
            pathTimer = setTimeout(check, path ? 5000 : 500);
        }
    };
    check();
}

// ---------------------------------------------------------------------------
// Calls

const callLabels = {
    idle: 'No call yet',
    waiting: 'Waiting for someone to join',
    joining: 'Connecting to the call server…',
    ringing: 'Someone is calling you',
    new: 'Calling…',
    connecting: 'Connecting…',
    connected: 'Connected',
    disconnected: 'Connection interrupted, reconnecting…',
    failed: 'Connection failed',
    ended: 'Call ended',
};

function showCallState(state, text = callLabels[state] ?? state) {
    ui.callState.dataset.state = state;
    ui.callState.textContent = text;
}

/**
 * The buttons under the video: there while the page waits for a partner or
 * is in a call, except while a call rings (it has Answer and Decline). The
 * red one cancels until a call has connected, then hangs up.
 */
function updateControls() {
    const ringing = call?.incoming && call.state === 'ringing';
    ui.controls.hidden = !(waiting || joining || call || group) || ringing;
    ui.hangupBtn.textContent = group ? 'Leave' : (connected ? 'Hang up' : 'Cancel');
    ui.hangupBtn.dataset.action = group ? 'leave' : (connected ? 'hangup' : 'cancel');
    for (const [kind, button] of [['audio', ui.micBtn], ['video', ui.cameraBtn]]) {
        button.disabled = !localStream?.getTracks().some((t) => t.kind === kind);
    }
}

function setCall(c) {
    call = c;
    connected = false;
    chat = null;
    ui.partnerId.textContent = c.partnerId;
    // an id a node gave names that node (its part before the dash); an id
    // of another kind (a key-owned one, say) names none
    const onNode = c.partnerId.includes('-');
    ui.partnerNode.textContent = onNode ? nodeIdOf(c.partnerId) : '';
    ui.partnerNodeLine.hidden = !onNode;
    ui.partnerText.textContent = c.incoming ? 'Call from someone' : 'Calling your partner';
    ui.partnerLine.hidden = false;
    document.body.dataset.call = 'active';
    showCallState(c.state);
    updateControls();
    updateVideos();
    c.addEventListener('state', (e) => {
        if (c !== call) {
            return;
        }
        const { state } = e.detail;
        showCallState(state, state === 'new' && c.incoming ? 'Answering…' : undefined);
        if (state === 'connected') {
            connected = true;
            ui.partnerText.textContent = 'In a call';
            hideError('call-failed');
            hideError('partner-unreachable');
            watchPath(c);
        } else if (state === 'failed') {
            showError('call-failed',
                      'The connection to your partner failed: a firewall or network may be '
                      + 'blocking it. Try again from another network. If it keeps failing, ask '
                      + 'the site\'s operator to add a relay (a TURN server).',
                      [['Hang up', () => c.hangup()]],
                      'ICE failed. A TURN server is configured with dwrtc_ice_servers.');
        }
        updateControls();
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
        if (c !== call) {
            return;
        }
        const { error, reason } = e.detail;
        const code = typeof error === 'string' ? errorCodeOf(error) : null;
        if (code === ErrorCode.NOT_FOUND || code === ErrorCode.NOT_BACK_IN_TIME) {
            const notThere = lasting
                ? 'No one is at that link: your partner\'s page is closed. Ask them to open '
                  + 'their link again, then call again.'
                : 'No one is waiting at that link: your partner may have closed their page. '
                  + 'Ask them to send their link again: it changes every time their page is '
                  + 'opened.';
            showError('not-found',
                      c.incoming || connected ? errorSentence(code) : notThere,
                      [], `Call id ${c.partnerId}: ${error}.`);
        } else if (code === ErrorCode.UNREACHABLE || code === ErrorCode.QUEUE_FULL) {
            showError('partner-unreachable', errorSentence(code), [],
                      `Call id ${c.partnerId}: ${error}.`);
        } else if (code === ErrorCode.E2E_NO_KEY) {
            showError('partner-no-key', errorSentence(code), [],
                      `Call id ${c.partnerId}: ${error}.`);
        } else if (error?.code === ErrorCode.E2E_ID_LOST) {
            showError('id-lost', errorSentence(error.code), [],
                      `Call id ${c.partnerId}: ${error.message}.`);
        } else if (!code) {
            console.warn('dwrtc call:', reason, error);
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
    updateControls();
}

function callEnded({ by, reason }) {
    const wasIncoming = call.incoming;
    const wasConnected = connected;
    call = null;
    connected = false;
    chat = null;
    clearTimeout(pathTimer);
    showPath('none');
    ui.incoming.hidden = true;
    ui.remoteVideo.srcObject = null;
    ui.unmuteBtn.hidden = true;
    ui.partnerLine.hidden = true;
    document.body.dataset.call = 'none';
    setChatEnabled(false);
    updateVideos();
    updateControls();
    let text = 'Call ended';
    if (by === 'remote') {
        text = { busy: 'Your partner is in another call',
                 declined: 'Your partner declined the call' }[reason]
            ?? (wasIncoming && !wasConnected ? 'The caller hung up' : 'Your partner hung up');
    } else if (by === 'error' && reason === ErrorCode.NOT_FOUND) {
        text = 'Partner not found';
    } else if (by === 'error' && reason === ErrorCode.NOT_BACK_IN_TIME) {
        text = 'Your partner did not come back in time';
    } else if (by === 'error' && reason === ErrorCode.E2E_NO_KEY) {
        text = 'Your partner\'s page did not answer the secure key exchange';
    }
    if (!cancelling) {
        addSystemLine(`${text}.`);
        showCallState('ended', waiting ? `${text}. Waiting for someone to join` : text);
    }
}

/**
 * Cancel: stops waiting for a partner and any call that has not connected
 * (the partner, if one was called or is calling, gets the hangup), turns the
 * camera off and goes back to the start.
 */
function cancel() {
    cancels++;
    const was = call ? 'You cancelled the call.' : 'You stopped waiting.';
    waiting = false;
    joining = null;
    cancelling = true;
    try {
        call?.hangup();
    } finally {
        cancelling = false;
    }
    ui.share.hidden = true;
    ui.startBtn.disabled = false;
    ui.incoming.hidden = true;
    stopMedia();
    updateControls();
    addSystemLine(was);
    showCallState('idle', 'No call');
}

/**
 * True if a Start or Join made when cancels was `mine` was cancelled
 * meanwhile; then the camera, if it started late, goes off again.
 */
function cancelled(mine) {
    if (mine === cancels) {
        return false;
    }
    if (!waiting && !joining && !call) {
        stopMedia();
        updateControls();
    }
    return true;
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
        showError('bad-id', 'That is not a call link. Ask your partner to copy their link '
                  + 'again (the Copy button on their page) and send it to you.', [],
                  'A call link ends with ?call= and an id like '
                  + '0a1b2c3d4e5f60718293a4b5c6d7e8f9-0a1b2c3d4e5f6071.');
        return;
    }
    if (id === client.id) {
        showError('bad-id', 'That is your own call link: send it to the person you want to '
                  + 'talk to, and they open it.');
        return;
    }
    if (call && !(call.partnerId === id && call.state === 'ringing')) {
        showError('busy', 'You are already in a call. Hang up first.');
        return;
    }
    // (if this person is ringing us right now, joining them answers)
    hideError();
    joining = id;
    const mine = cancels;
    updateControls();
    updateVideos();
    withMedia((stream) => {
        if (!cancelled(mine)) {
            whenOpen(() => {
                if (mine === cancels) {
                    startCall(id, stream);
                }
            });
        }
    });
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
        updateControls();
        return;     // in a call already (maybe with this partner: answered)
    }
    let c;
    try {
        // if the partner is ringing us meanwhile, this answers them
        c = client.call(partnerId, { stream, dataChannel: 'chat' });
    } catch (err) {
        showError('call', 'This page could not start the call. Reload the page and try again.',
                  [], err.message);
        updateControls();
        return;
    }
    if (c === call) {
        ui.incoming.hidden = true;
        updateControls();
        return;
    }
    setCall(c);
    addSystemLine('Calling your partner…');
}

function showRemote(stream) {
    const v = ui.remoteVideo;
    v.srcObject = stream;
    v.muted = false;
    updateVideos();
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
// Rooms: who is here, on any server, and a Call button for each

/** How a member is named to a person: no names here, so a short tag. */
function memberLabel(id) {
    return id === client.id ? 'You' : `Guest ${id.slice(-6)}`;
}

function showRoom() {
    ui.room.hidden = !room;
    ui.roomForm.hidden = Boolean(room);
    if (!room) {
        return;
    }
    ui.roomTitle.textContent = room;
    const members = [...(client.rooms.get(room) ?? [])]
        .sort((a, b) => (a === client.id ? -1 : b === client.id ? 1 : a.localeCompare(b)));
    const items = members.map((id) => {
        const li = document.createElement('li');
        li.dataset.member = id;
        const name = document.createElement('span');
        name.textContent = memberLabel(id);
        name.title = id;
        li.append(name);
        if (id !== client.id) {
            const b = document.createElement('button');
            b.type = 'button';
            b.textContent = 'Call';
            b.dataset.testid = 'call-member';
            b.addEventListener('click', () => join(id));
            li.append(b);
        }
        return li;
    });
    ui.roomMembers.replaceChildren(...items);
    ui.roomEmpty.hidden = members.some((id) => id !== client.id);
}

async function enterRoom(name) {
    const wanted = name.trim();
    if (!wanted || !/^[\x20-\x7e]{1,64}$/.test(wanted)) {
        showError('bad-room', 'A room name is up to 64 letters, digits or signs, without '
                  + 'accents.');
        return;
    }
    if (room) {
        client.leave(room);
    }
    room = wanted;
    showRoom();
    try {
        await client.join(wanted);
    } catch (err) {
        if (room === wanted) {
            room = null;
            showRoom();
        }
        const code = err.code ?? ErrorCode.UNKNOWN;
        if (code === ErrorCode.ROOM_FULL || code === ErrorCode.TOO_MANY_ROOMS) {
            showError('room', errorSentence(code), [], `The call server said: ${err.message}.`);
        }
    }
}

client.addEventListener('room', (e) => {
    if (e.detail.room !== room) {
        return;
    }
    showRoom();
    if (e.detail.event === 'join') {
        addSystemLine(`${memberLabel(e.detail.id)} entered the room.`);
    } else if (e.detail.event === 'leave') {
        addSystemLine(`${memberLabel(e.detail.id)} left the room.`);
    }
});

ui.roomForm.addEventListener('submit', (e) => {
    e.preventDefault();
    enterRoom(ui.roomName.value);
});

ui.roomLeave.addEventListener('click', () => {
    if (room) {
        client.leave(room);
        room = null;
        showRoom();
    }
});

// ---------------------------------------------------------------------------
// Group calls: everyone in the group sees and hears everyone else, in a grid
// of labelled videos (this page's own first)

/** The grid tile of a member (made on first use), or of this page (id null). */
function groupTile(id) {
    const sel = id === null ? 'figure[data-self]' : `figure[data-member="${CSS.escape(id)}"]`;
    let tile = ui.groupGrid.querySelector(sel);
    if (!tile) {
        tile = document.createElement('figure');
        const video = document.createElement('video');
        video.autoplay = true;
        video.playsInline = true;
        const caption = document.createElement('figcaption');
        if (id === null) {
            tile.dataset.self = '';
            video.muted = true;
            caption.textContent = 'You';
        } else {
            tile.dataset.member = id;
            caption.textContent = memberLabel(id);
            caption.title = id;
            // a page opened by a link may not play sound before a click:
            // then the video plays muted until the person clicks it
            tile.addEventListener('click', () => {
                video.muted = false;
                caption.textContent = memberLabel(id);
            });
        }
        tile.append(video, caption);
        ui.groupGrid.append(tile);
    }
    return tile;
}

function playInTile(id, stream) {
    const tile = groupTile(id);
    const video = tile.querySelector('video');
    video.srcObject = stream;
    video.play().catch(() => {
        video.muted = true;
        tile.querySelector('figcaption').textContent = `${memberLabel(id)} (muted: click to hear)`;
        video.play().catch(() => {});
    });
}

function showGroup() {
    ui.group.hidden = !group;
    ui.groupForm.hidden = Boolean(group);
    ui.groupGrid.hidden = !group;
    ui.videos.hidden = Boolean(group);
    document.body.dataset.call = group ? 'group' : (call ? 'active' : 'none');
    if (!group) {
        ui.groupGrid.replaceChildren();
        updateControls();
        return;
    }
    ui.groupTitle.textContent = group.room;
    const u = new URL(location.href);
    u.hash = '';
    for (const key of [...u.searchParams.keys()]) {
        if (key !== 'signal') {
            u.searchParams.delete(key);
        }
    }
    u.searchParams.set('group', group.room);
    ui.groupLink.value = u.href;
    const others = group.members.size;
    ui.groupCount.textContent = others === 0
        ? 'No one else is here yet: send them the link.'
        : `${others + 1} people in this call (at most ${group.limit}).`;
    updateControls();
}

function enterGroup(name) {
    const wanted = name.trim();
    if (!wanted || !/^[\x20-\x7e]{1,64}$/.test(wanted)) {
        showError('bad-group', 'A group call name is up to 64 letters, digits or signs, '
                  + 'without accents.');
        return;
    }
    if (group || call) {
        showError('busy', 'Leave the call this page is in first.');
        return;
    }
    withMedia((stream) => {
        if (group || call) {
            return;
        }
        let g;
        try {
            g = client.joinCall(wanted, { stream: stream ?? undefined });
        } catch (err) {
            showError('group', 'This page could not join that group call.', [], err.message);
            return;
        }
        group = g;
        hideError('group-full');
        if (stream?.getVideoTracks().length) {
            playInTile(null, stream);
        }
        g.addEventListener('memberjoin', (e) => {
            groupTile(e.detail.id);
            showGroup();
        });
        g.addEventListener('memberstream', (e) => playInTile(e.detail.id, e.detail.stream));
        g.addEventListener('memberleave', (e) => {
            ui.groupGrid.querySelector(`figure[data-member="${CSS.escape(e.detail.id)}"]`)
                ?.remove();
            addSystemLine(`${memberLabel(e.detail.id)} left the group call.`);
            showGroup();
        });
        g.addEventListener('left', (e) => {
            if (group !== g) {
                return;
            }
            group = null;
            stopMedia();
            showGroup();
            if (e.detail.reason === ErrorCode.GROUP_FULL) {
                showError('group-full', `This group call is full: ${g.limit} people are in it `
                          + 'already, the most it allows. Try again when someone leaves.');
            } else {
                addSystemLine('You left the group call.');
            }
        });
        g.joined.catch((err) => {
            if (err.code === ErrorCode.ROOM_FULL || err.code === ErrorCode.TOO_MANY_ROOMS) {
                showError('group', errorSentence(err.code), [],
                          `The call server said: ${err.message}.`);
            }
        });
        showGroup();
    });
}

ui.groupForm.addEventListener('submit', (e) => {
    e.preventDefault();
    enterGroup(ui.groupName.value);
});

ui.groupCopyBtn.addEventListener('click', async () => {
    try {
        await navigator.clipboard.writeText(ui.groupLink.value);
        ui.groupCopyBtn.textContent = 'Copied';
        setTimeout(() => { ui.groupCopyBtn.textContent = 'Copy'; }, 2000);
    } catch {
        ui.groupLink.select();
    }
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
    const mine = cancels;
    withMedia(() => {
        if (cancelled(mine)) {
            return;     // while the camera was starting
        }
        waiting = true;
        ui.share.hidden = false;
        ui.startBtn.disabled = true;
        updateShareLink();
        if (!call) {
            showCallState('waiting');
        }
        updateControls();
        updateVideos();
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

// Cancel before a call has connected, Hang up after (waiting, if the page
// waits, goes on: Cancel then stops it)
ui.hangupBtn.addEventListener('click', () => {
    if (group) {
        group.leave();
    } else if (connected) {
        call.hangup();
    } else {
        cancel();
    }
});

ui.unmuteBtn.addEventListener('click', () => {
    ui.remoteVideo.muted = false;
    ui.remoteVideo.play().catch(() => {});
    ui.unmuteBtn.hidden = true;
});

function resetToggles() {
    ui.micBtn.setAttribute('aria-pressed', 'false');
    ui.micBtn.textContent = 'Mute mic';
    ui.cameraBtn.setAttribute('aria-pressed', 'false');
    ui.cameraBtn.textContent = 'Camera off';
}

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
    // When no server answers, connect() rejects and the client keeps
    // trying: the page follows its state events (the error above, then
    // "open"), so the rejection itself needs no handling here.
    client.connect(signalUrls).catch(() => {});
} catch (err) {
    showError('config', 'The address of this page names a call server that is not valid (the '
              + '?signal= part). Fix it, or leave it out.', [],
              `${signalUrls.join(' ')}: ${err.message}`);
}

updateVideos();
updateControls();

const wanted = params.get('call');
if (wanted) {
    ui.joinId.value = wanted;
    join(wanted);
}

const groupWanted = params.get('group');
if (groupWanted) {
    ui.groupName.value = groupWanted;
    enterGroup(groupWanted);
}

const roomWanted = params.get('room');
if (roomWanted) {
    ui.roomName.value = roomWanted;
    enterRoom(roomWanted);
}
