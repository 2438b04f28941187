/** hitloop's workflows and the trivial one in one bundle (bench/workflowInstanceCost.ts). */
export * from '../../workflows/index.ts';
export { TrivialWorkflow } from './trivialWorkflow.ts';
