/**
 * The floor for bench/workflowInstanceCost.ts: a workflow that does nothing, bundled alone (what
 * creating any workflow instance costs in the SDK) and beside hitloop's workflows (what evaluating
 * hitloop's bundle adds to every new instance).
 */
export async function TrivialWorkflow(): Promise<void> {}
