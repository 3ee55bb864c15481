export { smokePipelineWorkflow } from './smoke-pipeline';
