export { smokePipelineWorkflow } from './smoke-pipeline';
export { evaluateWorkflow } from './evaluate';
export { lifecyclePipelineWorkflow } from './lifecycle-pipeline';
export { reevaluateWorkflow } from './reevaluate';
