// Rooms through three real nginx nodes: dwrtc.js clients (in Node.js, on
// `ws`) join a room, get its member list, and hear each other join and
// leave across nodes, also when a member's session closes or its node
// stops; the limits are directives and answer with errors, and members of
// other nodes never count against a join.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';

import { NginxNode, startNetwork } from '../lib/nginx.mjs';
import { openSession, terminateSessions, until } from '../lib/client.mjs';
import { DwrtcClient, ErrorCode, generateIdentity } from '../../web/dwrtc.js';

const WAIT = 30_000;

function roomClient(identity) {
    const client = new DwrtcClient({ WebSocket, identity, backoff: { initial: 100 } });
    client.news = [];
    client.addEventListener('room', (e) => client.news.push(e.detail));
    return client;
}

const heard = (c, room, event, id) => c.news.some((n) => n.room === room && n.event === event
                                                       && n.id === id);

describe('rooms on three nginx nodes', () => {
    let net;
    let n1, n2, n3;
    const clients = [];

    before(async () => {
        net = await startNetwork(3, {
            name: 'rooms',
            http: 'dwrtc_room_members 3;\ndwrtc_rooms_per_session 2;',
            server: 'location = /status { dwrtc_status; }',
            // node 3 is stopped under its members
            nodes: [{}, {}, { shutdownTimeout: '1s' }],
        });
        [n1, n2, n3] = net.nodes;
    });

    after(async () => {
        for (const c of clients) {
            c.close();
        }
        terminateSessions();
        await net?.stop();
    });

    it('lists the members on join and tells each member of joins and leaves, on any node',
       async () => {
        const [a, b, c] = [roomClient(await generateIdentity()), roomClient(), roomClient()];
        clients.push(a, b, c);
        const aId = await a.connect(n1.wsUrl());
        const bId = await b.connect(n2.wsUrl());
        const cId = await c.connect(n3.wsUrl());

        assert.deepEqual(await a.join('lobby'), [aId]);
        const joinedAt = Date.now();
        assert.deepEqual(new Set(await b.join('lobby')), new Set([aId, bId]));
        await until(() => heard(a, 'lobby', 'join', bId), 'a to hear b join');
        console.log(`# a heard b (another node) join after ${Date.now() - joinedAt} ms`);
        // b joined a moment ago on another node: the DHT may not have
        // carried its value to c's node yet, and then c hears b join right
        // after the list, from the room it follows.
        const listed = new Set(await c.join('lobby'));
        assert.ok(listed.has(aId) && listed.has(cId), `c's list ${[...listed]}`);
        await until(() => c.rooms.get('lobby')?.size === 3, 'c to know all three');
        assert.deepEqual(c.rooms.get('lobby'), new Set([aId, bId, cId]));
        await until(() => heard(a, 'lobby', 'join', cId) && heard(b, 'lobby', 'join', cId),
                    'a and b to hear c join');
        assert.deepEqual(a.rooms.get('lobby'), new Set([aId, bId, cId]));

        b.leave('lobby');
        await until(() => heard(a, 'lobby', 'leave', bId) && heard(c, 'lobby', 'leave', bId),
                    'a and c to hear b leave');

        // a session that closes leaves its rooms
        c.close();
        await until(() => heard(a, 'lobby', 'leave', cId), 'a to hear c go');
        assert.deepEqual(a.rooms.get('lobby'), new Set([aId]));
        a.close();
        b.close();
    });

    it('tells the members when a member\'s node stops', async () => {
        const [a, z] = [roomClient(), roomClient()];
        clients.push(a, z);
        await a.connect(n2.wsUrl());
        const zId = await z.connect(n3.wsUrl());
        await a.join('stopping');
        await z.join('stopping');
        await until(() => heard(a, 'stopping', 'join', zId), 'a to hear z join');
        z.close();
        const z2 = roomClient();
        clients.push(z2);
        const z2Id = await z2.connect(n3.wsUrl());
        await z2.join('stopping');
        await until(() => heard(a, 'stopping', 'join', z2Id), 'a to hear z2 join');
        const stoppedAt = Date.now();
        await n3.stop();
        await until(() => heard(a, 'stopping', 'leave', z2Id), 'a to hear z2 leave');
        console.log(`# a heard the member of a stopped node leave ${Date.now() - stoppedAt} ms `
                    + 'after the stop began');
        a.close();
    });

    it('refuses a join beyond the limits with the node\'s error', async () => {
        const a = roomClient();
        clients.push(a);
        await a.connect(n1.wsUrl());
        await a.join('r1');
        await a.join('r2');
        await assert.rejects(a.join('r3'), (err) => err.code === ErrorCode.TOO_MANY_ROOMS);
        assert.deepEqual([...a.rooms.keys()].sort(), ['r1', 'r2']);

        // dwrtc_room_members 3 counts the members of one node: n2 takes
        // three besides a (on n1), and refuses a fourth
        const others = [roomClient(), roomClient(), roomClient()];
        clients.push(...others);
        for (const o of others) {
            await o.connect(n2.wsUrl());
            await o.join('r1');
        }
        const late = roomClient();
        clients.push(late);
        await late.connect(n2.wsUrl());
        await assert.rejects(late.join('r1'), (err) => err.code === ErrorCode.ROOM_FULL);
        // and the status page counts the refusal where it was made
        const roomFull = async (node) => {
            const st = await (await fetch(node.httpUrl('/status'))).json();
            return st.workers.reduce((n, w) => n + w.bounds.room_full, 0);
        };
        // (a worker writes its figures to the status page every second)
        await until(async () => await roomFull(n2) === 1,
                    'bounds.room_full on the node that refused');
        assert.equal(await roomFull(n1), 0, 'and not on another');
        // n1 knows four members, one of them its own: it takes another
        const second = roomClient();
        clients.push(second);
        await second.connect(n1.wsUrl());
        await until(() => a.rooms.get('r1')?.size === 4, 'a to hear the three on n2');
        assert.equal((await second.join('r1')).length, 5);
        a.close();
        late.close();
        second.close();
        for (const o of others) {
            o.close();
        }
    });

    it('lets an original client join by the wire protocol, and refuses a bad name', async () => {
        const s = await openSession(n1.wsUrl());
        s.send({ type: 'WebSocketJoinMessage', room: 'wire' });
        const list = await s.waitFor((m) => m.type === 'WebSocketRoomMessage');
        assert.deepEqual(list, { type: 'WebSocketRoomMessage', room: 'wire', event: 'members',
                                 members: [s.id] });
        s.send({ type: 'WebSocketJoinMessage', room: 'x'.repeat(65) });
        const bad = await s.waitError(/^invalid message: /);
        assert.equal(bad.error, 'invalid message: "room" must be 1 to 64 bytes');
        await s.close();
    });

    it('logs nothing at [alert], [crit] or [emerg]', () => {
        n1.assertNoAlerts();
        n2.assertNoAlerts();
    });
});

describe('bounds on what other nodes make a node follow of a room', () => {
    const check = (http) => new NginxNode({ name: 'roombounds', httpPort: 1, dhtPorts: [1, 1],
                                            linkPorts: [2, 2], http }).configTest();
    for (const [http, expect] of [
        ['dwrtc_room_remote_members 0;', /"dwrtc_room_remote_members" must be from 1 to 100000/],
        ['dwrtc_room_members_per_node 0;',
         /"dwrtc_room_members_per_node" must be from 1 to "dwrtc_room_remote_members" \(64\)/],
        ['dwrtc_room_remote_members 10;\ndwrtc_room_members_per_node 11;',
         /"dwrtc_room_members_per_node" must be from 1 to "dwrtc_room_remote_members" \(10\)/],
        ['dwrtc_room_node_checks 15;', /"dwrtc_room_node_checks" must be from 16 to 1000000/],
        ['dwrtc_room_node_checks many;', /invalid number/],
    ]) {
        it(`refuses "${http.replace('\n', ' ')}" at nginx -t`, () => {
            const t = check(http);
            assert.ok(!t.ok, 'nginx -t should fail');
            assert.match(t.output, expect);
        });
    }

    it('takes values in range', () => {
        const t = check('dwrtc_room_remote_members 200;\ndwrtc_room_members_per_node 4;\n'
                        + 'dwrtc_room_node_checks 16;');
        assert.ok(t.ok, t.output);
    });
});
