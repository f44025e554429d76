/**
 * A setup is a list of named steps run in order. The plan (which steps, in which order) is pure
 * data, so it can be shown and tested without a device; the executor runs each step's action and
 * reports progress, so the script only decides how to print it.
 */
export interface PlannedStep<Id extends string = string> {
  id: Id;
  title: string;
}

/** A step that ran but had nothing to do (e.g. no ECDHE on a legacy device). */
export class StepSkipped {
  constructor(readonly reason: string) {}
}

/** What a step's action returns: a line for the log, a skip, or nothing. */
export type StepOutcome = string | StepSkipped | undefined;

export type StepActions<Id extends string> = Record<Id, () => Promise<StepOutcome>>;

export type StepEvent<Id extends string = string> =
  | { step: PlannedStep<Id>; status: "running" }
  | { step: PlannedStep<Id>; status: "done"; detail?: string }
  | { step: PlannedStep<Id>; status: "skipped"; detail: string }
  | { step: PlannedStep<Id>; status: "failed"; error: unknown };

/** Names the step that failed and what had been completed before it, so the script can say what state things are in. */
export class SetupStepError<Id extends string = string> extends Error {
  readonly step: PlannedStep<Id>;
  readonly completed: Id[];
  constructor(step: PlannedStep<Id>, completed: Id[], cause: unknown) {
    super(`${step.title}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "SetupStepError";
    this.step = step;
    this.completed = completed;
  }
}

export interface ExecuteOptions<Id extends string> {
  onEvent?: (event: StepEvent<Id>) => void;
  /** Wraps each action, e.g. in a spinner; must return what the action returns. */
  around?: (step: PlannedStep<Id>, action: () => Promise<StepOutcome>) => Promise<StepOutcome>;
}

/** Runs the plan; stops at the first failure with a SetupStepError. Returns the ids that completed. */
export async function executePlan<Id extends string>(
  plan: readonly PlannedStep<Id>[],
  actions: StepActions<Id>,
  options: ExecuteOptions<Id> = {},
): Promise<Id[]> {
  const completed: Id[] = [];
  for (const step of plan) {
    options.onEvent?.({ step, status: "running" });
    let outcome: StepOutcome;
    try {
      const action = actions[step.id];
      outcome = await (options.around ? options.around(step, action) : action());
    } catch (error) {
      options.onEvent?.({ step, status: "failed", error });
      throw new SetupStepError(step, completed, error);
    }
    if (outcome instanceof StepSkipped) {
      options.onEvent?.({ step, status: "skipped", detail: outcome.reason });
    } else {
      completed.push(step.id);
      options.onEvent?.({ step, status: "done", ...(outcome ? { detail: outcome } : {}) });
    }
  }
  return completed;
}
