const scratch = require('./global-scratch');
const postgres = require('./global-postgres');

module.exports = async () => {
  scratch.setup();
  await postgres.setup();
};
