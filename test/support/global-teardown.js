const scratch = require('./global-scratch');
const postgres = require('./global-postgres');

module.exports = async () => {
  try {
    await postgres.teardown();
  } finally {
    scratch.teardown();
  }
};
