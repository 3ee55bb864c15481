// Jest global setup/teardown: every temporary file a test run makes (the tests' mkdtemp folders, the weft and Python
// processes they start) goes under one scratch folder, the run's TMPDIR, removed when the run ends. Left in /tmp, a
// full run's folders add up to about 400 MB, and repeated runs fill the disk. WEFT_KEEP_TEST_TMP=1 keeps it.
// The setup and teardown modules may not share module state, so the folder is passed on in the environment.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function setup() {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `weft-jest-${process.pid}-`));
  process.env.WEFT_JEST_OUTER_TMPDIR = process.env.TMPDIR ?? '';
  process.env.WEFT_JEST_SCRATCH = scratch;
  // Node's os.tmpdir() reads TMPDIR on every call; with --runInBand the tests run in this process, and the processes
  // they start inherit it.
  process.env.TMPDIR = scratch;
}

function teardown() {
  const scratch = process.env.WEFT_JEST_SCRATCH;
  if (!scratch) return;
  const outer = process.env.WEFT_JEST_OUTER_TMPDIR;
  if (outer) process.env.TMPDIR = outer;
  else delete process.env.TMPDIR;
  delete process.env.WEFT_JEST_SCRATCH;
  delete process.env.WEFT_JEST_OUTER_TMPDIR;
  if (process.env.WEFT_KEEP_TEST_TMP === '1') {
    console.log(`[jest] kept the run's temporary files in ${scratch} (WEFT_KEEP_TEST_TMP=1)`);
    return;
  }
  fs.rmSync(scratch, { recursive: true, force: true, maxRetries: 3 });
}

module.exports = { setup, teardown };
