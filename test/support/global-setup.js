module.exports = require('./global-postgres').setup;
