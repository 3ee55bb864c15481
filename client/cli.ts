import { Command, CommanderError } from 'commander';
import { registerLineageCommands } from './commands/lineage-commands';
import { registerModelsCommands } from './commands/models-commands';
import { DifferentRunInputsError, registerPipelineCommands } from './commands/pipeline-commands';
import { registerScheduleCommands } from './commands/schedule-commands';
import { registerRunCommands } from './commands/run-commands';
import { registerDemoCommands } from './commands/demo-commands';
import { registerDoctorCommands } from './commands/doctor-commands';
import { registerRagCommands } from './commands/rag-commands';
import { registerServeCommands } from './commands/serve-commands';
import { registerStackCommands } from './commands/stack-commands';
import { registerWandbCommands } from './commands/wandb-commands';
import { printJson } from './output';
import { describeRunFailure, formatRunFailure } from './run-failure';

export function buildProgram(): Command {
  const program = new Command('weft')
    .description(
      'weft runs the lifecycle of a RAG application as durable Temporal workflows.\n' +
        'State lives in WEFT_HOME (default ./.weft); Temporal is found through TEMPORAL_ADDRESS, or started embedded.',
    )
    .version('0.1.0')
    .showHelpAfterError();

  registerStackCommands(program);
  const run = registerRunCommands(program);
  registerPipelineCommands(program, run);
  registerScheduleCommands(program);
  registerLineageCommands(program);
  registerModelsCommands(program);

  registerDemoCommands(program);
  registerRagCommands(program);
  registerServeCommands(program);
  registerWandbCommands(program);
  registerDoctorCommands(program);
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv);
    // A command that reports a failure without throwing (weft doctor) sets process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    // A failed run is reported by its root cause and stage, not the SDK's "Workflow execution failed".
    const failure = describeRunFailure(error);
    const message = failure ? formatRunFailure(failure) : error instanceof Error ? error.message : String(error);
    process.stderr.write(`weft: ${message}\n`);
    if (argv.includes('--json')) {
      const refused =
        error instanceof DifferentRunInputsError
          ? { workflowId: error.workflowId, differences: error.differences }
          : undefined;
      printJson({ ok: false, error: failure ?? { message, ...refused } });
    }
    return 1;
  }
}

/**
 * Exits once stdout and stderr have drained: process.exit() right after a large write to a pipe would cut
 * `--json` output short (a pipe takes 64 KiB at a time).
 */
export function exitAfterOutput(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

if (require.main === module) {
  void runCli(process.argv).then(exitAfterOutput);
}
