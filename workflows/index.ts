/** The workflow types a hitloop worker registers. Workflow type names are the function names. */
export { TaskRunWorkflow } from './taskRun.ts';
export { AssignmentWorkflow } from './assignment.ts';
export { ReviewWorkflow } from './review.ts';
