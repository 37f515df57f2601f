// The replica reports every move of its view with its cause (Ready.viewChanges), which the
// driver turns into goodness_view_changes_total{cause} and an info log line. Real replicas in
// the synchronous mini cluster (test/sim/mini-cluster.ts): every cause is produced by the rule
// that owns it, not by calling the core's internals.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeMessage } from '../consensus/pbft/messages.ts';
import type { NewView, ViewChangeReport } from '../consensus/pbft/types.ts';
import { MiniCluster, type MiniNode } from './sim/mini-cluster.ts';

const reports = (n: MiniNode): ViewChangeReport[] => n.readies.flatMap((r) => r.viewChanges);

test('view changes: timeout, view-change timeout, join, new-view and restart are each reported once, in order', () => {
  // n = 7, f = 2: the leaders of views 0 and 1 are down.
  const c = new MiniCluster({ n: 7, baseTimeoutMs: 1000, blocks: 1 });
  c.nodes[0]!.down = true;
  c.nodes[1]!.down = true;
  c.start();
  c.advance(1000);
  // Replicas 2, 3 and 4 time out in view 0 (their timers fire first); once f + 1 = 3 peers are
  // in view 1, replicas 5 and 6 join before their own timers fire.
  for (const i of [2, 3, 4]) assert.equal(reports(c.nodes[i]!), [{ from: 0, to: 1, cause: 'timeout' }], `node ${i}`);
  for (const i of [5, 6]) assert.equal(reports(c.nodes[i]!), [{ from: 0, to: 1, cause: 'join' }], `node ${i}`);

  // View 1's leader is down too: no NEW-VIEW, so the timer expires while changing view.
  c.advance(3000);
  for (const i of [2, 3, 4]) assert.equal(reports(c.nodes[i]!).slice(1), [{ from: 1, to: 2, cause: 'view-change-timeout' }], `node ${i}`);
  for (const i of [5, 6]) assert.equal(reports(c.nodes[i]!).slice(1), [{ from: 1, to: 2, cause: 'join' }], `node ${i}`);
  // Entering view 2 through its NEW-VIEW completes the change to 2: not a second move.
  for (const i of [2, 3, 4, 5, 6]) {
    const s = c.nodes[i]!.replica.status();
    assert.equal([s.view, s.changingView], [2, false], `node ${i} is in view 2`);
    assert.is(reports(c.nodes[i]!).length, 2, `node ${i} moved twice`);
  }

  // A replica back from a crash in view 0 gets the NEW-VIEW of view 2 first: it moves by it.
  const nv = c.nodes[2]!.sent.find((m) => m.type === 'new-view') as NewView;
  assert.ok(nv, 'the leader of view 2 sent its NEW-VIEW');
  c.restart(0);
  assert.equal(c.nodes[0]!.readies.at(-1)!.viewChanges, [], 'a restart in view 0 is no move');
  assert.equal(c.deliver(0, 2, encodeMessage(nv)).viewChanges, [{ from: 0, to: 2, cause: 'new-view' }]);
  assert.is(c.nodes[0]!.replica.status().view, 2);

  // A restart resumes the persisted view and says so once, in its first Ready.
  const before = c.nodes[3]!.readies.length;
  c.restart(3);
  const after = c.nodes[3]!.readies.slice(before).flatMap((r) => r.viewChanges);
  assert.equal(after, [{ from: 0, to: 2, cause: 'restart' }]);
  assert.is(c.nodes[3]!.replica.status().view, 2);

  // Every report chains from the view the replica was in to the one it ended up in.
  for (const n of c.nodes) {
    const rs = reports(n).filter((r) => r.cause !== 'restart');
    for (let k = 1; k < rs.length; k++) assert.is(rs[k]!.from, rs[k - 1]!.to, `node ${n.index} report ${k}`);
  }
});

test.run();
