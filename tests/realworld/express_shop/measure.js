// Appends one measurement (a JSON object) to this service's measurement file (corpus.py reads it).
const fs = require("node:fs");

module.exports.record = (reading) =>
  fs.appendFileSync(process.env.REALWORLD_MEASURE, JSON.stringify(reading) + "\n");

module.exports.timed = async (work) => {
  const begin = process.hrtime.bigint();
  const value = await work();
  return [value, Number(process.hrtime.bigint() - begin)];
};

// Stops the server on SIGINT: the event loop empties and the auto-instrumentation's
// beforeExit hook shuts the SDK down, exporting every span.
module.exports.serve = (app, cleanup = async () => {}) => {
  const server = app.listen(Number(process.env.PORT), "127.0.0.1");
  process.once("SIGINT", async () => {
    server.close();
    server.closeAllConnections();
    await cleanup();
  });
};
