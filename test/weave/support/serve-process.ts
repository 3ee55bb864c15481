import { Command } from 'commander';
import { registerServeCommands } from '../../../client/commands/serve-commands';

// `weft serve` as its own process, before the lead wires registerServeCommands into client/cli.ts:
// the same command, parsed by a program that holds only it.
const program = new Command('weft').exitOverride();
registerServeCommands(program);
program.parseAsync(process.argv).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`weft: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
