// Reads the allocation profiles of scripts/alloc-sample.mjs and says what the nodes allocated per
// committed transaction: in all, by the innermost source file of this repository on the stack,
// and by allocating function (diagnosis only). Sampled figures: a site is counted in 16 KiB
// steps, so only the larger ones are meaningful.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: ProfileNode[];
}
interface HeapProfile {
  head: ProfileNode;
  samples: { size: number; nodeId: number }[];
}

const OURS = /^file:\/\/.*\/(consensus|p2p|state|rpc|cluster)\/(.*)$/;

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || '(anonymous)'} ${url.split('/').pop() ?? ''}:${lineNumber + 1}`;
}

export function allocReport(files: string[], committed: number, top = 12): string[] {
  const byFile = new Map<string, number>();
  const bySelf = new Map<string, number>();
  let total = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as HeapProfile;
    // nodeId -> [self frame, innermost frame of ours]
    const sites = new Map<number, [string, string]>();
    const walk = (node: ProfileNode, ours: string) => {
      const m = OURS.exec(node.callFrame.url);
      const here = m ? `${m[1]}/${m[2]}` : ours;
      sites.set(node.id, [frameName(node), here]);
      for (const child of node.children ?? []) walk(child, here);
    };
    walk(profile.head, '(none of ours)');
    for (const s of profile.samples) {
      const [self, ours] = sites.get(s.nodeId) ?? ['?', '?'];
      total += s.size;
      byFile.set(ours, (byFile.get(ours) ?? 0) + s.size);
      bySelf.set(self, (bySelf.get(self) ?? 0) + s.size);
    }
  }
  const perTx = (bytes: number) => `${Math.round(bytes / files.length / committed).toLocaleString('en-US').padStart(7)} B`;
  const ranked = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `allocated: ${perTx(total).trim()} per committed transaction on each node (${files.length} nodes, ${committed.toLocaleString('en-US')} transactions)`,
    'by the innermost file of ours on the stack:',
    ...ranked(byFile).map(([k, v]) => `  ${perTx(v)}  ${k}`),
    'by allocating function:',
    ...ranked(bySelf).map(([k, v]) => `  ${perTx(v)}  ${k}`),
  ];
}
