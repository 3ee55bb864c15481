'use strict';
/**
 * Jest environment for tests that run onnxruntime-node. Jest gives each test file its own realm, but the native
 * binding builds output tensors from the main realm's typed arrays, which then fail onnxruntime-common's
 * `instanceof Float32Array` check inside the sandbox. Sharing the main realm's typed-array constructors fixes it.
 *
 * Use with a docblock at the top of the test file: `@jest-environment ./test/inference/onnxruntime-environment.js`.
 */
const { TestEnvironment } = require('jest-environment-node');

const sharedConstructors = [
  'ArrayBuffer',
  'SharedArrayBuffer',
  'DataView',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
];

class OnnxRuntimeEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of sharedConstructors) this.global[name] = globalThis[name];
  }
}

module.exports = OnnxRuntimeEnvironment;
