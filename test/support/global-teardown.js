module.exports = require('./global-postgres').teardown;
