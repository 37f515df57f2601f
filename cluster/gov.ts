// `goodness gov`: a governor's proposals and votes from the shell (spec/goodness.md
// governance), chiefly membership: `gov propose --add-validator NODE_FOLDER` makes a node that
// `cluster add-node` created a validator; `--remove-validator INDEX` removes one. Each command
// signs with the governor's account key, sends the transaction to a node and waits for its
// receipt, so the operator sees at once whether the action passed, waits for votes, or was refused.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { Ed25519Signer } from '../consensus/crypto/ed25519.ts';
import { GoodnessClient } from '../rpc/client.ts';
import type { Receipt } from '../rpc/types.ts';
import { UserError } from './config.ts';
import { NODE_KEY_FILE, parseNodeKeyFile, readAccountSecretKey } from './keys.ts';
import { to0x } from '../consensus/crypto/encoding.ts';
import { blsPopProve } from '../consensus/crypto/bls.ts';

const WAIT_MS = 30_000;

function readSigner(path: string): Ed25519Signer {
  const key = readAccountSecretKey(path);
  if ('problem' in key) throw new UserError(`cannot use the governor key: ${key.problem}. Pass the JSON that \`goodness keygen\` made, such as DIR/accounts/governor.json.`);
  return new Ed25519Signer(key.secretKey);
}

/** The validator.add action for a node folder: its peer id, BLS key and a fresh proof of possession. */
export function addValidatorAction(nodeDir: string): { type: 'validator.add'; peerId: string; blsPublicKey: string; pop: string } {
  const path = join(resolve(nodeDir), NODE_KEY_FILE);
  let keys;
  try {
    keys = parseNodeKeyFile(JSON.parse(readFileSync(path, 'utf8')));
  } catch (err) {
    throw new UserError(`cannot read the node's keys at ${path} (${(err as Error).message}). Pass the folder that \`goodness cluster add-node\` made.`);
  }
  return { type: 'validator.add', peerId: keys.peerId, blsPublicKey: to0x(keys.blsPublicKey), pop: to0x(blsPopProve(keys.blsSecretKey)) };
}

function describe(receipt: Receipt): string {
  if (receipt.status !== 'ok') return `refused (code ${receipt.code}): ${receipt.log}`;
  const executed = receipt.events.find((e) => e.type === 'gov.executed');
  const validator = receipt.events.find((e) => e.type === 'validator.add' || e.type === 'validator.remove');
  if (!executed) return 'recorded; more governors must approve (goodness gov vote) before it takes effect';
  // validator-schedule.ts: a change made by block h applies from h + window + 1.
  const extra = validator ? `; ${validator.type} of validator ${validator.attributes.index} applies from block ${receipt.blockNumber} + window + 1 (genesis consensus.window, 4 by default)` : '';
  return `approved and executed in block ${receipt.blockNumber}${extra}`;
}

async function send(rpc: string, keyFile: string, type: 'gov.propose' | 'gov.vote', body: Record<string, unknown>): Promise<Receipt> {
  const client = new GoodnessClient(rpc, { timeoutMs: WAIT_MS + 5_000 });
  try {
    return await client.sendTxAndWait(readSigner(keyFile), { type, body }, WAIT_MS);
  } finally {
    await client.close();
  }
}

export function registerGovCommand(program: Command): void {
  const gov = program.command('gov').description("a governor's proposals and votes: membership (validators, organisations, governors)");
  gov
    .command('propose')
    .description('propose a governance action, counting as the proposer\'s approval; prints whether it executed or waits for more votes')
    .requiredOption('--rpc <URL>', 'a node\'s JSON-RPC URL')
    .requiredOption('--key <FILE>', 'the governor\'s account key file (goodness keygen), e.g. DIR/accounts/governor.json')
    .requiredOption('--proposal <ID>', 'an id for the proposal (1-64 of [0-9A-Za-z_.-], unique)')
    .addOption(new Option('--add-validator <NODE_FOLDER>', 'make the node of this folder a validator (its keys come from NODE_FOLDER/node-key.json)').conflicts(['removeValidator', 'action']))
    .addOption(new Option('--remove-validator <INDEX>', 'remove the validator with this index').conflicts(['action']))
    .option('--action <JSON>', 'any action of spec/goodness.md, e.g. \'{"type":"org.register","org":ID,"name":"Metro","roles":["distributor"]}\'')
    .option('--json', 'print the receipt as JSON')
    .action(async (o: { rpc: string; key: string; proposal: string; addValidator?: string; removeValidator?: string; action?: string; json?: boolean }) => {
      let action: Record<string, unknown>;
      if (o.addValidator) action = addValidatorAction(o.addValidator);
      else if (o.removeValidator !== undefined) {
        if (!/^\d+$/.test(o.removeValidator)) throw new UserError(`--remove-validator takes a validator index (getValidators), not ${JSON.stringify(o.removeValidator)}.`);
        action = { type: 'validator.remove', index: Number(o.removeValidator) };
      } else if (o.action) {
        try {
          action = JSON.parse(o.action) as Record<string, unknown>;
        } catch (err) {
          throw new UserError(`--action is not JSON (${(err as Error).message}).`);
        }
      } else throw new UserError('say what to propose: --add-validator NODE_FOLDER, --remove-validator INDEX or --action JSON.');
      const receipt = await send(o.rpc, o.key, 'gov.propose', { proposal: o.proposal, action });
      if (o.json) return void process.stdout.write(JSON.stringify(receipt, null, 2) + '\n');
      console.log(`proposal ${o.proposal} (${String(action.type)}): ${describe(receipt)}`);
      if (receipt.status !== 'ok') process.exitCode = 1;
    });
  gov
    .command('vote')
    .description('approve (or with --reject, reject) a proposal')
    .requiredOption('--rpc <URL>', 'a node\'s JSON-RPC URL')
    .requiredOption('--key <FILE>', 'the governor\'s account key file')
    .requiredOption('--proposal <ID>', 'the proposal id')
    .option('--reject', 'vote against')
    .option('--json', 'print the receipt as JSON')
    .action(async (o: { rpc: string; key: string; proposal: string; reject?: boolean; json?: boolean }) => {
      const receipt = await send(o.rpc, o.key, 'gov.vote', { proposal: o.proposal, approve: !o.reject });
      if (o.json) return void process.stdout.write(JSON.stringify(receipt, null, 2) + '\n');
      console.log(`vote on ${o.proposal}: ${describe(receipt)}`);
      if (receipt.status !== 'ok') process.exitCode = 1;
    });
}
